"""The relay's syslog framing processes (helios.syslognet.workers.Pool):
the same events as framing in the relay, in the order of the reads, and
nothing lost when a worker dies."""

from __future__ import annotations

import logging
import os
import signal

import pytest

from helios import codec
from helios.syslognet.framing import Deframer
from helios.syslognet.workers import Pool

PEER = "192.0.2.7:41000"
MAX = 1024


def pool(count: int) -> Pool:
    return Pool("default", "relay-host", "UTC", MAX, count)


def job(i: int, n: int = 300, kind: str = "tcp"):
    """A read's job: half its messages in the uncut block, half cut already."""
    messages = [b"<13>Mar 11 08:15:02 gate app%d[7]: read %d line %d k=v" % (i, i, k) for k in range(n)]
    return (kind, b"\n".join(messages[:n // 2]), messages[n // 2:], PEER, [0] if i % 3 == 0 else [],
            1_700_000_000_000_000_000 + i)


def events(results):
    """(read, message, host, app, source, truncated, peer) of every event, in order (ids are random)."""
    out = []
    for job, (frames, _) in results:
        for frame, n, nbytes in frames:
            _, evs = codec.decode(frame)
            assert len(evs) == n and sum(len(e.message) for e in evs) == nbytes
            out += [(job[-1], e.message, e.host, e.app, e.source, e.fields.get("truncated", False),
                     e.fields["peer"]) for e in evs]
    return out


def run(p: Pool, jobs) -> list:
    got = []
    for j in jobs:
        got += p.submit(j)
    return got + p.drain()


@pytest.mark.parametrize("count", [1, 2, 3])
def test_workers_give_the_events_the_relay_would_make_in_the_order_of_the_reads(count):
    jobs = [job(i) for i in range(12)]
    p = pool(count)
    try:
        got = run(p, jobs)
        assert [j for j, _ in got] == jobs
        want = events(run(pool(0), jobs))
        assert events(got) == want and len(want) == 12 * 300
        assert p.in_flight == 0
    finally:
        p.close()


def test_a_read_cut_in_a_worker_gives_what_the_deframer_gives_in_the_relay():
    stream = (b"<13>one\n\n<13>" + b"x" * 3000 + b"\n<13>two\n" + b"7 <13>oct" + b"<13>three\n<13>cut")
    whole = Deframer(MAX)
    want = whole.feed(stream)
    raw = Deframer(MAX)
    block, messages = raw.feed_raw(stream)
    p = pool(1)
    try:
        (_, (frames, problems)), = run(p, [("tcp", block, messages, PEER, raw.truncated, 1)])
    finally:
        p.close()
    evs = codec.decode(frames[0][0])[1]
    assert [e.message for e in evs] == want
    assert [i for i, e in enumerate(evs) if e.fields.get("truncated")] == whole.truncated == [1]
    assert {**problems, **raw.problems} == dict(whole.problems) == {"empty message": 1, "oversized": 1}


def test_udp_reads_with_a_peer_per_message_keep_each_peer():
    p = pool(2)
    try:
        messages = [b"<13>no host here %d" % k for k in range(50)]
        peers = [f"198.51.100.{k}:514" for k in range(50)]
        (_, (frames, _)), = run(p, [("udp", b"", messages, peers, [], 1)])
        evs = codec.decode(frames[0][0])[1]
        assert [e.fields["peer"] for e in evs] == peers
        assert [e.host for e in evs] == [f"198.51.100.{k}" for k in range(50)]
        assert {e.source for e in evs} == {"syslog/udp"}
    finally:
        p.close()


def test_a_dead_worker_loses_nothing_and_the_relay_frames_the_rest_itself(caplog):
    jobs = [job(i) for i in range(10)]
    want = events(run(pool(0), jobs))
    p = pool(2)
    try:
        got = []
        for i, j in enumerate(jobs):
            if i == 4:
                os.kill(p.procs[0].pid, signal.SIGKILL)
            got += p.submit(j)
        with caplog.at_level(logging.ERROR):
            got += p.drain()
        assert events(got) == want
        assert not p.conns   # it frames by itself from then on
    finally:
        p.close()


def test_a_worker_that_ends_while_idle_is_noticed_when_its_pipe_says_so():
    p = pool(1)
    try:
        fd = p.fds()[0]
        p.procs[0].kill()
        p.procs[0].wait()
        assert p.collect(fd) == []
        assert not p.conns and not p.fds()
        (_, (frames, _)), = run(p, [job(1)])
        assert sum(n for _, n, _ in frames) == 300
    finally:
        p.close()


def test_big_reads_never_deadlock_the_pipes():
    lines = [b"<13>Mar 11 08:15:02 gate app: " + os.urandom(400).hex().encode() for _ in range(3000)]
    big = [("tcp", b"\n".join(lines), [], PEER, [], i) for i in range(6)]
    p = pool(2)
    try:
        got = run(p, big)
        assert sum(n for _, (frames, _) in got for _, n, _ in frames) == 6 * 3000
    finally:
        p.close()


@pytest.mark.parametrize("extra", [b"", b"\r", b"\n", b"y" * 2000], ids=["clean", "crlf", "empty-line", "oversized"])
def test_a_whole_block_framed_in_one_cut_gives_the_events_of_the_messages_cut_first(extra):
    from helios.syslognet.events import Framer

    lines = [b"<13>Mar 11 08:15:02 gate app[7]: line %d k=v" % k for k in range(200)]
    lines[7] += extra
    stream = b"\n".join(lines) + b"\n"
    d = Deframer(MAX)
    want_messages = d.feed(stream)
    want = Framer("default", "relay-host", "UTC").frames(want_messages, PEER, "syslog/tcp", 5, d.truncated)
    raw = Deframer(MAX)
    block, rest = raw.feed_raw(stream)
    assert block and not rest
    p = pool(0)
    (_, (frames, problems)), = run(p, [("tcp", block, [], PEER, [], 5)])
    assert {**problems, **raw.problems} == dict(d.problems)
    got = [e._replace(id=b"") for f, _, _ in frames for e in codec.decode(f)[1]]
    assert got == [e._replace(id=b"") for f, _, _ in want for e in codec.decode(f)[1]]
    assert len(got) == len(want_messages) and [e.message for e in got] == want_messages


def test_results_taken_out_of_order_behind_a_slow_read_do_not_stop_the_pool():
    """One worker's results come in (the relay's poll) while the oldest read
    is still out on the other: the reads held behind it fill the pool's
    window, and the next read waits for the oldest, then goes out."""
    jobs = [job(i) for i in range(8)]
    want = events(run(pool(0), jobs))
    p = pool(2)
    try:
        slow, fast = p.fds()
        got = p.submit(jobs[0]) + p.submit(jobs[1])   # jobs[0] out on the slow worker
        for j in jobs[2:4]:
            got += p.collect(fast)
            got += p.submit(j)                         # to the fast worker again
        got += p.collect(fast)
        assert got == [] and p.in_flight == 4 and list(p.busy) == [slow]
        for j in jobs[4:]:
            got += p.submit(j)
        got += p.drain()
        assert [j for j, _ in got] == jobs
        assert events(got) == want
        assert p.conns and p.in_flight == 0   # no worker was given up
    finally:
        p.close()


@pytest.mark.parametrize("where", ["submit", "collect"])
def test_an_unexpected_error_in_the_pool_loses_no_read_the_relay_frames_them_itself(where, caplog):
    """A "worker" (the far end of a real socket pair, held by the test)
    answers with what no worker sends: the pool fails in a way it does not
    expect, gives up its workers and frames every read still out itself."""
    import socket

    import msgpack

    from helios.workerprocs import Pipe

    jobs = [job(i, n=20) for i in range(3)]
    want = events(run(pool(0), jobs))
    p = pool(0)
    mine, theirs = socket.socketpair()
    p.conns = [Pipe(mine)]
    worker = Pipe(theirs)
    try:
        got = p.submit(jobs[0])
        worker.recv(), worker.recv()     # the job came
        worker.send(msgpack.packb(5))          # not (sizes, problems)
        with caplog.at_level(logging.ERROR):
            if where == "collect":
                got += p.collect(p.fds()[0])
            got += p.submit(jobs[1])                 # "submit": waits for jobs[0], whose result is garbage
            got += p.submit(jobs[2])
            got += p.drain()
        assert [j for j, _ in got] == jobs
        assert events(got) == want
        assert not p.conns and p.in_flight == 0
        assert "syslog framing pool failed" in caplog.text
    finally:
        worker.close()
        p.close()
