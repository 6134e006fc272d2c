"""The tailer's encoders: frames made in worker processes are the frames the
tailer would have made itself, in the order it read the lines, and a worker
that dies loses nothing."""

from __future__ import annotations

import os
import signal

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helios import codec
from helios.model import line_id
from helios.tail.encoder import Encoder, Job, Settings, Workers
from helios.tail.files import Chunk

SETTINGS = Settings("prod", "host-a", "rfc3164", "app", "UTC", 50)
KEY = b"k" * 16


def jobs(n_jobs: int, lines_per_job: int) -> list[Job]:
    out, offset, number = [], 0, 0
    for _ in range(n_jobs):
        data = b"".join(b"Nov 30 10:00:%02d web1 nginx[1]: line %d\n" % ((number + i) % 60, number + i)
                        for i in range(lines_per_job))
        number += lines_per_job
        job = Job()
        job.add(Chunk("/var/log/x.log", KEY, offset, offset + len(data), data), 1_000, 0.0)
        offset += len(data)
        out.append(job)
    return out


def messages(results) -> list[bytes]:
    return [e.message for _, r in results for f in r.frames for e in codec.decode(f)[1]]


def test_frames_hold_at_most_batch_events_and_every_line_once():
    result = Encoder(SETTINGS).encode(jobs(1, 120)[0].chunks)
    assert [codec.check_frame(f).count for f in result.frames] == [50, 50, 20]
    events = [e for f in result.frames for e in codec.decode(f)[1]]
    assert [e.message for e in events] == [b"Nov 30 10:00:%02d web1 nginx[1]: line %d" % (i % 60, i)
                                           for i in range(120)]
    assert events[1].id == line_id(KEY, events[1].offset) and events[1].app == "nginx"
    assert result.lines == 120


def test_chunks_of_two_files_cut_across_frames_keep_each_lines_source_offset_and_id():
    """Runs (one per chunk) cut where a frame ends: every event still has its
    own file, offset, receive time and id, in the order read; a slow-path
    chunk (messages given one per event) keeps its marks."""
    other = b"o" * 16
    a = b"".join(b"Nov 30 10:00:01 web1 a[1]: a%d\n" % i for i in range(30))
    b = b"".join(b"Nov 30 10:00:02 web2 b[2]: b%d\n" % i for i in range(45))
    slow = Chunk.events("/var/log/c.log", other, 900, [(800, b"Nov 30 10:00:03 web3 c: long\nmore", {"split": 1}),
                                                        (850, b"Nov 30 10:00:03 web3 c: end", None)])
    job = Job()
    job.add(Chunk("/var/log/a.log", KEY, 100, 100 + len(a), a), 7, 0.0)
    job.add(Chunk("/var/log/b.log", other, 0, len(b), b), 8, 0.0)
    job.add(slow, 9, 0.0)
    job.add(Chunk("/var/log/a.log", KEY, 100 + len(a), 100 + 2 * len(a), a), 10, 0.0)
    result = Encoder(SETTINGS).encode(job.chunks)
    assert [codec.check_frame(f).count for f in result.frames] == [50, 50, 7] == result.sizes
    events = [e for f in result.frames for e in codec.decode(f)[1]]
    expect, off = [], 100
    for rec, data in ((7, a), (10, a)):
        for line in data.splitlines(keepends=True):
            expect.append(("/var/log/a.log", KEY, off, rec, line[:-1]))
            off += len(line)
        if rec == 7:
            boff = 0
            for line in b.splitlines(keepends=True):
                expect.append(("/var/log/b.log", other, boff, 8, line[:-1]))
                boff += len(line)
            expect += [("/var/log/c.log", other, 800, 9, b"Nov 30 10:00:03 web3 c: long\nmore"),
                       ("/var/log/c.log", other, 850, 9, b"Nov 30 10:00:03 web3 c: end")]
    assert [(e.source, e.source_id, e.offset, e.received, e.message) for e in events] == expect
    assert all(e.id == line_id(e.source_id, e.offset) for e in events)
    assert [e.fields for e in events if e.source == "/var/log/c.log"] == [{"split": 1}, None]
    assert {e.host for e in events} == {"web1", "web2", "web3"}


