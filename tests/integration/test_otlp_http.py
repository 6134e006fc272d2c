"""OTLP/HTTP logs on a real buck's HTTP ingest (POST /v1/logs), by hand-made
requests: protobuf and JSON, gzip, partial success, every kind of refusal
answered in the request's encoding, tokens and environments."""

import gzip
import http.client
import json
import shutil
import subprocess
import threading
import sys
from urllib.parse import urlsplit

import pytest
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from helios import tokens
from helios.buck import otlp
from tests.helpers import ROOT, buck_events, buck_http, poll_until, require

T = 1_700_000_000_000_000_000
PB, JS = "application/x-protobuf", "application/json"
PROD, STAGE, BOTH = tokens.new_token(), tokens.new_token(), tokens.new_token()


def kv(key, value):
    return KeyValue(key=key, value=AnyValue(string_value=value))


def logs(*messages, env="prod", host="web-1", app="cart", t=T, **attrs):
    """A request of one resource holding a record per message."""
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    for key, value in (("deployment.environment", env), ("host.name", host), ("service.name", app)):
        if value is not None:
            rl.resource.attributes.append(kv(key, value))
    sl = rl.scope_logs.add()
    sl.scope.name = "tests"
    for i, m in enumerate(messages):
        rec = sl.log_records.add(time_unix_nano=t + i, severity_number=9, body=AnyValue(string_value=m))
        for k, v in attrs.items():
            rec.attributes.append(kv(k, v))
    return req


def post(url, body, content_type=PB, path="/v1/logs", **headers):
    """(status, headers, body) of a POST."""
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=15)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": content_type, **headers})
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def answer(content_type, body):
    """The ExportLogsServiceResponse of a 200."""
    resp = ExportLogsServiceResponse()
    if content_type == PB:
        resp.ParseFromString(body)
    else:
        json_format.Parse(body, resp)
    return resp


def rpc_status(content_type, body):
    """The google.rpc.Status of a 4xx or 5xx."""
    st = status_pb2.Status()
    if content_type.startswith(PB):
        st.ParseFromString(body)
    else:
        json_format.Parse(body, st)
    return st


def stored(data, env=None):
    events, clean = buck_events(data, env)
    assert clean
    return events


@pytest.fixture
def otlp_buck(buck):
    def start(*extra):
        _, _, data = buck("a", None, "--http", "127.0.0.1:0", *extra)
        return data, buck_http(data)
    return start


@pytest.mark.parametrize("content_type", [PB, JS])
def test_a_request_is_stored_with_its_resource_mapped_and_answered_in_its_own_encoding(otlp_buck, content_type):
    data, url = otlp_buck()
    req = logs("paid", "shipped", order="1234")
    status, headers, body = post(url, otlp.encode(req, otlp.kind_of(content_type)), content_type)
    assert status == 200 and headers["Content-Type"].startswith(content_type)
    assert not answer(content_type, body).HasField("partial_success")
    got = {e.message: e for e in stored(data)}  # fsynced by default: in the file once answered
    assert set(got) == {b"paid", b"shipped"}
    e = got[b"paid"]
    assert (e.environment, e.host, e.app, e.severity, e.time) == ("prod", "web-1", "cart", 6, T)
    assert e.fields == {"order": "1234", "otel.scope.name": "tests", "severity_number": 9}


@pytest.mark.parametrize("content_type", [PB, JS])
def test_gzip_bodies_are_taken(otlp_buck, content_type):
    data, url = otlp_buck()
    body = gzip.compress(otlp.encode(logs("zipped"), otlp.kind_of(content_type)))
    assert post(url, body, content_type, **{"Content-Encoding": "gzip"})[0] == 200
    assert [e.message for e in stored(data)] == [b"zipped"]


def test_a_retried_request_stores_the_same_ids_so_the_porter_keeps_one_copy(otlp_buck):
    data, url = otlp_buck()
    body = logs("once", "twice the same").SerializeToString()
    assert post(url, body)[0] == 200
    assert post(url, body)[0] == 200  # the exporter's retry after a lost answer
    events = stored(data)
    assert len(events) == 4 and len({e.id for e in events}) == 2
    # The same request in JSON is the same records: the same ids.
    assert post(url, otlp.encode(logs("once", "twice the same"), "json"), JS)[0] == 200
    assert len({e.id for e in stored(data)}) == 2


