"""The Prometheus endpoint of a running buck and tailer: what an operator's
scraper sees moves with the events sent."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

import zmq
from prometheus_client.parser import text_string_to_metric_families

from helios import __version__
from tests.helpers import buck_http, poll_until


def metrics_address(stats: Path) -> str:
    """HOST:PORT of a service's metrics (port 0 was asked for), from its stats.json."""
    def address():
        try:
            return json.loads(stats.read_text()).get("metrics")
        except (OSError, ValueError):
            return None
    return poll_until(address, what=f"the metrics address in {stats}")


def scrape(address: str) -> dict[tuple, float]:
    """Every sample: (name, sorted labels) -> value."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(address: str, metric: str, **labels: str) -> float | None:
    return scrape(address).get((metric, tuple(sorted(labels.items()))))


def post(url: str, body: bytes, **headers: str) -> int:
    req = urllib.request.Request(url + "/v1/events", data=body, method="POST",
                                 headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_a_bucks_counters_move_with_the_events_it_stores(buck, recorders):
    _, ep, data = buck("a", None, "--metrics", "127.0.0.1:0", "--http", "127.0.0.1:0")
    addr = metrics_address(data / "stats.json")
    assert value(addr, "helios_info", service="buck", name="buck-a", version=__version__) == 1
    assert value(addr, "helios_events_in_total") == 0

    r = recorders(bucks=[ep], copies=1)
    for i in range(300):
        r.record(message=f"event {i}")
    assert r.flush(10)
    poll_until(lambda: value(addr, "helios_events_in_total") == 300, what="300 events in")
    assert value(addr, "helios_frames_in_total") >= 1
    assert value(addr, "helios_bytes_in_total") > 0

    http = buck_http(data)
    assert post(http, b'[{"message": "one"}]') == 200
    assert post(http, b"not json") == 400
    assert post(http, b'[{"message": "two"}]', **{"Helios-Durability": "fsynced"}) == 200
    poll_until(lambda: value(addr, "helios_http_requests_total", code="200") == 2, what="two 200s counted")
    assert value(addr, "helios_http_requests_total", code="400") == 1
    assert value(addr, "helios_events_in_total") == 302
    assert value(addr, "helios_fsync_seconds_count") >= 1  # the fsynced request's group commit


def test_a_bucks_refused_frames_are_counted_by_reason(buck):
    import zmq

    _, ep, data = buck("a", None, "--metrics", "127.0.0.1:0")
    addr = metrics_address(data / "stats.json")
    push = zmq.Context.instance().socket(zmq.PUSH)
    push.connect(ep)
    try:
        push.send(b"\x09 this is not a frame", copy=True)
        drops = lambda: {dict(k[1]).get("reason"): v for k, v in scrape(addr).items()  # noqa: E731
                         if k[0] == "helios_dropped_frames_total" and v}
        found = poll_until(drops, what="a refused frame counted")
    finally:
        push.close(linger=0)
    assert sum(found.values()) == 1 and "write error" not in found


def test_a_tailers_counters_move_with_the_lines_it_reads_and_its_reconnects(procs, buck, tmp_path):
    buck_a, ep, _ = buck("a")
    log = tmp_path / "app.log"
    log.write_bytes(b"")
    state = tmp_path / "tailer"
    procs("tailer", "--path", str(log), "--buck", ep, "--copies", "1", "--state-dir", str(state),
          "--start-at", "beginning", "--positions-interval", "0.2", "--metrics", "127.0.0.1:0", name="tailer")
    addr = metrics_address(state / "stats.json")
    poll_until(lambda: value(addr, "helios_buck_connected", buck=ep) == 1, what="the tailer connected")

    lines = b"".join(b"Nov 23 10:00:%02d web-1 app[42]: line %d\n" % (i % 60, i) for i in range(500))
    with open(log, "ab") as f:
        f.write(lines)
    poll_until(lambda: value(addr, "helios_events_out_total") == 500, what="500 events out")
    m = scrape(addr)
    assert m[("helios_events_in_total", ())] == 500
    assert m[("helios_frames_to_buck_total", (("buck", ep),))] >= 1
    assert m[("helios_file_read_lag_bytes", (("path", str(log)),))] == 0
    assert m[("helios_files_followed", ())] == 1
    assert m[("helios_spool_bytes", ())] > len(lines) / 20  # compressed frames, in the spool
    assert m[("helios_spool_buckets", ())] >= 1
    assert m[("helios_reconnects_total", (("buck", ep),))] == 0

    # The buck goes away and comes back on the same endpoint: one reconnect.
    buck_a.stop()
    poll_until(lambda: value(addr, "helios_buck_connected", buck=ep) == 0, what="the tailer to notice")
    buck("a", ep)
    poll_until(lambda: value(addr, "helios_reconnects_total", buck=ep) == 1, what="one reconnect counted")
    assert value(addr, "helios_buck_connected", buck=ep) == 1


def test_a_porters_counters_show_windows_ported_and_what_is_behind(procs, buck, tmp_path):
    from tests.integration.test_porter import porter_args, start_bucks, status_file

    ((_, ingest, data, query),) = start_bucks(buck, "a")
    now = time.time_ns()
    from helios import codec
    from helios.model import Event, random_id

    frame = codec.encode_events("prod", "web-1", [Event(random_id(), now, now, "web-1", "app", 6, "", None,
                                                        b"line %d" % i, None) for i in range(50)])
    sock = zmq.Context.instance().socket(zmq.PUSH)
    sock.connect(ingest)
    sock.send(frame)
    sock.close(linger=2000)
    procs(*porter_args(tmp_path, [query], "--metrics", "127.0.0.1:0"), name="porter")
    address = poll_until(lambda: status_file(tmp_path).get("metrics"), timeout=30, what="the porter's metrics address")
    poll_until(lambda: (value(address, "helios_windows_indexed_total") or 0) >= 1, timeout=30,
               what="a window indexed, in the porter's metrics")
    assert value(address, "helios_info", service="porter", name=f"porter@{os.uname().nodename}", version=__version__) == 1
    assert value(address, "helios_windows_index_behind", environment="prod") is not None


def test_the_web_app_serves_its_metrics_and_counts_open_pages(procs, buck):
    import re

    import socketio

    _, ingest, data = buck("a")
    pub = json.loads((data / "stats.json").read_text())["publish"]
    web = procs("web", "--listen", "127.0.0.1:0", "--feed", pub, "--metrics", "127.0.0.1:0", name="web")
    address = poll_until(lambda: (m := re.search(r"serves its metrics on http://([\d.:]+)/metrics", web.output()))
                         and m.group(1), timeout=30, what="the web app's metrics address")
    assert value(address, "helios_web_sessions") == 0
    assert value(address, "helios_events_in_total") == 0
    url = "http://" + poll_until(lambda: (m := re.search(r"live tail on http://([\d.:]+)/", web.output()))
                                 and m.group(1), timeout=30, what="the web app's address")
    client = socketio.Client()
    client.connect(url)
    try:
        poll_until(lambda: value(address, "helios_web_sessions") == 1, timeout=30, what="the open page counted")
    finally:
        client.disconnect()
    poll_until(lambda: value(address, "helios_web_sessions") == 0, timeout=30, what="the closed page uncounted")
