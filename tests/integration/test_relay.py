"""The host relay, with real processes: applications record through it while
bucks come and go, and nothing it spooled is lost, even to kill -9."""

from __future__ import annotations

import json
import signal
import threading

import zmq

from helios.wire.ports import free_endpoint
from tests.helpers import buck_events, poll_until

# Small spool windows and no jitter, so a re-send comes within seconds.
FAST = ["--spool-window", "2", "--resend-jitter", "0", "--stats-interval", "0.1", "--sync-interval", "0.2",
        "--live-wait", "0.2"]


def start_relay(procs, tmp_path, bucks):
    listen = f"ipc://{tmp_path}/run/relay.sock"  # its directory does not exist yet: the relay makes it
    state = tmp_path / "relay"
    args = ["relay", "--listen", listen, "--state-dir", str(state), "--copies", str(min(2, len(bucks))), *FAST]
    for ep in bucks:
        args += ["--buck", ep]
    p = procs(*args, name="relay")
    poll_until(lambda: (state / "stats.json").exists() or not p.alive(), what="the relay to start")
    assert p.alive(), p.output()
    return p, listen, state


def relay_stats(state) -> dict:
    try:
        return json.loads((state / "stats.json").read_text())
    except (OSError, ValueError):
        return {}


def record(recorder, n: int, threads: int = 4) -> None:
    """``n`` events with seq 0..n-1, from several application threads."""
    def work(t: int) -> None:
        for i in range(t, n, threads):
            recorder.record({"message": f"order {i} paid", "seq": i, "severity": "info"})
    ts = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def seqs(*data_dirs) -> set[int]:
    return {e.fields["seq"] for d in data_dirs for e in buck_events(d)[0]}


def test_recorded_events_reach_two_bucks_through_the_relay(procs, buck, recorders, tmp_path):
    _, ep_a, data_a = buck("a")
    _, ep_b, data_b = buck("b")
    _, listen, state = start_relay(procs, tmp_path, [ep_a, ep_b])
    r = recorders(relay=listen, app="shop", environment="stage")
    record(r, 1000)
    assert r.flush(10)
    for data in (data_a, data_b):  # each batch went live to both bucks
        poll_until(lambda: seqs(data) == set(range(1000)), what=f"every event in {data.name}")
    e = buck_events(data_a)[0][0]
    assert (e.environment, e.app, e.severity) == ("stage", "shop", 6)
    assert r.stats()["dropped"] == 0
    poll_until(lambda: relay_stats(state).get("events_sent") == 1000, what="the relay to count them sent live")


def test_applications_keep_recording_while_every_buck_is_down_and_all_events_arrive_when_they_return(
        procs, buck, recorders, tmp_path):
    ep_a, ep_b = free_endpoint(), free_endpoint()  # no buck runs there yet
    _, listen, state = start_relay(procs, tmp_path, [ep_a, ep_b])
    r = recorders(relay=listen, retry_for=5)
    record(r, 2000)
    assert r.flush(10)
    stats = r.stats()
    assert (stats["delivered"], stats["dropped"]) == (2000, 0)  # the application noticed nothing
    poll_until(lambda: relay_stats(state).get("events") == 2000, what="the relay to spool every event")
    assert relay_stats(state).get("events_sent", 0) == 0

    _, _, data_a = buck("a", ep_a)
    _, _, data_b = buck("b", ep_b)
    poll_until(lambda: seqs(data_a, data_b) == set(range(2000)), timeout=30,
               what="every event in the bucks, from the relay's spool")


def test_kill_9_of_the_relay_loses_nothing_it_had_spooled(procs, buck, recorders, tmp_path):
    ep_a, ep_b = free_endpoint(), free_endpoint()
    relay, listen, state = start_relay(procs, tmp_path, [ep_a, ep_b])
    r = recorders(relay=listen)
    record(r, 1500)
    assert r.flush(10)
    poll_until(lambda: relay_stats(state).get("events") == 1500, what="the relay to spool every event")
    relay.stop(signal.SIGKILL)

    _, _, data_a = buck("a", ep_a)
    _, _, data_b = buck("b", ep_b)
    relay.start()  # the same command line, state directory and spool
    poll_until(lambda: seqs(data_a, data_b) == set(range(1500)), timeout=30,
               what="every spooled event in the bucks after the restart")


def test_a_bad_frame_is_counted_and_the_relay_goes_on(procs, buck, recorders, tmp_path):
    _, ep_a, data_a = buck("a")
    _, listen, state = start_relay(procs, tmp_path, [ep_a])
    push = zmq.Context.instance().socket(zmq.PUSH)
    push.connect(listen)
    try:
        push.send(b"\x01\x00garbage that is no frame")
        poll_until(lambda: sum(relay_stats(state).get("bad_frames", {}).values()) == 1, what="a refused frame")
    finally:
        push.close(linger=0)
    r = recorders(relay=listen)
    record(r, 10, threads=1)
    assert r.flush(10)
    poll_until(lambda: seqs(data_a) == set(range(10)), what="the next events in the buck")
