"""The client library over HTTP, against real bucks: what is recorded arrives
whole, or is in the log whole; record() stays fast while the buck is down."""

import json
import logging
import re
import subprocess
import sys
import textwrap

import pytest

from helios.client import Handler
from helios.wire.ports import free_port
from tests.helpers import ROOT, buck_events, buck_http, poll_until

LINE = re.compile(r"Helios could not deliver event ([0-9a-f]{32}) because (.*?); the event follows: (.*)$")


@pytest.fixture
def http_buck(buck):
    def start(name="a", *extra, port=0):
        proc, _, data = buck(name, None, "--http", f"127.0.0.1:{port}", *extra)
        return proc, data, buck_http(data)
    return start


def stats(data):
    return json.loads((data / "stats.json").read_text())


def logged(text):
    """(id, reason, logged map) per event line of a log."""
    return [(m[1], m[2], json.loads(m[3])) for m in map(LINE.match, text.splitlines()) if m]


def test_recorded_events_arrive_whole_with_their_id_times_host_and_app(http_buck, recorders):
    _, data, url = http_buck()
    r = recorders(bucks=[url], app="shop", host="web-9", environment="stage")
    r.record({"message": "order paid", "severity": "info", "order": 1234, "amount": 12.5,
              "time": "2024-01-31T12:00:00.000000001Z"})
    r.record(message="cache warm", entries=5120, app="cache")
    assert r.flush(10)
    got = {e.message: e for e in buck_events(data)[0]}
    paid, warm = got[b"order paid"], got[b"cache warm"]
    assert (paid.environment, paid.host, paid.app, paid.severity) == ("stage", "web-9", "shop", 6)
    assert paid.time == 1706702400000000001 and paid.fields == {"order": 1234, "amount": 12.5}
    assert warm.app == "cache" and warm.fields == {"entries": 5120} and warm.time == warm.received
    assert paid.id != warm.id and len(paid.id) == 16
    assert r.stats()["delivered"] == 2


def test_log_records_sent_through_the_handler_arrive_with_their_extra_fields(http_buck, recorders):
    _, data, url = http_buck()
    r = recorders(bucks=[url])
    logger = logging.getLogger("test.shop")
    handler = Handler(r)
    logger.addHandler(handler)
    try:
        logger.warning("payment of %s failed", "order-7", extra={"order": 7, "card": "visa"})
    finally:
        logger.removeHandler(handler)
    assert r.flush(10)
    [e] = buck_events(data)[0]
    assert e.message == b"payment of order-7 failed" and e.severity == 4
    assert e.fields["order"] == 7 and e.fields["card"] == "visa" and e.fields["logger"] == "test.shop"


def test_each_batch_is_acked_at_the_durability_asked_for(http_buck, recorders):
    _, data, url = http_buck()
    r = recorders(bucks=[url], durability="fsynced")
    for i in range(300):
        r.record(message=f"m{i}")
    assert r.flush(10)
    assert len(buck_events(data)[0]) == 300
    poll_until(lambda: stats(data)["http"].get("ok_fsynced", 0) >= 1, what="fsynced requests in the stats")


def test_an_event_too_large_for_the_buck_is_logged_and_the_rest_of_its_batch_delivered(
        http_buck, recorders, caplog):
    _, data, url = http_buck("a", "--http-max-body", "4096")
    r = recorders(bucks=[url], batch_events=100)
    caplog.set_level(logging.ERROR, "helios.client")
    r.record(message="before")
    big = {"message": "big", "blob": bytes(range(256)) * 40}  # 10 kB that lz4 cannot shrink enough
    r.record(big)
    for i in range(20):
        r.record(message=f"after {i}")
    assert r.flush(10)
    assert {e.message for e in buck_events(data)[0]} == {b"before"} | {f"after {i}".encode() for i in range(20)}
    [(ident, why, shown)] = [x for x in map(LINE.match, caplog.messages) if x] and \
        [(m[1], m[2], m[3]) for m in map(LINE.match, caplog.messages) if m]
    assert why.startswith("the buck refused the batch with 413")
    assert json.loads(shown)["event"]["message"] == "big"


