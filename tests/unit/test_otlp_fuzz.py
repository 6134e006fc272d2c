"""helios.buck.otlp under generated input: any request it can be given
decodes back to itself in protobuf and in OTLP/JSON and maps to rows the
codec can store; any garbage, mutated protobuf or hostile JSON is an
EventError and never another exception. HELIOS_FUZZ_EXAMPLES=N for a long run."""

import json
import math

from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from helios import codec
from helios.buck import otlp
from helios.errors import EventError, FrameError
from tests.fuzzing import fuzz

text = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)  # protobuf strings are valid UTF-8
i64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
u64 = st.integers(min_value=0, max_value=2**64 - 1)
scalar_values = st.one_of(
    st.builds(lambda v: AnyValue(string_value=v), text),
    st.builds(lambda v: AnyValue(bool_value=v), st.booleans()),
    st.builds(lambda v: AnyValue(int_value=v), i64),
    st.builds(lambda v: AnyValue(double_value=v), st.floats(allow_nan=False)),  # NaN != NaN in the round trip
    st.builds(lambda v: AnyValue(bytes_value=v), st.binary(max_size=12)),
    st.just(AnyValue()))


def _array(values):
    v = AnyValue()
    v.array_value.values.extend(values)
    return v


def _kvlist(pairs):
    v = AnyValue()
    v.kvlist_value.values.extend(KeyValue(key=k, value=x) for k, x in pairs)
    return v


any_values = st.recursive(scalar_values, lambda inner: st.builds(_array, st.lists(inner, max_size=3)) |
                          st.builds(_kvlist, st.lists(st.tuples(text, inner), max_size=3)), max_leaves=8)
attributes = st.lists(st.builds(lambda k, v: KeyValue(key=k, value=v), text, any_values), max_size=4)
resource_attributes = st.lists(st.builds(lambda k, v: KeyValue(key=k, value=v),
                                         st.sampled_from(["service.name", "host.name", "deployment.environment",
                                                          "deployment.environment.name", "service.version"]) | text,
                                         any_values), max_size=4)


@st.composite
def requests(draw):
    req = ExportLogsServiceRequest()
    for _ in range(draw(st.integers(0, 2))):
        rl = req.resource_logs.add(schema_url=draw(text))
        rl.resource.attributes.extend(draw(resource_attributes))
        for _ in range(draw(st.integers(0, 2))):
            sl = rl.scope_logs.add()
            sl.scope.name, sl.scope.version = draw(text), draw(text)
            for _ in range(draw(st.integers(0, 3))):
                rec = sl.log_records.add(
                    time_unix_nano=draw(u64), observed_time_unix_nano=draw(u64),
                    severity_number=draw(st.integers(0, 24)), severity_text=draw(text),
                    flags=draw(st.integers(0, 2**32 - 1)), event_name=draw(text),
                    trace_id=draw(st.binary(max_size=16)), span_id=draw(st.binary(max_size=8)))
                rec.body.CopyFrom(draw(any_values))
                rec.attributes.extend(draw(attributes))
    return req


@fuzz(150)
@given(requests(), st.sampled_from(["protobuf", "json"]))
def test_any_request_decodes_back_to_itself(req, kind):
    assert otlp.decode(otlp.encode(req, kind), kind) == req


@fuzz(150)
@given(requests())
def test_any_request_maps_to_rows_the_codec_stores_or_to_a_reason(req):
    for rec in otlp.rows(req, now=5):
        if rec.row is None:
            assert rec.problem
            continue
        row = rec.row
        row[3] = "sender" if row[3] is None else row[3]  # as the ingest fills them in
        row[4] = "" if row[4] is None else row[4]
        assert len(row[0]) == 16 and 0 <= row[1] < 2**63 and row[5] in (None, *range(8))
        try:
            frame = codec.encode_rows("prod", "h", [row], row[1], row[1])
        except FrameError as exc:  # only a value msgpack cannot hold
            assert "cannot encode" in str(exc)
            continue
        (back,) = codec.decode(frame)[1]
        assert back.message == row[8] and back.id == row[0]


@fuzz(150)
@given(requests(), st.data())
def test_mutated_protobuf_is_a_request_or_an_event_error(req, data):
    body = bytearray(otlp.encode(req, "protobuf") or b"\x0a\x00")
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        at = data.draw(st.integers(0, max(len(body) - 1, 0)))
        if op == "flip" and body:
            body[at] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "cut":
            del body[at:]
        else:
            body[at:at] = data.draw(st.binary(min_size=1, max_size=4))
    try:
        decoded = otlp.decode(bytes(body), "protobuf")
    except EventError:
        return
    otlp.rows(decoded, now=5)  # never raises


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["resourceLogs", "scopeLogs", "logRecords", "resource", "attributes", "key", "value",
                         "stringValue", "intValue", "arrayValue", "kvlistValue", "values", "bytesValue",
                         "doubleValue", "boolValue", "body", "traceId", "spanId", "timeUnixNano",
                         "severityNumber", "scope", "name"]) | st.text(max_size=5), inner, max_size=4),
    max_leaves=20)


@fuzz(250)
@given(json_values)
def test_hostile_json_is_a_request_or_an_event_error(value):
    try:
        body = json.dumps(value, allow_nan=True).encode()
    except ValueError:
        return
    try:
        decoded = otlp.decode(body, "json")
    except EventError:
        return
    for rec in otlp.rows(decoded, now=5):
        assert rec.row is None or isinstance(rec.row[8], bytes)


def test_a_double_of_nan_or_infinity_in_json_is_kept():
    body = b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": 1, "attributes": [' \
           b'{"key": "a", "value": {"doubleValue": "NaN"}}, {"key": "b", "value": {"doubleValue": "-Infinity"}}]}]}]}]}'
    (rec,) = otlp.rows(otlp.decode(body, "json"), 0)
    assert math.isnan(rec.row[9]["a"]) and rec.row[9]["b"] == -math.inf
