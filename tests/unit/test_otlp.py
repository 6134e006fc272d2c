"""helios.buck.otlp: OTLP logs requests in protobuf and OTLP/JSON, decoded,
encoded back, and mapped to Helios event rows."""

import base64
import json

import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from helios.buck import otlp
from helios.errors import EventError

T = 1_700_000_000_123_456_789


def kv(key, **value):
    return KeyValue(key=key, value=AnyValue(**value))


def request(*records, resource=None, scope_name="shop.cart", scope_version="1.2"):
    """A request of one resource and one scope holding ``records`` (dicts of LogRecord fields)."""
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    for attr in resource if resource is not None else [kv("service.name", string_value="cart"),
                                                        kv("host.name", string_value="web-1"),
                                                        kv("deployment.environment", string_value="prod"),
                                                        kv("service.version", string_value="3.1")]:
        rl.resource.attributes.append(attr)
    sl = rl.scope_logs.add()
    sl.scope.name, sl.scope.version = scope_name, scope_version
    for r in records:
        sl.log_records.add(**r)
    return req


EVERY_KIND = request(
    {"time_unix_nano": T, "observed_time_unix_nano": T + 5, "severity_number": 17, "severity_text": "ERROR",
     "body": AnyValue(string_value="payment failed: ünïcode"),
     "attributes": [kv("order", int_value=-1234), kv("amount", double_value=12.5), kv("ok", bool_value=False),
                    kv("raw", bytes_value=b"\x00\xff"),
                    kv("tags", array_value={"values": [AnyValue(string_value="a"), AnyValue(int_value=2)]}),
                    kv("user", kvlist_value={"values": [kv("id", int_value=7), kv("name", string_value="x")]})],
     "trace_id": bytes.fromhex("5b8efff798038103d269b633813fc60c"), "span_id": bytes.fromhex("eee19b7ec3c1b174"),
     "flags": 1, "event_name": "checkout.failed"},
    {"observed_time_unix_nano": T + 9, "body": AnyValue(bytes_value=b"\x01\x02 not text")},
    {"time_unix_nano": T, "body": AnyValue(kvlist_value={"values": [kv("k", array_value={"values": [
        AnyValue(double_value=1.5), AnyValue(bytes_value=b"\xff")]})]})},
    {"time_unix_nano": T, "severity_text": "warning"},
)


@pytest.mark.parametrize("kind", ["protobuf", "json"])
def test_a_request_decodes_back_to_itself_in_either_encoding(kind):
    body = otlp.encode(EVERY_KIND, kind)
    assert otlp.decode(body, kind) == EVERY_KIND
    assert otlp.encode(otlp.decode(body, kind), kind) == body


def test_otlp_json_with_the_protobuf_names_enum_names_and_base64_decodes_the_same():
    from google.protobuf import json_format
    value = json_format.MessageToDict(EVERY_KIND, preserving_proto_field_name=True)
    rec = value["resource_logs"][0]["scope_logs"][0]["log_records"][0]
    assert rec["severity_number"] == "SEVERITY_NUMBER_ERROR" and rec["time_unix_nano"] == str(T)
    for key in ("trace_id", "span_id"):
        rec[key] = base64.b64decode(rec[key]).hex().upper()
    rec["attributes"][3]["value"]["bytes_value"] = "AP8"  # url-safe base64 without its padding is fine too
    rec["attributes"][1]["value"]["double_value"] = "12.5"
    assert otlp.decode(json.dumps(value).encode(), "json") == EVERY_KIND


def test_otlp_json_spells_ids_in_hex_enums_as_integers_and_int64_as_strings():
    rec = json.loads(otlp.encode(EVERY_KIND, "json"))["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    assert rec["traceId"] == "5b8efff798038103d269b633813fc60c" and rec["spanId"] == "eee19b7ec3c1b174"
    assert rec["severityNumber"] == 17 and rec["timeUnixNano"] == str(T)


def test_the_spec_example_in_otlp_json_decodes_with_upper_case_hex_snake_case_keys_and_unknown_keys():
    body = json.dumps({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]},
        "scope_logs": [{"scope": {"name": "my.library", "version": "1.0.0", "attributes": []},
                        "logRecords": [{"timeUnixNano": "1544712660300000000", "observedTimeUnixNano": 1544712660300000000,
                                        "severityNumber": 10, "severityText": "Information",
                                        "traceId": "5B8EFFF798038103D269B633813FC60C", "span_id": "EEE19B7EC3C1B174",
                                        "body": {"stringValue": "Example log record"},
                                        "attributes": [{"key": "int.attribute", "value": {"intValue": "10"}}],
                                        "somethingNew": {"from": "a later version"}}]}]}]}).encode()
    req = otlp.decode(body, "json")
    (rec,) = otlp.rows(req, now=1)
    assert rec.app == "my.service" and rec.environment is None and rec.host is None
    row = rec.row
    assert row[1] == 1544712660300000000 and row[5] == 6 and row[8] == b"Example log record"
    assert row[9]["trace_id"] == "5b8efff798038103d269b633813fc60c" and row[9]["span_id"] == "eee19b7ec3c1b174"
    assert row[9]["int.attribute"] == 10 and row[9]["otel.scope.name"] == "my.library"