ACCEPTANCE = textwrap.dedent("""
    import json, logging, sys, time
    log_path, url, count, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    logging.basicConfig(filename=log_path, level=logging.ERROR, format="%(message)s")
    from helios.client import Recorder
    r = Recorder(bucks=[url], app="accept", queue_size=5000, retry_for=60, flush_timeout=30, timeout=5)
    took, raised = [], 0
    clock = time.perf_counter_ns
    for i in range(count):
        event = {"message": f"event {i}", "seq": i, "severity": i % 8, "pad": "p" * (i % 40)}
        if i % 997 == 0:
            event["bad"] = object()  # not serialisable: must be logged
        t = clock()
        try:
            r.record(event)
        except BaseException:
            raised += 1
        took.append(clock() - t)
        if i % 250 == 249:
            time.sleep(0.008)  # the producer's pace (about 30,000 events/s), not a wait for a result
    delivered = r.close(30)
    took.sort()
    json.dump({"raised": raised, "p50_ns": took[len(took) // 2], "p99_ns": took[len(took) * 99 // 100],
               "max_ns": took[-1], "stats": r.stats(), "delivered": delivered}, open(out, "w"))
""")


def test_100000_events_recorded_while_the_buck_is_down_for_a_while_are_all_in_the_buck_or_the_log(
        tmp_path, http_buck):
    count = 100_000
    port = free_port()
    proc, data, url = http_buck("a", port=port)
    script, log, out = tmp_path / "record.py", tmp_path / "client.log", tmp_path / "result.json"
    script.write_text(ACCEPTANCE)
    app = subprocess.Popen([sys.executable, str(script), str(log), url, str(count), str(out)], cwd=ROOT)
    try:
        poll_until(lambda: stats(data)["events"] >= 10_000, timeout=30, what="10,000 events in the buck")
        proc.stop(9)  # kill -9 in the middle of the run
        poll_until(lambda: log.exists() and "the queue is full" in log.read_text(), timeout=30,
                   what="the client to overflow while the buck is down")
        proc.start()
        assert app.wait(90) == 0
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
    result = json.loads(out.read_text())
    assert result["raised"] == 0
    assert result["p99_ns"] < 5_000_000, result
    events, _ = buck_events(data)  # a record torn by kill -9 is skipped, not returned
    stored = {}
    for e in events:
        seq = e.fields["seq"]
        assert e.message == f"event {seq}".encode() and e.severity == seq % 8 and e.app == "accept"
        assert e.fields == {"seq": seq, "pad": "p" * (seq % 40)}
        stored[seq] = e.id
    lost = {}
    for ident, why, shown in logged(log.read_text()):
        ev = shown["event"]
        seq = ev["seq"]
        assert ev["message"] == f"event {seq}" and ev["pad"] == "p" * (seq % 40)  # the whole event
        assert shown["id"] == ident
        lost[seq] = why
    print(f"record(): p50 {result['p50_ns'] / 1e3:.1f} us, p99 {result['p99_ns'] / 1e3:.1f} us, "
          f"max {result['max_ns'] / 1e6:.1f} ms; {len(stored)} events stored, {len(lost)} logged")
    assert set(stored) | set(lost) == set(range(count))
    unserialisable = set(range(0, count, 997))
    assert not unserialisable & set(stored) and unserialisable <= set(lost)
    assert any(why.startswith("the queue is full") for why in lost.values())
    assert result["stats"]["recorded"] == count
    assert result["stats"]["dropped"] == len(lost)


EXITING = textwrap.dedent("""
    import logging, sys
    logging.basicConfig(stream=sys.stdout, level=logging.ERROR, format="%(message)s")
    import helios.client as helios
    helios.configure(bucks=[sys.argv[1]], flush_timeout=float(sys.argv[2]), retry_for=60)
    for i in range(1000):
        helios.record(message=f"event {i}", seq=i)
    # no flush: the library delivers at exit
""")


def run_exiting(tmp_path, url, flush_timeout):
    script = tmp_path / "exiting.py"
    script.write_text(EXITING)
    return subprocess.run([sys.executable, str(script), url, str(flush_timeout)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_a_process_that_exits_without_flushing_delivers_its_events_at_exit(tmp_path, http_buck):
    _, data, url = http_buck()
    done = run_exiting(tmp_path, url, 10)
    assert done.returncode == 0 and done.stdout == "", done.stdout + done.stderr
    assert sorted(e.fields["seq"] for e in buck_events(data)[0]) == list(range(1000))


def test_at_exit_events_no_buck_took_within_the_flush_timeout_are_logged_whole(tmp_path):
    nowhere = f"http://127.0.0.1:{free_port()}"
    done = run_exiting(tmp_path, nowhere, 0.5)
    assert done.returncode == 0
    lost = logged(done.stdout)
    assert sorted(shown["event"]["seq"] for _, _, shown in lost) == list(range(1000))
    assert all("exiting" in why for _, why, _ in lost)