@pytest.mark.parametrize("count", [1, 2])
def test_workers_give_the_same_frames_in_the_order_of_the_jobs(count):
    local = Workers(SETTINGS, 0)
    expected = [r.frames for j in jobs(12, 80) for _, r in local.submit(j)]
    workers = Workers(SETTINGS, count)
    try:
        got = []
        for job in jobs(12, 80):
            got += [r.frames for _, r in workers.submit(job)]
        got += [r.frames for _, r in workers.drain()]
    finally:
        workers.close()
    assert got == expected


def test_a_dead_worker_loses_nothing_and_the_rest_is_encoded_here(caplog):
    workers = Workers(SETTINGS, 2)
    done = []
    try:
        all_jobs = jobs(10, 80)
        for job in all_jobs[:3]:
            done += workers.submit(job)
        os.kill(workers.procs[0].pid, signal.SIGKILL)
        for job in all_jobs[3:]:
            done += workers.submit(job)
        done += workers.drain()
    finally:
        workers.close()
    assert messages(done) == [b"Nov 30 10:00:%02d web1 nginx[1]: line %d" % (i % 60, i) for i in range(800)]
    assert [j for j, _ in done] == all_jobs
    assert "encodes by itself" in caplog.text


class Deadlock(Exception):
    """Not an OSError: the workers' error handling must not take it for a dead worker."""


def test_big_jobs_with_small_batches_never_deadlock_the_pipes():
    """Results bigger than a socket buffer (many small frames) while the next
    job is being written: with two jobs in flight per worker both ends
    blocked on a full buffer. A hang here fails by the alarm."""
    small = Settings("prod", "host-a", "rfc3164", "app", "UTC", 1)
    workers = Workers(small, 2)
    def hung(*_):
        raise Deadlock("the pipes deadlocked")

    signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    try:
        done = []
        for job in jobs(8, 6000):
            done += workers.submit(job)
        done += workers.drain()
    finally:
        signal.alarm(0)
        workers.close()
    assert len(messages(done)) == 48_000


PER_PATH = Settings("prod", "host-a", "auto", "", "UTC", 50, parse=(
    {"paths": ["/var/log/billing/*.log"], "environment": "billing"},
    {"paths": ["/var/log/mixed.log"], "drop": ["^DEBUG"],
     "rules": [{"name": "audit", "regex": r"^AUDIT (?P<user>\w+)", "environment": "audit"}]},
))


def by_environment(result) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}
    for frame, env, size in zip(result.frames, result.envs, result.sizes):
        header, events = codec.decode(frame)
        assert header.environment == env and len(events) == size
        out.setdefault(env, []).extend(e.message for e in events)
    return out


def chunk(path: str, lines: list[bytes], key: bytes = KEY) -> Chunk:
    data = b"".join(line + b"\n" for line in lines)
    return Chunk(path, key, 0, len(data), data)


def test_files_of_a_parse_table_with_an_environment_go_out_in_frames_of_that_environment():
    billing = [b"invoice %d" % i for i in range(70)]
    other = [b"plain %d" % i for i in range(3)]
    result = Encoder(PER_PATH).encode([(chunk("/var/log/billing/a.log", billing[:40]), 1_000),
                                       (chunk("/var/log/app.log", other, b"o" * 16), 1_000),
                                       (chunk("/var/log/billing/a.log.1", billing[40:]), 1_000)])
    assert by_environment(result) == {"billing": billing, "prod": other}
    assert result.envs == ["billing", "billing", "prod"] and result.sizes == [50, 20, 3]   # never a mixed frame


def test_a_rule_with_an_environment_moves_the_lines_it_matches_even_between_dropped_ones():
    lines = [b"hello", b"DEBUG x", b"DEBUG y", b"AUDIT alice logged in", b"DEBUG z", b"bye", b"AUDIT bob"]
    result = Encoder(PER_PATH).encode([(chunk("/var/log/mixed.log", lines), 1_000)])
    got = by_environment(result)
    assert got["audit"] == [b"AUDIT alice logged in", b"AUDIT bob"]
    assert got["prod"] == [b"hello", b"", b"", b"bye"]          # each run of dropped lines is one empty event
    assert result.dropped == 3 and result.lines == 7