def test_records_that_cannot_be_kept_are_refused_by_partial_success_and_the_rest_stored(otlp_buck):
    data, url = otlp_buck("--http-max-field-bytes", "1000")
    req = logs("fine", "too big", env="prod")
    req.resource_logs[0].scope_logs[0].log_records[1].attributes.append(kv("blob", "x" * 5000))
    bad_env = logs("bad environment", env="no such/env")
    req.resource_logs.extend(bad_env.resource_logs)
    for content_type in (PB, JS):
        status, _, body = post(url, otlp.encode(req, otlp.kind_of(content_type)), content_type)
        ps = answer(content_type, body).partial_success
        assert status == 200 and ps.rejected_log_records == 2
        assert "log record 1" in ps.error_message and "blob" in ps.error_message and "2 records" in ps.error_message
    assert [e.message for e in stored(data)] == [b"fine", b"fine"]


@pytest.mark.parametrize("content_type", [PB, JS])
@pytest.mark.parametrize("body", [b"\xff\xfe garbage", b"{\"resourceLogs\": [", b"\x0a\x10\x0a"])
def test_an_undecodable_body_gets_400_with_a_status_in_its_encoding_and_the_buck_goes_on(
        otlp_buck, content_type, body):
    data, url = otlp_buck()
    if content_type == JS and body.startswith(b"\x0a"):
        body = b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"spanId": "not hex"}]}]}]}'
    elif content_type == PB and body.startswith(b"{"):
        body = body + b"\x80"  # a varint that never ends
    status, headers, got = post(url, body, content_type)
    assert status == 400 and headers["Content-Type"].startswith(content_type)
    st = rpc_status(content_type, got)
    assert st.code == 3 and ("protobuf" in st.message or "JSON" in st.message)
    assert post(url, logs("after").SerializeToString())[0] == 200
    assert [e.message for e in stored(data)] == [b"after"]


def test_a_body_over_the_limit_gets_413_and_so_does_a_gzip_bomb(otlp_buck):
    data, url = otlp_buck("--http-max-body", "65536")
    big = logs("x" * 70_000).SerializeToString()
    status, headers, body = post(url, big)
    assert status == 413 and rpc_status(PB, body).message.startswith("the body")
    bomb = gzip.compress(logs("y" * 10_000_000).SerializeToString())
    assert len(bomb) < 65536
    status, _, body = post(url, bomb, JS, **{"Content-Encoding": "gzip"})
    assert status == 413 and "decompressed" in json.loads(body)["message"]
    assert stored(data) == []


def test_too_many_records_get_413_and_nothing_is_stored(otlp_buck):
    data, url = otlp_buck("--http-max-events", "10")
    status, _, body = post(url, logs(*[f"r{i}" for i in range(11)]).SerializeToString())
    assert status == 413 and "11 log records" in rpc_status(PB, body).message
    assert stored(data) == []


def test_a_content_type_otlp_does_not_have_gets_415_and_an_unknown_encoding_too(otlp_buck):
    data, url = otlp_buck()
    status, headers, body = post(url, b"hello", "text/plain")
    assert status == 415 and "application/x-protobuf" in json.loads(body)["message"]
    status, _, body = post(url, logs("z").SerializeToString(), PB, **{"Content-Encoding": "br"})
    assert status == 415 and "Content-Encoding" in rpc_status(PB, body).message
    assert stored(data) == []


def test_an_empty_request_is_answered_200(otlp_buck):
    data, url = otlp_buck()
    assert post(url, b"")[0] == 200
    status, _, body = post(url, b"{}", JS)
    assert status == 200 and json.loads(body) == {}


@pytest.fixture
def token_buck(buck):
    """PROD writes prod, STAGE staging, BOTH either of them."""
    def start():
        _, _, data = buck("a", None, "--http", "127.0.0.1:0",
                          "--http-token", f"prod={tokens.hash_token(PROD)}",
                          "--http-token", f"staging={tokens.hash_token(STAGE)}",
                          "--http-token", f"prod={tokens.hash_token(BOTH)}",
                          "--http-token", f"staging={tokens.hash_token(BOTH)}")
        return data, buck_http(data)
    return start


