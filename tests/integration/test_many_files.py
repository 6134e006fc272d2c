"""Many files under a tight descriptor limit: with ``ulimit -n`` (hard) far
below ``max_open_files``, the tailer says so, keeps fewer files open, parks
the rest without a descriptor, and still reads every line of every file,
first and later ones, woken by inotify."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.helpers import Proc, buck_events, poll_until

LIMIT = 150


class Limited(Proc):
    def command(self) -> list[str]:
        return ["prlimit", f"--nofile={LIMIT}:{LIMIT}", *super().command()]


def line(text: str) -> bytes:
    return b"Nov 23 10:00:00 web-1 app[1]: " + text.encode() + b"\n"


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="util-linux prlimit is not installed")
def test_a_descriptor_limit_below_max_open_files_parks_files_and_loses_nothing(tmp_path, buck):
    logs = tmp_path / "logs"
    logs.mkdir()
    n = 400
    for i in range(n):
        (logs / f"f{i:03d}.log").write_bytes(line(f"file {i} line 0"))
    b = [buck("a"), buck("b")]
    args = ["tailer", "--path", str(logs / "*.log"), "--env", "prod", "--start-at", "beginning",
            "--state-dir", str(tmp_path / "state"), "--max-open-files", "512", "--positions-interval", "0.2",
            "--rescan-interval", "0.2", "--live-wait", "0.2", *[x for _, ep, _ in b for x in ("--buck", ep)]]
    t = Limited(args, tmp_path / "tailer.out")
    try:
        def messages():
            return {e.message for _, _, data in b for e in buck_events(data)[0]}
        poll_until(lambda: len(messages()) >= n or not t.alive(), timeout=60, what="every file's first line")
        assert "the descriptor limit (ulimit -n) is 150" in t.output()

        def open_logs():
            fd_dir = f"/proc/{t.p.pid}/fd"
            return sum(1 for fd in os.listdir(fd_dir) if os.readlink(os.path.join(fd_dir, fd)).startswith(str(logs)))
        poll_until(lambda: open_logs() <= LIMIT - 64, what="idle files parked within the limit")
        for i in range(0, n, 7):
            with open(logs / f"f{i:03d}.log", "ab") as f:
                f.write(line(f"file {i} line 1"))
        want = {line(f"file {i} line {k}")[:-1] for i in range(n) for k in (0, 1) if k == 0 or i % 7 == 0}
        poll_until(lambda: messages() >= want, timeout=60, what="the later lines")
        assert messages() == want
    finally:
        t.stop()
    assert not t.problems(), t.problems()
    assert "Traceback" not in t.output()


def test_the_open_files_budget_follows_the_limits():
    import subprocess
    import sys

    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]), int(sys.argv[2])));"
            "from helios.services.tailer import fd_cap; print(min(512, fd_cap(512)),"
            " resource.getrlimit(resource.RLIMIT_NOFILE)[0])")

    def budget(soft, hard):
        out = subprocess.run([sys.executable, "-c", code, str(soft), str(hard)], capture_output=True, text=True,
                             check=True, env=dict(os.environ))
        return tuple(int(x) for x in out.stdout.split())
    assert budget(100, 100) == (36, 100)          # short: fewer kept open
    assert budget(100, 4096) == (512, 576)        # the soft limit raised toward the hard one
    assert budget(4096, 4096) == (512, 4096)
