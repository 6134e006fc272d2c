"""The audit cannot be fooled: break things on purpose, with a real tailer and
real bucks, and `helios audit` must name each loss (exit 1), while a clean
run says so (exit 0).

Permission: the tests run as root, and root reads any file whatever its mode.
The tailer of the permission case therefore runs under ``setpriv`` without
the capabilities CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (dropped from its
bounding set): it is still uid 0, but file modes now apply to it, so a file of
mode 000 really cannot be opened by it.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys

from tests.helpers import Proc, poll_until
from tests.integration.test_tailer_loses_nothing import Case, Writer


def audit(case):
    args = [sys.executable, "-m", "helios", "audit"]
    for _, _, data in case.b:
        args += ["--data-dir", str(data)]
    r = subprocess.run(args, capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout + r.stderr


def lines(start, n):
    return b"".join(Writer.line(None, i) for i in range(start, start + n))


def entry(case, path):
    """The tailer's positions entry for the content last seen at ``path``."""
    doc = json.loads((case.tmp / "state" / "positions.json").read_text())
    return next((e for e in doc["files"].values() if e["path"] == str(path)), None)


def test_a_truncated_gzip_rotated_while_the_tailer_was_down_is_named(tmp_path, procs, buck):
    case = Case(tmp_path, procs, buck)
    app = case.paths[0]
    with open(app, "ab") as f:
        f.write(lines(0, 100))
    case.check(set(range(100)))  # a clean run: every line held, and the audit exits 0
    assert case.tailer.stop(signal.SIGTERM) == 0
    with open(app, "ab") as f:
        f.write(lines(100, 20000))
    data = gzip.compress(app.read_bytes())
    (app.parent / "app.log.1.gz").write_bytes(data[: len(data) // 2])  # cut short
    app.write_bytes(lines(20100, 10))
    case.tailer = case.start_tailer()
    poll_until(lambda: {20100, 20109, 100} <= case.held().keys(), timeout=60, what="the new file and the gzip read")
    # Cut short and new, it may still be being compressed: called corrupt once it stopped changing (10 s).
    poll_until(lambda: "corrupt" in audit(case)[1], timeout=60, interval=1, what="the audit to name the cut gzip")
    code, out = audit(case)
    assert code == 1 and "app.log.1.gz" in out and "not read to its end" in out and "ends early" in out, out


def test_a_file_deleted_while_the_tailer_was_stopped_behind_it_is_named(tmp_path, procs, buck):
    # Small batches: a tailer reading 600k lines/s caught up with each burst before
    # its saved positions showed it behind (the case needs it stopped behind the writer).
    case = Case(tmp_path, procs, buck, tailer_extra=("--batch-events", "5"))
    app = case.paths[0]
    with open(app, "ab") as f:
        f.write(lines(0, 100))
    case.check(set(range(100)))
    def behind():
        e = entry(case, app)
        return e is not None and e["size"] == size and e["offset"] < size * 0.9

    start = 100
    for _ in range(4):  # a fast tailer may catch up before it is caught behind: then more lines
        with open(app, "ab") as f:
            for i in range(start, start + 300_000, 20_000):
                f.write(lines(i, 20_000))
        start += 300_000
        size = app.stat().st_size
        try:
            poll_until(behind, timeout=30, interval=0.01, what="the tailer to see the whole size while behind")
            break
        except AssertionError:
            continue
    else:
        raise AssertionError("the tailer was never seen behind the writer")
    case.tailer.p.send_signal(signal.SIGSTOP)
    try:
        # copytruncate, and the copy deleted (a rotation count of 0) while the tailer cannot run
        shutil.copyfile(app, app.parent / "app.log.1")
        with open(app, "r+b") as f:
            f.truncate(0)
        os.unlink(app.parent / "app.log.1")
        with open(app, "ab") as f:
            f.write(lines(2_000_000, 10))
    finally:
        case.tailer.p.send_signal(signal.SIGCONT)
    poll_until(lambda: 2_000_009 in case.held(), timeout=60, what="the new lines")
    poll_until(lambda: audit(case)[0] == 1, timeout=30, what="the audit to name the lost tail")
    code, out = audit(case)
    assert "app.log" in out and "seen on disk, held by no buck" in out and "deleted" in out, out


class Unprivileged(Proc):
    """A helios process that is root without the capabilities that bypass file modes."""

    def command(self) -> list[str]:
        drop = "-dac_override,-dac_read_search"
        return ["setpriv", f"--bounding-set={drop}", f"--inh-caps={drop}", "--", *super().command()]


def test_read_permission_removed_mid_file_is_named_and_a_clean_run_exits_0_again(tmp_path, procs, buck):
    started = []

    class PermCase(Case):
        def start_tailer(self):
            t = Unprivileged(self.tailer_args(), self.tmp / f"tailer-{len(started)}.out")
            started.append(t)
            poll_until(lambda: "Tailer on" in t.output() or not t.alive(), what="the tailer to start")
            return t

    try:
        case = PermCase(tmp_path, procs, buck)
        app = case.paths[0]
        with open(app, "ab") as f:
            f.write(lines(0, 100))
        case.check(set(range(100)))
        assert case.tailer.stop(signal.SIGTERM) == 0
        with open(app, "ab") as f:
            f.write(lines(100, 100))
        os.chmod(app, 0)  # nobody (but a privileged root) may read the rest
        case.tailer = case.start_tailer()
        poll_until(lambda: "Cannot open" in case.tailer.output(), timeout=30, what="the tailer to be refused")
        poll_until(lambda: audit(case)[0] == 1, timeout=30, what="the audit to name the unreadable file")
        code, out = audit(case)
        assert "app.log" in out and "permission-denied" in out and "held by no buck" in out, out
        os.chmod(app, 0o644)  # given back: the tailer reads the rest, and the audit is clean again
        case.check(set(range(200)))
    finally:
        for t in started:
            try:
                t.stop()
            except AssertionError:
                pass