def test_a_record_maps_to_an_event_with_its_resource_scope_attributes_and_ids():
    recs = otlp.rows(EVERY_KIND, now=42)
    assert [r.problem for r in recs] == [None] * 4
    first = recs[0]
    assert (first.environment, first.host, first.app) == ("prod", "web-1", "cart")
    ident, time_, received, host, app, sev, source, offset, message, fields = first.row[:10]
    assert (time_, received, host, app, sev) == (T, 42, "web-1", "cart", 3)
    assert message == "payment failed: ünïcode".encode()
    assert fields == {"service.version": "3.1", "otel.scope.name": "shop.cart", "otel.scope.version": "1.2",
                      "order": -1234, "amount": 12.5, "ok": False, "raw": b"\x00\xff", "tags": ["a", 2],
                      "user": {"id": 7, "name": "x"}, "trace_id": "5b8efff798038103d269b633813fc60c",
                      "span_id": "eee19b7ec3c1b174", "trace_flags": 1, "severity_text": "ERROR",
                      "severity_number": 17, "event_name": "checkout.failed"}
    # observed time when time is 0; bytes bodies as they are; other bodies as JSON (bytes in base64)
    assert recs[1].row[1] == T + 9 and recs[1].row[8] == b"\x01\x02 not text" and recs[1].row[5] is None
    assert json.loads(recs[2].row[8]) == {"k": [1.5, "/w=="]}
    assert recs[3].row[5] == 4  # no number: the text, when it names a severity


def test_the_newer_deployment_environment_name_wins_over_the_older_key():
    req = request({"time_unix_nano": T}, resource=[kv("deployment.environment", string_value="old"),
                                                   kv("deployment.environment.name", string_value="new")])
    assert otlp.rows(req, 0)[0].environment == "new"


def test_empty_resource_names_count_as_none():
    req = request({"time_unix_nano": T}, resource=[kv("host.name", string_value=""), kv("service.name", string_value=""),
                                                   kv("deployment.environment", string_value="")])
    (rec,) = otlp.rows(req, 0)
    assert (rec.environment, rec.host, rec.app) == (None, None, None) and rec.row[9] == {
        "otel.scope.name": "shop.cart", "otel.scope.version": "1.2"}


def test_a_resource_attribute_of_the_wrong_type_refuses_its_records_with_a_reason():
    req = request({"time_unix_nano": T}, {"time_unix_nano": T}, resource=[kv("host.name", int_value=3)])
    recs = otlp.rows(req, 0)
    assert [r.row for r in recs] == [None, None] and "host.name must be a string" in recs[0].problem


def test_a_time_past_2262_refuses_its_record():
    (rec,) = otlp.rows(request({"time_unix_nano": 2**63}), 0)
    assert rec.row is None and "2262" in rec.problem


@pytest.mark.parametrize("number,expected", [
    (0, None), (1, 7), (4, 7), (5, 7), (8, 7), (9, 6), (10, 6), (11, 5), (12, 5), (13, 4), (16, 4),
    (17, 3), (20, 3), (21, 2), (22, 2), (23, 1), (24, 0), (25, None)])
def test_severity_numbers_map_to_syslog_severities(number, expected):
    assert otlp.severity(number, "") == expected


def test_a_severity_text_counts_only_without_a_number_and_only_when_it_names_a_severity():
    assert otlp.severity(0, "WARN") == 4 and otlp.severity(0, "crit") == 2
    assert otlp.severity(9, "FATAL") == 6  # the number wins
    assert otlp.severity(0, "Information-ish") is None and otlp.severity(0, "x" * 100) is None


def test_a_retried_request_gets_the_same_ids_in_either_encoding():
    a = [r.row[0] for r in otlp.rows(otlp.decode(otlp.encode(EVERY_KIND, "protobuf"), "protobuf"), 1)]
    b = [r.row[0] for r in otlp.rows(otlp.decode(otlp.encode(EVERY_KIND, "json"), "json"), 2)]
    assert a == b and len(set(a)) == 4 and all(len(i) == 16 for i in a)


