"""The tailer's encoders: frames made in worker processes are the frames the
tailer would have made itself, in the order it read the lines, and a worker
that dies loses nothing."""

from __future__ import annotations

import os
import signal

import pytest

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
