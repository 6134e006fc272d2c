"""A slow or stuck subscriber never slows ingest or the other subscribers;
what it misses is counted, by the bucks and by itself."""

import os
import re
import signal
import time

import zmq

from tests.helpers import buck_events, poll_until
from tests.integration.livemesh import Mesh, append, lines, stats

EVENTS = 60_000


def counted(proc):
    rows = re.findall(r"events=(\d+) rate=[\d.]+/s dropped=(\d+)", proc.output())
    return sum(int(e) for e, _ in rows), sum(int(d) for _, d in rows)


def stored(data):
    """Distinct events stored; read only once the buck's count says they may all be there."""
    if (stats(data) or {}).get("events", 0) < EVENTS:
        return 0
    return len({e.id for e in buck_events(data)[0]})


def noisy(batch):
    """The lines with 128 random bytes (hex) each: a frame's compression cannot
    shrink the backlog so much that the kernel's socket buffers hold it all."""
    return [line[:-1] + b" " + os.urandom(128).hex().encode() + b"\n" for line in batch]


def stuck_subscriber(pubs):
    """A SUB on every buck, subscribed to everything, that never reads."""
    sock = zmq.Context.instance().socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVHWM, 10)
    sock.setsockopt(zmq.RCVBUF, 4096)
    sock.subscribe(b"prod")  # every event, under a prefix of its own so the bucks show it connected
    for p in pubs:
        sock.connect(p)
    return sock


def test_a_stuck_subscriber_slows_neither_ingest_nor_another_subscriber(tmp_path, procs, buck):
    mesh = Mesh(tmp_path, procs, buck, buck_args=("--publish-hwm", "100"))
    # --contains: the lines only, not the tailer's inventory records (live events too).
    reader = mesh.start("subscribe", "--output", "count", "--interval", "0.5", "--contains", "payload", name="reader")
    mesh.wait_subscribed()
    stuck = stuck_subscriber(mesh.pubs)
    try:
        for d in mesh.data:  # the reader's b"" and the stuck one's b"prod"
            poll_until(lambda: stats(d)["live"]["subscriptions"] == 2, what="the stuck subscriber")
        started = time.monotonic()
        sent = lines(0, EVENTS)
        for i in range(0, EVENTS, 5000):
            append(mesh.log, sent[i:i + 5000])
        for d in mesh.data:
            poll_until(lambda: stored(d) == EVENTS, timeout=60, interval=0.5, what=f"all events stored in {d.name}")
        elapsed = time.monotonic() - started

        # The reader gets every event (from one buck or the other), or says what it missed.
        poll_until(lambda: counted(reader)[0] + counted(reader)[1] >= EVENTS, timeout=20,
                   what="the reader to count every event or its drops")
        got, dropped = counted(reader)
        assert got == EVENTS or dropped > 0, (got, dropped)
        # Both bucks saw the stuck subscriber's queue fill, and said so in their stats.
        for d in mesh.data:
            live = poll_until(lambda: stats(d)["live"]["queue_full"] > 0 and stats(d)["live"],
                              what=f"queue_full in {d.name}'s stats")
            assert live["events"] >= EVENTS / 2
        print(f"{EVENTS} events stored by both bucks in {elapsed:.1f} s with a stuck subscriber; "
              f"reader got {got}, counted {dropped} dropped")
    finally:
        stuck.close()


def test_a_subscriber_that_fell_behind_counts_what_it_missed_and_the_bucks_show_it(tmp_path, procs, buck):
    # Small batches: a subscriber of everything gets one message per stored batch.
    mesh = Mesh(tmp_path, procs, buck, buck_args=("--publish-hwm", "50"), tailer_args=("--batch-events", "20"))
    slow = mesh.start("subscribe", "--output", "count", "--interval", "0.3", "--rcvhwm", "10", name="slow")
    mesh.wait_subscribed()
    slow.p.send_signal(signal.SIGSTOP)  # it stops reading while the events flow
    try:
        # What a stopped subscriber's TCP connection holds (up to the kernel's send and
        # receive buffers, some MB on loopback) is not missed: the backlog must be larger.
        append(mesh.log, noisy(lines(0, EVENTS)))
        for d in mesh.data:
            poll_until(lambda: stored(d) == EVENTS, timeout=60, interval=0.5, what=f"all events in {d.name}")
            poll_until(lambda: stats(d)["live"]["queue_full"] > 0, what="queue_full")
    finally:
        slow.p.send_signal(signal.SIGCONT)
    append(mesh.log, lines(EVENTS, 2000))  # later messages on every topic show the gaps
    poll_until(lambda: counted(slow)[1] > 0, timeout=20, what="the subscriber to count its drops")
    got, dropped = counted(slow)
    reported = 0
    for d in mesh.data:
        s = poll_until(lambda: stats(d)["live"]["reporting_subscribers"] == 1 and stats(d)["live"],
                       what=f"a drop report in {d.name}'s stats")
        assert s["dropped_reported_events"] > 0 and s["dropped_reported_messages"] > 0
        reported += s["dropped_reported_events"]
    # What the bucks were told is what the subscriber counted (the last report is at most 1 s old).
    poll_until(lambda: sum(stats(d)["live"]["dropped_reported_events"] for d in mesh.data) == counted(slow)[1],
               what="the reports to catch up")
    assert "dropped" in slow.output() and "reads too slowly" in slow.output()
