"""Thousands of followed files, most of them parked without a descriptor,
with inotify: the safety pass and rescans made far slower than the test's
patience, a line appended to any of them, a new file among them and a
rotation of a parked one still arrive in both bucks, and every file's
inventory record reaches the bucks (sent a slice at a time after the start),
so ``helios audit`` knows them all."""

from __future__ import annotations

import os

import pytest

from helios.tail import notify
from tests.helpers import buck_events, poll_until

N = 3000
SLOW = ["--poll-interval", "10", "--watch-safety-poll", "60", "--rescan-interval", "3600",
        "--rotate-wait", "1", "--positions-interval", "0.2", "--live-wait", "0.2"]


@pytest.fixture(autouse=True)
def _inotify():
    n = notify.open_notifier("auto")
    if n is None:
        pytest.skip("no inotify on this kernel")
    n.close()


def line(text: str) -> bytes:
    return b"Nov 23 10:00:00 web-1 app[1]: " + text.encode() + b"\n"


def test_a_line_appended_to_any_of_thousands_of_files_arrives_and_every_file_is_in_the_inventory(
        tmp_path, procs, buck):
    logs = tmp_path / "logs"
    logs.mkdir()
    for i in range(N):
        (logs / f"f{i:04d}.log").write_bytes(line(f"file {i} line 0"))
    b = [buck("a"), buck("b")]
    t = procs("tailer", "--path", str(logs / "*.log"), "--env", "prod", "--start-at", "beginning",
              "--state-dir", str(tmp_path / "state"), *SLOW, *[x for _, ep, _ in b for x in ("--buck", ep)],
              name="tailer")

    def in_both():
        each = [{e.message for e in buck_events(data)[0]} for _, _, data in b]
        return each[0] & each[1]

    poll_until(lambda: len(in_both()) >= N or not t.alive(), timeout=180, what="every file's first line")

    def parked():
        fd_dir = f"/proc/{t.p.pid}/fd"
        open_logs = {os.readlink(os.path.join(fd_dir, fd)) for fd in os.listdir(fd_dir)}
        return [str(logs / f"f{i:04d}.log") for i in range(N) if str(logs / f"f{i:04d}.log") not in open_logs]
    poll_until(lambda: len(parked()) >= N - 512, timeout=60, what="idle files parked")

    idle = parked()
    want = set()
    for k, path in enumerate(idle[::250] + [str(logs / "f0001.log")]):
        with open(path, "ab") as f:
            f.write(line(f"appended {k}"))
        want.add(line(f"appended {k}")[:-1])
    (logs / "new.log").write_bytes(line("a new file among thousands"))
    want.add(line("a new file among thousands")[:-1])
    rotated = idle[len(idle) // 2]
    with open(rotated, "ab") as f:
        f.write(line("last line before the rotation"))
    os.rename(rotated, rotated + ".1")
    with open(rotated, "wb") as f:
        f.write(line("first line after the rotation"))
    want |= {line("last line before the rotation")[:-1], line("first line after the rotation")[:-1]}
    # The safety pass (60 s) and the rescan (an hour) are far off: inotify brings them.
    poll_until(lambda: want <= in_both(), timeout=30, what="the appended lines in both bucks")

    def identities():
        return {e.fields["identity"] for _, _, data in b for e in buck_events(data, inventory=True)[0]
                if e.app == "helios-inventory"}
    poll_until(lambda: len(identities()) >= N + 2, timeout=120, what="an inventory record of every file")
    assert t.stop() == 0