def test_identical_records_at_different_positions_get_different_ids():
    same = {"time_unix_nano": T, "body": AnyValue(string_value="twice")}
    first, second = otlp.rows(request(same, same), 0)
    assert first.row[0] != second.row[0]
    # ... and a change of the resource or the scope changes the id too
    other_scope = otlp.rows(request(same, same, scope_name="other"), 0)[0]
    other_host = otlp.rows(request(same, resource=[kv("host.name", string_value="web-2")]), 0)[0]
    assert len({first.row[0], other_scope.row[0], other_host.row[0]}) == 3


def test_a_record_without_any_time_gets_the_receive_time_and_a_random_id():
    req = request({"body": AnyValue(string_value="when?")})
    (a,), (b,) = otlp.rows(req, 7), otlp.rows(req, 8)
    assert (a.row[1], b.row[1]) == (7, 8) and a.row[0] != b.row[0]


@pytest.mark.parametrize("kind,body,says", [
    ("protobuf", b"\xff\xff\xff\xff", "not a protobuf"),
    ("protobuf", b"\x0a\x05\x0a\x03", "not a protobuf"),  # truncated
    ("json", b"{not json", "not valid JSON"),
    ("json", b"[1, 2]", "must be a JSON object"),
    ("json", b'{"resourceLogs": 3}', "not an OTLP/JSON"),
    ("json", b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": "zz"}]}]}]}', "is not hex"),
    ("json", b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": "soon"}]}]}]}', "not an OTLP"),
    ("json", b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"intValue": 1e400}}]}]}]}', "OTLP"),
    ("json", b"[" * 100_000, "not valid JSON"),
    ("json", b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"stringValue": "\\ud800"}}]}]}]}',
     "surrogates not allowed"),
    ("json", b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"stringValue": "a", "intValue": 1}}]}]}]}',
     "2 kinds at once"),
    ("json", b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": "99999999999999999999"}]}]}]}',
     "OTLP"),
    ("json", b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"bytesValue": "!!"}}]}]}]}', "bytesValue"),
    ("json", b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"attributes": {"a": 1}}]}]}]}', "attributes"),
])
def test_an_undecodable_body_raises_event_error_saying_why(kind, body, says):
    with pytest.raises(EventError, match=says):
        otlp.decode(body, kind)


def _field(number, payload):
    """A length-delimited protobuf field."""
    return bytes([number << 3 | 2]) + otlp._varint(len(payload)) + payload


def test_values_nested_past_the_parsers_depth_limit_are_refused_not_a_crash():
    value = _field(1, b"leaf")  # AnyValue.string_value
    for _ in range(500):  # AnyValue.array_value (5) -> ArrayValue.values (1) -> ...
        value = _field(5, _field(1, value))
    # LogRecord.body (5) in ScopeLogs.log_records (2) in ResourceLogs.scope_logs (2) in the request (1)
    body = _field(1, _field(2, _field(2, _field(5, value))))
    with pytest.raises(EventError, match="not a protobuf"):
        otlp.decode(body, "protobuf")
    for depth in (150, 5000):  # JSON's own parser takes the first, not the second
        deep = '{"arrayValue": {"values": [' * depth + '{"stringValue": "leaf"}' + "]}}" * depth
        js = ('{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": %s}]}]}]}' % deep).encode()
        with pytest.raises(EventError):
            otlp.decode(js, "json")


@pytest.mark.parametrize("kind", ["protobuf", "json"])
def test_answers_decode_as_the_otlp_messages_they_are(kind):
    body = otlp.response(kind, 3, "log record 0: too big")
    resp = ExportLogsServiceResponse()
    if kind == "protobuf":
        resp.ParseFromString(body)
    else:
        from google.protobuf import json_format
        json_format.Parse(body, resp)
    assert (resp.partial_success.rejected_log_records, resp.partial_success.error_message) == (3, "log record 0: too big")
    assert otlp.response("protobuf") == b"" and json.loads(otlp.response("json")) == {}
    why = "the buck is busy " + "é" * 100  # a message over 127 bytes: a two-byte length
    st = status_pb2.Status()
    if kind == "protobuf":
        st.ParseFromString(otlp.status(kind, 429, why))
    else:
        json_format.Parse(otlp.status(kind, 429, why), st)
    assert (st.code, st.message) == (8, why)


def test_content_types_name_the_encoding():
    assert otlp.kind_of("application/x-protobuf") == "protobuf"
    assert otlp.kind_of("Application/JSON; charset=utf-8") == "json"
    assert otlp.kind_of("text/plain") is None and otlp.kind_of("") is None


def test_copied_bytes_grow_with_the_records_that_share_a_resource():
    one = otlp.copied_bytes(request({"time_unix_nano": T}))
    assert one > 0 and otlp.copied_bytes(request(*[{"time_unix_nano": T}] * 10)) == 10 * one
    assert otlp.copied_bytes(ExportLogsServiceRequest()) == 0