@pytest.mark.parametrize("count", [0, 1])
def test_workers_keep_each_frames_environment(count):
    workers = Workers(PER_PATH, count)
    try:
        job = Job()
        job.add(chunk("/var/log/billing/a.log", [b"one", b"two"]), 1_000, 0.0)
        job.add(chunk("/var/log/mixed.log", [b"AUDIT carol", b"three"], b"m" * 16), 1_000, 0.0)
        done = workers.submit(job) + workers.drain()
    finally:
        workers.close()
    (_, result), = done
    assert by_environment(result) == {"billing": [b"one", b"two"], "audit": [b"AUDIT carol"], "prod": [b"three"]}


@settings(max_examples=200, deadline=None)
@given(lengths=st.lists(st.integers(0, 300), min_size=1, max_size=60), room=st.integers(1, 70),
       offset=st.integers(0, 10**9))
def test_a_chunk_cut_at_a_jobs_room_keeps_every_byte_and_offset(lengths, room, offset):
    data = b"".join(b"x" * n + b"\n" for n in lengths)
    chunk = Chunk("/var/log/x.log", KEY, offset, offset + len(data), data)
    job = Job()
    rest = job.add(chunk, 1, 0.0, room)
    (first, _), = job.chunks
    assert job.lines == min(room, len(lengths)) == first.data.count(b"\n")
    assert job.commits == {KEY: first.end} and first.offset == offset and first.end == offset + len(first.data)
    if room >= len(lengths):
        assert rest is None and first is chunk
    else:
        assert first.data + rest.data == data
        assert (rest.offset, rest.end) == (first.end, chunk.end)
        assert rest.lines == rest.data.count(b"\n")    # counted once: the next job takes it as is


def test_jobs_cut_at_batch_events_make_full_frames_only():
    """The tailer fills a job to ``batch_events`` lines and carries the rest
    of a chunk to the next job: 120 lines in chunks of 35 make frames of 50,
    50 and 20, the lines in order, each offset as read."""
    data = b"".join(b"Nov 30 10:00:00 web1 nginx[1]: line %d\n" % i for i in range(120))
    starts = [0] + [i + 1 for i, c in enumerate(data) if c == 10]
    chunks = [Chunk("/x", KEY, starts[i], starts[min(i + 35, 120)], data[starts[i]:starts[min(i + 35, 120)]])
              for i in range(0, 120, 35)]
    done, job = [], Job()
    for chunk in chunks:
        while chunk is not None:
            chunk = job.add(chunk, 1, 0.0, SETTINGS.batch_events - job.lines)
            if job.lines >= SETTINGS.batch_events:
                done.append(job)
                job = Job()
    done.append(job)
    encoder = Encoder(SETTINGS)
    results = [encoder.encode(j.chunks) for j in done]
    assert [r.sizes for r in results] == [[50], [50], [20]]
    assert [j.commits[KEY] for j in done] == [starts[50], starts[100], len(data)]
    events = [e for r in results for f in r.frames for e in codec.decode(f)[1]]
    assert [e.offset for e in events] == starts[:120]
    assert [e.message for e in events] == data.splitlines()


def test_crlf_lines_lose_their_cr_and_keep_their_offsets_beside_plain_ones():
    """Plain lines travel as one block, CRLF lines as columns (their
    messages lack the "\\r" their offsets count): both decode as read."""
    plain = b"Nov 30 10:00:00 web1 a: one\nNov 30 10:00:00 web1 a: two\n"
    crlf = b"Nov 30 10:00:00 web1 a: three\r\nNov 30 10:00:00 web1 a: four\r\n"
    job = Job()
    job.add(Chunk("/x", KEY, 0, len(plain), plain), 1, 0.0)
    job.add(Chunk("/x", KEY, len(plain), len(plain) + len(crlf), crlf), 1, 0.0)
    result = Encoder(SETTINGS).encode(job.chunks)
    events = [e for f in result.frames for e in codec.decode(f)[1]]
    assert [(e.offset, e.message) for e in events] == [
        (0, b"Nov 30 10:00:00 web1 a: one"), (28, b"Nov 30 10:00:00 web1 a: two"),
        (56, b"Nov 30 10:00:00 web1 a: three"), (87, b"Nov 30 10:00:00 web1 a: four")]
    assert result.line_bytes == len(plain) + len(crlf) - 4