def test_a_token_for_one_environment_decides_it_whatever_the_resource_claims(token_buck):
    data, url = token_buck()
    auth = {"Authorization": f"Bearer {STAGE}"}
    assert post(url, logs("claims prod", env="prod").SerializeToString(), **auth)[0] == 200
    assert post(url, logs("says nothing", env=None).SerializeToString(), **auth)[0] == 200
    assert stored(data, "prod") == []
    got = {e.message: e for e in stored(data, "staging")}
    assert got[b"claims prod"].fields["deployment.environment"] == "prod"  # its claim, kept as a field
    assert "deployment.environment" not in got[b"says nothing"].fields
    # Asking for another environment outright is refused, as on /v1/events.
    status, _, body = post(url, logs("by header").SerializeToString(), **auth, **{"Helios-Environment": "prod"})
    assert status == 403 and rpc_status(PB, body).code == 7
    assert stored(data, "prod") == []


def test_a_token_for_several_environments_takes_the_resources_word_within_them_and_403_outside(token_buck):
    data, url = token_buck()
    auth = {"Authorization": f"Bearer {BOTH}"}
    assert post(url, logs("to prod", env="prod").SerializeToString(), **auth)[0] == 200
    assert post(url, logs("to staging", env="staging").SerializeToString(), **auth)[0] == 200
    req = logs("fine", env="prod")
    req.resource_logs.extend(logs("elsewhere", env="billing").resource_logs)
    status, _, body = post(url, otlp.encode(req, "json"), JS, **auth)
    assert status == 403 and "billing" in json.loads(body)["message"]
    assert [e.message for e in stored(data, "prod")] == [b"to prod"]  # nothing of the refused request
    assert [e.message for e in stored(data, "staging")] == [b"to staging"]
    assert stored(data, "billing") == []


def test_without_a_valid_token_401_and_nothing_is_stored(token_buck):
    data, url = token_buck()
    status, headers, body = post(url, logs("anon").SerializeToString())
    assert status == 401 and headers["WWW-Authenticate"] and rpc_status(PB, body).code == 16
    assert post(url, logs("forged").SerializeToString(), Authorization="Bearer nope")[0] == 401
    assert stored(data) == []


