"""Rotations with compression, kills around them, and a glob that matches the
rotated files: every line reaches the bucks under one id, and none is missing
(issue 16, findings 1-5). Real tailer, bucks and files; `Case.check` also runs
`helios audit`, which must find nothing."""

from __future__ import annotations

import bz2
import gzip
import os
import shutil
import signal
import time

import pytest
import zstandard

from tests.helpers import poll_until
from tests.integration.test_tailer_loses_nothing import Case, Writer, run_writer

PACK = {".gz": gzip.compress, ".bz2": bz2.compress, ".zst": lambda b: zstandard.ZstdCompressor().compress(b)}


def compress(path, ext=".gz"):
    """logrotate's compress: the rotated file replaced by its compressed copy."""
    packed = path.with_name(path.name + ext)
    packed.write_bytes(PACK[ext](path.read_bytes()))
    os.unlink(path)


def shift(app, ext=".gz"):
    """app.log.N.gz -> N+1 (oldest first), app.log.1 -> app.log.2.gz"""
    olds = sorted((p for p in app.parent.glob(app.name + ".*") if p.name.endswith(ext)),
                  key=lambda p: -int(p.name[len(app.name) + 1:].split(".")[0]))
    for p in olds:
        n = int(p.name[len(app.name) + 1:].split(".")[0])
        os.rename(p, app.with_name(f"{app.name}.{n + 1}{ext}"))
    one = app.with_name(app.name + ".1")
    if one.exists():
        os.rename(one, app.with_name(app.name + ".2"))
        compress(app.with_name(app.name + ".2"), ext)


@pytest.mark.parametrize("ext", sorted(PACK))
def test_the_tailer_down_across_compressed_rotations_loses_nothing(tmp_path, procs, buck, ext):
    case = Case(tmp_path, procs, buck)
    app = case.paths[0]
    w = Writer(case.paths, rate=2000)
    w.start()
    poll_until(lambda: len(case.held()) > 500, what="lines flowing")
    case.tailer.stop(signal.SIGKILL)
    for _ in range(3):  # rename + compress, three times, while the tailer is down
        poll_until(lambda: app.stat().st_size > 30_000, what="lines in the file")
        with w.lock:
            shift(app, ext)
            os.rename(app, app.with_name("app.log.1"))
            app.touch()
    case.tailer = case.start_tailer()
    time.sleep(0.5)  # the writer goes on after the restart
    case.check(set(range(w.stop())))


def test_kill_9_moments_after_a_copytruncate_then_compression_loses_and_duplicates_nothing(tmp_path, procs, buck):
    case = Case(tmp_path, procs, buck)
    app = case.paths[0]
    w = Writer(case.paths, rate=3000)
    w.start()
    for delay in (0.05, 0.2, 0.6):
        poll_until(lambda: app.stat().st_size > 20_000, what="lines in the file")
        with w.lock:
            shift(app)
            shutil.copyfile(app, app.with_name("app.log.1"))
            with open(app, "r+b") as f:
                f.truncate(0)
        time.sleep(delay)  # the case itself: how long after the copytruncate the kill comes
        case.tailer.stop(signal.SIGKILL)
        poll_until(lambda: app.stat().st_size > 10_000, what="lines written while the tailer is dead")
        with w.lock:
            shift(app)  # the copy is compressed before the tailer is back
            shutil.copyfile(app, app.with_name("app.log.1"))
            with open(app, "r+b") as f:
                f.truncate(0)
        case.tailer = case.start_tailer()
    time.sleep(0.5)
    case.check(set(range(w.stop())))


def test_a_glob_matching_rotated_and_compressed_siblings_reads_each_line_once(tmp_path, procs, buck):
    case = Case(tmp_path, procs, buck, glob=str(tmp_path / "logs" / "app.log*"))
    app = case.paths[0]

    def copytruncate_and_compress(w):
        with w.lock:
            shift(app)
            shutil.copyfile(app, app.with_name("app.log.1"))
            with open(app, "r+b") as f:
                f.truncate(0)

    expected = run_writer(case, 4.0, action=copytruncate_and_compress, every=0.7)
    case.check(expected)
    assert all(e.message.isascii() for e in case.events()), "compressed bytes were read as text"


def gzip_rotate(app, method):
    """logrotate with compress, no delaycompress: .N.gz -> .N+1.gz, then app.log
    renamed (a new one created) or copied and truncated to app.log.1.gz."""
    shift(app)
    if method == "rename":
        os.rename(app, app.with_name("app.log.1"))
        app.touch()
    else:
        shutil.copyfile(app, app.with_name("app.log.1"))
        os.truncate(app, 0)
    compress(app.with_name("app.log.1"))


def test_a_compressed_copy_being_finished_when_the_tailer_is_stopped_across_two_rotations_loses_nothing(
        tmp_path, procs, buck):
    """Soak seed 1018, with the tailer stopped at a chosen point: while it
    finishes a compressed copy (A, app.log.1.gz) beside a larger live file
    (B), SIGSTOP; then a rename (B) and a copytruncate of the new file (C,
    which the tailer never opened) put C's copy at app.log.1.gz; SIGCONT. A's
    copy ends before B (read in turns), at a name that now holds C: C must
    still be read, and the audit agree."""
    # Parsing in the reading process: each turn of reading costs its parsing, so A is read for a while.
    case = Case(tmp_path, procs, buck, tailer_extra=["--encoders", "0"])
    app = case.paths[0]
    with open(app, "ab") as f:
        f.write(lines(0, 100))
    case.check(set(range(100)))
    case.tailer.p.send_signal(signal.SIGSTOP)
    try:
        with open(app, "ab") as f:
            f.write(lines(100, 50_000))
        gzip_rotate(app, "copytruncate")          # A: read to line 99, the rest only in app.log.1.gz
        with open(app, "ab") as f:
            for i in range(200_000, 400_000, 50_000):
                f.write(lines(i, 50_000))         # B: read in turns with A, and longer
    finally:
        case.tailer.p.send_signal(signal.SIGCONT)
    # The chosen point: the tailer has opened A's copy and reads it and B in turns.
    poll_until(lambda: "finishing the copy from byte" in case.tailer.output(), timeout=60, interval=0.002,
               what="the tailer to finish A from its compressed copy")
    case.tailer.p.send_signal(signal.SIGSTOP)
    try:
        gzip_rotate(app, "rename")                # B -> app.log.1.gz, A -> app.log.2.gz
        with open(app, "ab") as f:
            f.write(lines(500_000, 2000))         # C, never opened by the tailer
        gzip_rotate(app, "copytruncate")          # C -> app.log.1.gz, B -> .2.gz, A -> .3.gz
        with open(app, "ab") as f:
            f.write(lines(600_000, 10))           # D
    finally:
        case.tailer.p.send_signal(signal.SIGCONT)
    case.check(set(range(50_100)) | set(range(200_000, 400_000)) | set(range(500_000, 502_000))
               | set(range(600_000, 600_010)), timeout=120)


def lines(start, n):
    return b"".join(Writer.line(None, i) for i in range(start, start + n))