def test_a_job_crosses_the_pipe_whole_and_a_job_cut_short_is_the_end():
    """The chunks' bytes go raw after the job's message; the worker reads
    exactly each chunk's bytes however the socket splits them, and a tailer
    that lets go in the middle of a chunk ends the worker's job (EOFError),
    nothing half-read is encoded."""
    import socket
    import threading

    from helios.tail.encoder import Pipe, _recv_job, _send_job

    big = b"".join(b"Nov 30 10:00:00 web1 a: %d\n" % i for i in range(40_000))     # ~1 MB: many socket reads
    chunks = [(Chunk("/a", KEY, 0, len(big), big), 5),
              (Chunk.events("/b", KEY, 99, [(7, b"x\ny", {"split": 1}), (50, b"z", None)]), 6),
              (Chunk("/c", KEY, 3, 3, b""), 7)]
    tx, rx = (Pipe(s) for s in socket.socketpair())
    try:
        sender = threading.Thread(target=_send_job, args=(tx, chunks, {KEY}))
        sender.start()
        got = _recv_job(rx)
        sender.join()
        assert got == (chunks, {KEY})     # and the keys of the contents found to be container logs
        assert not rx.ready()
        # Cut short: the message says 1 MB follows, 10 bytes come, then the end.
        tx.send(msgpack.packb([[("/a", KEY, 0, len(big), len(big), None, None, None, 5)], []], use_bin_type=True))
        tx.send_raw(big[:10])
        tx.close()
        assert rx.ready()       # the end counts as in: the tailer reads it and finds the worker gone
        with pytest.raises(EOFError):
            _recv_job(rx)
        with pytest.raises(EOFError):
            rx.recv()
    finally:
        tx.close()
        rx.close()
def test_frames_name_their_input_kind_container_logs_apart_from_files_also_in_a_worker():
    pods = Settings("prod", "host-a", "rfc3164", "app", "UTC", 50, (), ("/var/log/pods/",))
    line = b"Nov 30 10:00:00 web1 nginx[1]: a line\n"
    chunks = [(Chunk("/var/log/x.log", KEY, 0, len(line), line), 1_000),
              (Chunk("/var/log/pods/ns_pod_uid/c/0.log", b"p" * 16, 0, len(line), line), 1_000)]
    result = Encoder(pods).encode(chunks)
    assert sorted(codec.check_frame(f).input for f in result.frames) == ["container", "file"]
    assert [codec.check_frame(f).input for f in Encoder(SETTINGS).encode(chunks).frames] == ["file"]
    job = Job()
    for chunk, received in chunks:
        job.add(chunk, received, 0.0)
    w = Workers(pods, 1)   # the settings cross to the worker as JSON (the roots as a list)
    try:
        w.submit(job)
        done = w.drain()
    finally:
        w.close()
    assert sorted(codec.check_frame(f).input for _, r in done for f in r.frames) == ["container", "file"]


@pytest.mark.parametrize("count", [0, 1])
def test_a_file_found_to_be_a_container_log_goes_out_as_input_container_elsewhere_as_file(count):
    """The tailer marks the contents it found to be container logs outside the
    container roots (Job.containers); their frames name input "container",
    in this process and through a worker alike."""
    docker = b'{"log":"hello\\n","stream":"stdout","time":"2024-03-11T08:15:02.118Z"}\n' * 3
    plain = b"Nov 30 10:00:00 web1 nginx[1]: a line\n" * 2
    job = Job()
    job.add(Chunk("/srv/copied/c0ffee-json.log", b"c" * 16, 0, len(docker), docker), 1_000, 0.0, container=True)
    job.add(Chunk("/var/log/x.log", KEY, 0, len(plain), plain), 1_000, 0.0)
    workers = Workers(SETTINGS, count)
    try:
        (_, result), = workers.submit(job) + workers.drain()
    finally:
        workers.close()
    kinds = {codec.decode(f)[0].input: [e.source for e in codec.decode(f)[1]] for f in result.frames}
    assert kinds == {"container": ["/srv/copied/c0ffee-json.log"] * 3, "file": ["/var/log/x.log"] * 2}