def test_senders_and_counts_by_input_in_stats_metrics_and_status(buck):
    _, _, data = buck("a", None, "--http", "127.0.0.1:0", "--metrics", "127.0.0.1:0")
    url = buck_http(data)
    assert post(url, logs("a", "b", host="otel-host").SerializeToString())[0] == 200
    assert post(url, json.dumps([{"message": "c", "environment": "prod"}]).encode(), JS, "/v1/events")[0] == 200
    assert post(url, b"junk")[0] == 400
    s = poll_until(lambda: (s := json.loads((data / "stats.json").read_text()))["http"].get("otlp_events") == 2 and s,
                   what="the OTLP request in the stats")
    assert s["http"]["senders"]["otlp"]["prod/otel-host"]["events"] == 2
    assert s["http"]["senders"]["http"]["prod/127.0.0.1"]["events"] == 1
    metrics_url = f"http://{s['metrics']}/metrics"
    u = urlsplit(metrics_url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    assert 'helios_input_events_total{input="otlp"} 2.0' in text
    assert 'helios_input_events_total{input="http"} 1.0' in text
    assert 'helios_input_events_total{input="zmq"} 0.0' in text
    assert 'helios_input_errors_total{input="otlp"} 1.0' in text
    out = subprocess.run([sys.executable, "-m", "helios", "status", "--query", s["query"], "--interval", "0"],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert "SENDERS BY INPUT" in out.stdout, out.stdout + out.stderr
    assert "otlp (/v1/logs): 1 sender(s), 2 copies stored: prod/otel-host" in out.stdout
    assert "http (/v1/events): 1 sender(s), 1 copies stored: prod/127.0.0.1" in out.stdout


def test_with_otlp_false_in_the_config_v1_logs_is_not_there_and_v1_events_is(buck, tmp_path):
    config = tmp_path / "helios.toml"
    config.write_text("[buck]\notlp = false\n")
    _, _, data = buck("a", None, "--config", str(config), "--http", "127.0.0.1:0")
    url = buck_http(data)
    assert post(url, logs("nobody listens").SerializeToString())[0] == 404
    assert post(url, b'[{"message": "still here"}]', JS, "/v1/events")[0] == 200
    assert [e.message for e in stored(data)] == [b"still here"]


def test_a_small_request_whose_records_share_a_huge_resource_gets_413_not_a_thousandfold_frame(otlp_buck):
    data, url = otlp_buck()
    req = logs(*["r"] * 5000)
    req.resource_logs[0].resource.attributes.append(kv("padding", "p" * 100_000))
    body = gzip.compress(req.SerializeToString())
    assert len(body) < 200_000  # while the records would carry 5000 x 100 KB
    status, _, answer_ = post(url, body, **{"Content-Encoding": "gzip"})
    assert status == 413 and "copied into each of their log records" in rpc_status(PB, answer_).message
    assert post(url, logs("after").SerializeToString())[0] == 200
    assert [e.message for e in stored(data)] == [b"after"]


def test_past_http_max_pending_requests_get_429_with_retry_after_and_only_acked_records_are_stored(otlp_buck):
    data, url = otlp_buck("--http-max-pending", "1", "--durability", "fsynced")
    answers, acked = [], set()
    lock = threading.Lock()

    def client(k):
        for n in range(10):
            tag = f"c{k}-{n}"
            status, headers, body = post(url, logs(*[f"{tag}-{i}" for i in range(300)]).SerializeToString())
            with lock:
                answers.append((status, headers.get("Retry-After"), headers.get("Content-Type"), body))
                if status == 200:
                    acked.add(tag)

    def some_429():
        threads = [threading.Thread(target=client, args=(k + 10 * len(answers),)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return any(a[0] == 429 for a in answers)
    poll_until(some_429, timeout=60, interval=0, what="a request refused while another was in progress")
    assert {a[0] for a in answers} <= {200, 429}
    for status, retry_after, ctype, body in answers:
        if status == 429:
            assert retry_after == "1" and ctype.startswith(PB) and rpc_status(PB, body).code == 8
    tags = {e.message.decode().rsplit("-", 1)[0] for e in stored(data)}
    assert tags == acked  # what got 429 left nothing behind


def test_curl_posts_otlp_json_plain_and_gzipped(otlp_buck, tmp_path):
    curl = shutil.which("curl")
    if curl is None:
        require("curl", "curl is not installed")
    data, url = otlp_buck()
    body = json.dumps({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "cron"}},
                                    {"key": "host.name", "value": {"stringValue": "box-1"}}]},
        "scopeLogs": [{"logRecords": [{"timeUnixNano": str(T), "severityNumber": 17, "severityText": "ERROR",
                                       "traceId": "5B8EFFF798038103D269B633813FC60C",
                                       "body": {"stringValue": "backup failed"}}]}]}]}).encode()
    (tmp_path / "logs.json").write_bytes(body)
    (tmp_path / "logs.json.gz").write_bytes(gzip.compress(body.replace(b"backup failed", b"backup failed again")))
    for name, extra in (("logs.json", []), ("logs.json.gz", ["-H", "Content-Encoding: gzip"])):
        out = subprocess.run([curl, "-sS", "-w", "\\n%{http_code} %{content_type}", "-X", "POST", f"{url}/v1/logs",
                              "-H", "Content-Type: application/json", *extra, "--data-binary", f"@{tmp_path / name}"],
                             capture_output=True, text=True, timeout=30)
        answer_, status = out.stdout.rsplit("\n", 1)
        assert status.startswith("200 application/json") and json.loads(answer_) == {}, out.stdout + out.stderr
    got = {e.message: e for e in stored(data)}
    assert set(got) == {b"backup failed", b"backup failed again"}
    e = got[b"backup failed"]
    assert (e.app, e.host, e.severity, e.environment) == ("cron", "box-1", 3, "default")
    assert e.fields["trace_id"] == "5b8efff798038103d269b633813fc60c"
