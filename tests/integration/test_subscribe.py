"""``helios subscribe``: every buck's live events, each once, filtered, as lines, JSON or counts."""

import os
import re
import signal
import subprocess
import sys
import time

import zmq

from helios import codec
from helios.model import Event, random_id
from helios.wire.ports import free_endpoint
from tests.helpers import ROOT, poll_until
from tests.integration.livemesh import Mesh, append, json_lines, lines, stats


def test_each_appended_line_is_printed_once_though_both_bucks_publish_it(tmp_path, procs, buck):
    mesh = Mesh(tmp_path, procs, buck)
    sub = mesh.start("subscribe", "--output", "json", name="subscribe")
    mesh.wait_subscribed()
    sent = lines(0, 500)
    append(mesh.log, sent)
    append(mesh.log, [b"<14>Nov 23 10:00:00 web-0 app0[1]: the last line\n"])
    got = poll_until(lambda: (js := json_lines(sub)) and js[-1]["message"].endswith("the last line") and js,
                     timeout=20, what="the last line")
    assert len(got) == 501 and len({j["id"] for j in got}) == 501
    # Order is the order read within the reorder delay; on a loaded machine a batch may come in parts.
    assert sorted(j["message"] for j in got[:500]) == sorted(ln.rstrip(b"\n").decode() for ln in sent)
    first = next(j for j in got if j["offset"] == len(sent[0]))
    assert (first["environment"], first["host"], first["app"], first["severity"]) == ("prod", "web-1", "app1", "alert")
    assert first["severity_code"] == 1 and first["source"] == str(mesh.log) and len(first["id"]) == 32


def test_filters_by_app_severity_host_and_substring_select_only_matching_events(tmp_path, procs, buck):
    mesh = Mesh(tmp_path, procs, buck)
    sub = mesh.start("subscribe", "--output", "json", "--app", "app3", "--app", "app7", "--severity", "err",
                     "--host", "web-1", "--contains", "payload", name="subscribe")
    mesh.wait_subscribed()
    sent = lines(0, 2000)
    append(mesh.log, sent)
    want = [ln.rstrip(b"\n").decode() for i, ln in enumerate(sent)
            if i % 20 in (3, 7) and i % 8 <= 3 and i % 3 == 1]
    assert want
    got = poll_until(lambda: len(json_lines(sub)) >= len(want) and json_lines(sub), timeout=20,
                     what="the matching lines")
    assert sorted(j["message"] for j in got) == sorted(want)
    assert all(j["app"] in ("app3", "app7") and j["severity_code"] <= 3 and j["host"] == "web-1" for j in got)


def test_line_output_shows_time_environment_host_app_severity_and_the_message_as_read(tmp_path, procs, buck):
    mesh = Mesh(tmp_path, procs, buck)
    sub = mesh.start("subscribe", name="subscribe")
    mesh.wait_subscribed()
    append(mesh.log, [b"<11>Nov 23 10:00:05 web-9 sshd[7]: caf\xc3\xa9 \xff raw bytes\n"])
    poll_until(lambda: b"raw bytes" in sub.log_path.read_bytes(), what="the line")
    line = [ln for ln in sub.log_path.read_bytes().splitlines() if b"raw bytes" in ln][0]
    assert re.fullmatch(rb"\d{4}-\d\d-\d\dT10:00:05\.000Z prod web-9 sshd err <11>Nov 23 10:00:05 web-9 "
                        rb"sshd\[7\]: caf\xc3\xa9 \xff raw bytes", line), line


def test_count_output_adds_up_to_the_events_sent_once_each(tmp_path, procs, buck):
    mesh = Mesh(tmp_path, procs, buck)
    # Only the tailed lines: the tailer's inventory records (app helios-inventory) are live events too.
    sub = mesh.start("subscribe", "--output", "count", "--interval", "0.3", "--env", "prod", "--contains", "payload",
                     name="subscribe")
    mesh.wait_subscribed()
    append(mesh.log, lines(0, 3000))

    def counted():
        rows = re.findall(r"events=(\d+) rate=[\d.]+/s dropped=(\d+)", sub.output())
        return sum(int(e) for e, _ in rows), sum(int(d) for _, d in rows)

    poll_until(lambda: counted()[0] >= 3000, timeout=20, what="3000 events counted")
    # A few more intervals: no copy from the second buck is counted late.
    n = len(re.findall("events=", sub.output()))
    poll_until(lambda: len(re.findall("events=", sub.output())) >= n + 3, what="three more intervals")
    assert counted() == (3000, 0)


def test_ctrl_c_exits_cleanly_with_code_0(tmp_path, procs, buck):
    mesh = Mesh(tmp_path, procs, buck)
    sub = mesh.start("subscribe", name="subscribe")
    mesh.wait_subscribed()
    append(mesh.log, lines(0, 10))
    poll_until(lambda: "line 00000009" in sub.output(), what="the lines")
    assert sub.stop(signal.SIGINT) == 0
    assert "Traceback" not in sub.output()


def test_a_closed_pipe_ends_it_quietly(tmp_path, buck):
    _, ep, data = buck("a")
    sub = subprocess.Popen(f"{sys.executable} -m helios subscribe --buck {ep} | head -n 1",
                           shell=True, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           start_new_session=True)
    push = zmq.Context.instance().socket(zmq.PUSH)
    push.connect(ep)
    try:
        poll_until(lambda: stats(data)["live"]["subscriptions"] >= 1, what="the subscription")

        def one_more_event():  # until head has its line and the subscriber has noticed
            t = time.time_ns()
            push.send(codec.encode_events("prod", "h", [Event(random_id(), t, t, "h", "a", 6, "", None, b"x", None)]))
            return sub.poll() is not None

        poll_until(one_more_event, interval=0.05, what="the subscriber to end")
        out, err = sub.communicate(timeout=5)
    finally:
        push.close(linger=0)
        if sub.poll() is None:  # the pipeline is its own process group: end all of it
            os.killpg(sub.pid, signal.SIGKILL)
            sub.communicate()
    assert out.count(b"\n") == 1
    assert b"Traceback" not in err and b"BrokenPipe" not in err, err


def test_a_buck_started_after_the_subscriber_is_connected_to_and_heard(tmp_path, procs, buck):
    pub = free_endpoint()
    sub = procs("--log-level", "warning", "subscribe", "--feed", pub, "--output", "json", name="subscribe")
    _, ep, data = buck("late", None, "--publish", pub)
    log = tmp_path / "late.log"
    log.write_bytes(b"")
    procs("tailer", "--path", str(log), "--env", "prod", "--start-at", "beginning", "--buck", ep, "--copies", "1",
          "--state-dir", str(tmp_path / "tailer-state"))
    poll_until(lambda: stats(data)["live"]["subscriptions"] >= 1, what="the subscription")
    append(log, lines(0, 5))
    poll_until(lambda: len(json_lines(sub)) == 5, what="the 5 lines")
