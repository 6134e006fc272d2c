"""The tailer with inotify: with polling and the safety pass made far slower
than the test's patience (a minute), every change still arrives, because the
directory watches woke the tailer: appends, new files, new directories,
appends to files parked without a descriptor, a rotation of a parked file,
and a stop. With --watch poll the same tailer still works without inotify."""

from __future__ import annotations

import os
import time

import pytest

from helios.tail import notify
from tests.helpers import buck_events, poll_until

SLOW = ["--poll-interval", "10", "--watch-safety-poll", "60", "--rescan-interval", "3600",
        "--spool-window", "2", "--resend-jitter", "0.5", "--rotate-wait", "1", "--positions-interval", "0.2",
        "--live-wait", "0.2"]


@pytest.fixture(autouse=True)
def _inotify():
    n = notify.open_notifier("auto")
    if n is None:
        pytest.skip("no inotify on this kernel")
    n.close()


class Mesh:
    def __init__(self, tmp_path, procs, buck, glob, extra=()):
        self.tmp, self.procs = tmp_path, procs
        self.b = [buck("a"), buck("b")]
        args = ["tailer", "--path", glob, "--env", "prod", "--start-at", "beginning",
                "--state-dir", str(tmp_path / "state"), *SLOW, *extra]
        for _, ep, _ in self.b:
            args += ["--buck", ep]
        self.tailer = procs(*args, name="tailer")
        poll_until(lambda: "Tailer on" in self.tailer.output() or not self.tailer.alive(), what="the tailer")

    def messages(self):
        out = {}
        for _, _, data in self.b:
            for e in buck_events(data)[0]:
                out[e.id] = e.message
        return list(out.values())

    def arrives(self, *messages, timeout=15):
        # Far below the 60 s safety pass and the 10 s poll: only an inotify wake-up brings them this soon.
        poll_until(lambda: set(messages) <= set(self.messages()), timeout=timeout,
                   what=f"{messages[:2]} in the bucks")


def line(text: str) -> bytes:
    return b"Nov 23 10:00:00 web-1 app[1]: " + text.encode() + b"\n"


def test_appends_new_files_and_new_directories_wake_the_tailer(tmp_path, procs, buck):
    logs = tmp_path / "logs"
    (logs / "one").mkdir(parents=True)
    (logs / "one" / "app.log").write_bytes(line("first"))
    m = Mesh(tmp_path, procs, buck, str(logs / "*" / "*.log"))
    m.arrives(line("first")[:-1])
    with open(logs / "one" / "app.log", "ab") as f:
        f.write(line("appended"))
    m.arrives(line("appended")[:-1])
    (logs / "one" / "new.log").write_bytes(line("in a new file"))
    m.arrives(line("in a new file")[:-1])
    (logs / "two").mkdir()
    (logs / "two" / "app.log").write_bytes(line("in a new directory"))
    m.arrives(line("in a new directory")[:-1])
    with open(logs / "two" / "app.log", "ab") as f:
        f.write(line("and again there"))
    m.arrives(line("and again there")[:-1])
    t0 = time.monotonic()
    assert m.tailer.stop(timeout=5) == 0, "an idle tailer sleeping on inotify stops at once"
    assert time.monotonic() - t0 < 5


def test_files_parked_without_a_descriptor_are_woken_and_their_rotation_followed(tmp_path, procs, buck):
    logs = tmp_path / "logs"
    logs.mkdir()
    n = 40
    for i in range(n):
        (logs / f"f{i:02d}.log").write_bytes(line(f"file {i} line 0"))
    m = Mesh(tmp_path, procs, buck, str(logs / "*.log"), extra=["--max-open-files", "8"])
    m.arrives(*(line(f"file {i} line 0")[:-1] for i in range(n)))

    def open_logs():
        fd_dir = f"/proc/{m.tailer.p.pid}/fd"
        return sum(1 for fd in os.listdir(fd_dir) if os.readlink(os.path.join(fd_dir, fd)).startswith(str(logs)))
    poll_until(lambda: open_logs() <= 8, what="idle files parked (at most 8 open)")
    with open(logs / "f00.log", "ab") as f:
        f.write(line("file 0 line 1"))
    m.arrives(line("file 0 line 1")[:-1])
    # A parked file rotated by rename, its old name written again.
    with open(logs / "f07.log", "ab") as f:
        f.write(line("file 7 line 1 (before the rotation)"))
    os.rename(logs / "f07.log", logs / "f07.log.1")
    (logs / "f07.log").write_bytes(line("file 7 new content"))
    m.arrives(line("file 7 line 1 (before the rotation)")[:-1], line("file 7 new content")[:-1])
    messages = m.messages()
    assert len(messages) == len(set(messages)) == n + 3


def test_with_watch_poll_the_tailer_polls(tmp_path, procs, buck):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").touch()
    m = Mesh(tmp_path, procs, buck, str(logs / "*.log"), extra=["--watch", "poll", "--poll-interval", "0.05"])
    poll_until(lambda: "Following" in m.tailer.output(), what="the tailer to follow")
    with open(logs / "app.log", "ab") as f:
        f.write(line("polled"))
    m.arrives(line("polled")[:-1])


def test_a_followed_symlink_is_woken_by_writes_to_its_target(tmp_path, procs, buck):
    # Like /var/log/containers/*.log, links to the kubelet's files in /var/log/pods.
    real, links = tmp_path / "pods" / "c", tmp_path / "containers"
    real.mkdir(parents=True)
    links.mkdir()
    (real / "0.log").write_bytes(line("through a link"))
    os.symlink(real / "0.log", links / "c.log")
    m = Mesh(tmp_path, procs, buck, str(links / "*.log"))
    m.arrives(line("through a link")[:-1])
    with open(real / "0.log", "ab") as f:
        f.write(line("written to the target"))
    m.arrives(line("written to the target")[:-1])
