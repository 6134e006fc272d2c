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
