"""The tailer loses nothing: a correctness suite modelled on Vector's.

For each case a writer appends numbered lines at a steady rate while the case
happens; at the end the union of the bucks, after dedup by id, holds every
line exactly once (no line under two ids, none missing), and `helios audit`
reports no gap.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict


from tests.helpers import bucks_events, poll_until

FAST = ["--spool-window", "2", "--resend-jitter", "0.5", "--rotate-wait", "1", "--partial-flush", "0.5",
        "--positions-interval", "0.2", "--rescan-interval", "0.2", "--live-wait", "0.2"]


class Writer(threading.Thread):
    """Appends numbered lines in bursts (open, write, close), so that a file
    rotated by rename is written again under its name at the next burst.
    ``lock`` is held during a burst: a rotation that takes it is atomic with
    respect to the writer, as logrotate's create and copytruncate expect."""

    def __init__(self, paths, rate=2000, burst=20, start=0):
        super().__init__(daemon=True)
        self.paths = [str(p) for p in paths]
        self.rate, self.burst = rate, burst
        self.n = start
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.paused = threading.Event()

    def line(self, i):
        return b"Nov 23 10:%02d:%02d web-%d app[42]: line %08d payload %s\n" % (
            (i // 60) % 60, i % 60, i % 3, i, b"x" * (i % 50))

    def run(self):
        next_t = time.monotonic()
        while not self.stopping.is_set():
            if not self.paused.is_set():
                with self.lock:
                    for k, path in enumerate(self.paths):
                        with open(path, "ab") as f:
                            f.write(b"".join(self.line(self.n + j * len(self.paths) + k) for j in range(self.burst)))
                    self.n += self.burst * len(self.paths)
            next_t += self.burst * len(self.paths) / self.rate
            self.stopping.wait(max(0.0, next_t - time.monotonic()))

    def stop(self):
        self.stopping.set()
        self.join()
        return self.n


class Case:
    """Two bucks, a tailer, a writer; and the checks every case ends with."""

    def __init__(self, tmp_path, procs, buck, paths=None, tailer_extra=(), glob=None):
        self.tmp, self.procs, self.buck = tmp_path, procs, buck
        self.logs = tmp_path / "logs"
        self.logs.mkdir()
        self.paths = paths or [self.logs / "app.log"]
        for p in self.paths:
            p.touch()
        self.b = [buck("a"), buck("b")]
        self.glob = glob or str(self.logs / "*.log")
        self.tailer_extra = list(tailer_extra)
        self.tailer = self.start_tailer()

    def tailer_args(self):
        args = ["tailer", "--path", self.glob, "--env", "prod", "--start-at", "beginning",
                "--state-dir", str(self.tmp / "state"), *FAST, *self.tailer_extra]
        for _, ep, _ in self.b:
            args += ["--buck", ep]
        return args

    def start_tailer(self):
        saved = self.positions_saved()
        t = self.procs(*self.tailer_args(), name=f"tailer-{time.monotonic_ns()}")
        # A fresh tailer reads what it finds at its first scan; the cases start writing after it.
        poll_until(lambda: "Tailer on" in t.output() or not t.alive(), what="the tailer to start")
        if any(p.exists() for p in self.paths):
            poll_until(lambda: "Following" in t.output() or not t.alive(), what="the tailer to follow")
        # And it has saved where it is (at once after its first scan): a kill from now on finds
        # its files known ("Tailer on" is said before its first scan).
        poll_until(lambda: self.positions_saved() != saved or not t.alive(), what="the tailer's first save")
        return t

    def positions_saved(self):
        """Which save of positions.json is on disk (each save is a new file, renamed into place)."""
        try:
            st = (self.tmp / "state" / "positions.json").stat()
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns

    def restart_buck(self, i, sig=signal.SIGTERM):
        proc, ep, data = self.b[i]
        proc.stop(sig)
        proc.start()
        return proc

    def events(self):
        """The tailed lines the bucks hold (the tailer's inventory records left out)."""
        return bucks_events(data for _, _, data in self.b)

    def held(self):
        """line number -> set of ids carrying it, over both bucks."""
        ids = defaultdict(set)
        for e in self.events():
            if b" line " in e.message:
                n = int(e.message.split(b" line ")[1][:8])
                ids[n].add(e.id)
        return ids

    def check(self, expected: set[int], timeout=60):
        def complete():
            return self.held().keys() >= expected
        try:
            poll_until(complete, timeout=timeout, interval=0.3, what="every line in the bucks")
        finally:
            held = self.held()
            missing = sorted(expected - held.keys())
            assert not missing, f"{len(missing)} lines missing, first {missing[:10]}"
        twice = {n: ids for n, ids in held.items() if len(ids) > 1}
        assert not twice, f"{len(twice)} lines held under more than one id: {sorted(twice)[:10]}"
        assert held.keys() == expected, f"unexpected lines: {sorted(held.keys() - expected)[:10]}"
        self.audit()

    def audit(self):
        args = [sys.executable, "-m", "helios", "audit"]
        for _, _, data in self.b:
            args += ["--data-dir", str(data)]
        r = subprocess.run(args, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "No gaps" in r.stdout


def run_writer(case, seconds, paths=None, rate=2000, action=None, every=None, until=None):
    """The writer for ``seconds``, ``action`` every ``every`` s meanwhile; and on
    past them until ``until()`` holds (a case counted in actions, not seconds:
    a loaded machine may do fewer of them in the time)."""
    w = Writer(paths or case.paths, rate=rate)
    w.start()
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end or (until is not None and not until()):
        if action and every:
            time.sleep(every)  # the pace of the case itself (rotations per second), not a wait for a result
            action(w)
        else:
            time.sleep(0.05)  # the writer runs for `seconds`: this is the case's length, not a wait for a result
    return set(range(w.stop()))


def test_rotation_by_rename_and_create_twenty_times_loses_nothing(tmp_path, procs, buck):
    case = Case(tmp_path, procs, buck)
    app = case.paths[0]
    rotations = [0]

    def rotate(w):
        if rotations[0] >= 20:
            return
        with w.lock:
            for i in range(3, 0, -1):  # app.log.3 <- .2 <- .1 <- app.log
                if (src := app.with_name(f"app.log.{i}")).exists():
                    os.rename(src, app.with_name(f"app.log.{i + 1}"))
            os.rename(app, app.with_name("app.log.1"))
            app.touch()
        rotations[0] += 1

    expected = run_writer(case, 3.0, action=rotate, every=0.12, until=lambda: rotations[0] >= 20)
    assert rotations[0] == 20
    case.check(expected)


def test_copytruncate_rotation_loses_and_duplicates_nothing(tmp_path, procs, buck):
    case = Case(tmp_path, procs, buck)
    app = case.paths[0]

    def copytruncate(w):
        with w.lock:
            if (old := app.with_name("app.log.1")).exists():
                os.rename(old, app.with_name(f"app.log.{time.monotonic_ns()}"))
            shutil.copyfile(app, app.with_name("app.log.1"))
            with open(app, "r+b") as f:
                f.truncate(0)

    expected = run_writer(case, 3.0, action=copytruncate, every=0.5)
    case.check(expected)


def test_truncation_in_place_is_noticed_and_the_new_lines_are_read(tmp_path, procs, buck):
    case = Case(tmp_path, procs, buck)
    app = case.paths[0]
    w = Writer(case.paths, rate=2000)
    w.start()
    for _ in range(3):
        poll_until(lambda: w.n > 500, what="lines written")
        w.paused.set()
        with w.lock:
            written = w.n
        poll_until(lambda: len(case.held()) >= written, timeout=30, what="the tailer to catch up")
        with open(app, "r+b") as f:
            f.truncate(0)
        w.paused.clear()
        time.sleep(0.3)  # the writer's pace: let it write less than it had before the truncation
    expected = set(range(w.stop()))
    case.check(expected)


def test_kill_9_of_the_tailer_mid_run_and_restart_loses_nothing(tmp_path, procs, buck):
    case = Case(tmp_path, procs, buck)
    w = Writer(case.paths, rate=2000)
    w.start()
    poll_until(lambda: len(case.held()) > 1000, what="lines flowing")
    case.tailer.stop(signal.SIGKILL)
    at_kill = w.n
    poll_until(lambda: w.n > at_kill + 2000, what="lines written while the tailer is dead")
    case.tailer = case.start_tailer()
    time.sleep(1.0)  # the writer goes on for a while after the restart
    case.check(set(range(w.stop())))


def test_kill_9_of_one_buck_and_restart_loses_nothing(tmp_path, procs, buck):
    case = Case(tmp_path, procs, buck)
    w = Writer(case.paths, rate=2000)
    w.start()
    poll_until(lambda: len(case.held()) > 1000, what="lines flowing")
    proc, _, _ = case.b[1]
    proc.stop(signal.SIGKILL)
    at_kill = w.n
    poll_until(lambda: w.n > at_kill + 2000, what="lines written while one buck is dead")
    proc.start()
    time.sleep(1.0)  # the writer goes on for a while after the restart
    case.check(set(range(w.stop())))


def test_both_bucks_down_for_ten_seconds_then_back_loses_nothing(tmp_path, procs, buck):
    case = Case(tmp_path, procs, buck)
    w = Writer(case.paths, rate=2000)
    w.start()
    poll_until(lambda: len(case.held()) > 1000, what="lines flowing")
    for proc, _, _ in case.b:
        proc.stop(signal.SIGKILL)
    time.sleep(10.0)  # the case itself: both bucks down for 10 s
    for proc, _, _ in case.b:
        proc.start()
    time.sleep(1.0)
    case.check(set(range(w.stop())), timeout=60)


def test_lines_written_while_the_tailer_was_stopped_are_read_from_two_rotations(tmp_path, procs, buck):
    case = Case(tmp_path, procs, buck)
    app = case.paths[0]
    w = Writer(case.paths, rate=2000)
    w.start()
    poll_until(lambda: len(case.held()) > 1000, what="lines flowing")
    assert case.tailer.stop(signal.SIGTERM) == 0
    for _ in range(2):
        poll_until(lambda: app.stat().st_size > 20_000, what="lines in the file")
        with w.lock:
            if (old := app.with_name("app.log.1")).exists():
                os.rename(old, app.with_name("app.log.2"))
            os.rename(app, app.with_name("app.log.1"))
            app.touch()
    poll_until(lambda: app.stat().st_size > 20_000, what="lines in the newest file")
    case.tailer = case.start_tailer()
    time.sleep(1.0)
    case.check(set(range(w.stop())))


def test_a_sighup_reload_loses_no_position_and_follows_the_new_globs(tmp_path, procs, buck):
    conf = tmp_path / "tailer.toml"
    case = None

    def write_conf(globs):
        bucks = ", ".join(f'"{ep}"' for _, ep, _ in case.b)
        conf.write_text(f'[tailer]\npaths = [{", ".join(repr(g) for g in globs)}]\nbucks = [{bucks}]\n')

    class ConfCase(Case):
        def tailer_args(self):
            return ["tailer", "-c", str(conf), "--env", "prod", "--start-at", "beginning",
                    "--state-dir", str(self.tmp / "state"), *FAST]

        def start_tailer(self):
            write_conf([str(self.logs / "app.log")])
            return super().start_tailer()

    case = ConfCase.__new__(ConfCase)
    Case.__init__(case, tmp_path, procs, buck)
    other = case.logs / "other.log"
    other.touch()
    w = Writer([case.paths[0], other], rate=2000)
    w.start()
    poll_until(lambda: len(case.held()) > 1000, what="lines flowing")
    write_conf([str(case.logs / "app.log"), str(other)])
    reloads = lambda: case.tailer.output().count("Configuration reloaded")  # noqa: E731
    case.tailer.p.send_signal(signal.SIGHUP)
    poll_until(lambda: reloads() == 1, what="the first reload")
    case.tailer.p.send_signal(signal.SIGHUP)  # a second reload changes nothing and loses nothing
    poll_until(lambda: reloads() == 2, what="the second reload")
    case.check(set(range(w.stop())))


def test_five_hundred_files_written_at_once_are_all_read(tmp_path, procs, buck):
    case = Case(tmp_path, procs, buck)
    paths = [case.logs / f"f{i:03d}.log" for i in range(500)]
    w = Writer(paths, rate=5000, burst=2)
    w.start()
    time.sleep(2.0)
    case.check(set(range(w.stop())), timeout=90)


def test_a_one_megabyte_line_and_a_file_without_a_trailing_newline_arrive_whole(tmp_path, procs, buck):
    case = Case(tmp_path, procs, buck)
    big = b"Nov 23 10:00:00 web-1 app[1]: line 00000000 " + b"y" * 1_000_000 + b"\n"
    with open(case.paths[0], "ab") as f:
        f.write(big)
        f.write(b"Nov 23 10:00:01 web-1 app[1]: line 00000001 the last line has no newline")
    case.check({0, 1})
    by_number = {int(e.message.split(b" line ")[1][:8]): e for e in case.events()}
    assert by_number[0].message == big[:-1]
    assert by_number[1].message.endswith(b"has no newline") and by_number[1].fields == {"unterminated": True}


def test_multiline_events_keep_a_stack_trace_together(tmp_path, procs, buck):
    case = Case(tmp_path, procs, buck, tailer_extra=["--multiline-start", r"^[A-Z][a-z]{2} [ \d]\d "])
    trace = (b"Nov 23 10:00:00 web-1 app[1]: line 00000000 Traceback (most recent call last):\n"
             b'  File "x.py", line 1, in <module>\n'
             b"ValueError: boom\n")
    with open(case.paths[0], "ab") as f:
        f.write(trace)
        f.write(b"Nov 23 10:00:01 web-1 app[1]: line 00000001 next event\n")
    case.check({0, 1})
    by_number = {int(e.message.split(b" line ")[1][:8]): e for e in case.events()}
    assert by_number[0].message == trace[:-1]
    assert by_number[1].offset == len(trace)


def test_a_second_tailer_on_the_same_state_directory_refuses_to_start(tmp_path, procs, buck):
    case = Case(tmp_path, procs, buck)
    r = subprocess.run([sys.executable, "-m", "helios", *case.tailer_args()], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1
    assert "another tailer is running with the state directory" in r.stderr
    assert case.tailer.alive()
