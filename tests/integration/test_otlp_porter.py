"""An OpenTelemetry exporter's retries, through the whole mesh: the same
request sent twice to one buck and once more to another (a retry behind a
load balancer) becomes each record once in the porter's index."""

import time

from helios.buck import otlp
from tests.helpers import buck_http, buck_query, poll_until
from tests.integration.test_otlp_http import logs, post
from tests.integration.test_porter import index_events, porter_args, settled


def test_a_request_retried_to_the_same_and_to_another_buck_is_each_record_once_in_the_index(
        tmp_path, buck, procs):
    bucks = [buck(n, None, "--window", "1", "--http", "127.0.0.1:0") for n in ("a", "b")]
    urls = [buck_http(data) for _, _, data in bucks]
    queries = [buck_query(data) for _, _, data in bucks]
    now = time.time_ns()
    req = logs(*[f"record {i}" for i in range(200)], t=now)
    req.resource_logs.extend(logs("twin", "twin", t=now).resource_logs)  # two identical records, two positions
    body = req.SerializeToString()
    for url in (urls[0], urls[0], urls[1]):  # the first answer "lost", retried here, then on another buck
        assert post(url, body)[0] == 200
    assert post(urls[1], otlp.encode(req, "json"), "application/json")[0] == 200  # the same in OTLP/JSON
    procs(*porter_args(tmp_path, queries), name="porter")
    since = time.time() + 2
    poll_until(lambda: settled(tmp_path, since), timeout=30, what="the porter to index every window")
    got = index_events(tmp_path)
    messages = sorted(e.message for e in got)
    assert len(got) == 202 and len({e.id for e in got}) == 202
    assert messages.count(b"twin") == 2 and messages.count(b"record 7") == 1
