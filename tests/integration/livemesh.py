"""What the live tests share: two bucks and a tailer, lines with many topics,
and reading what subscribers printed."""

from __future__ import annotations

import json

from tests.helpers import poll_until


def stats(data):
    try:
        return json.loads((data / "stats.json").read_text())
    except (OSError, ValueError):
        return None


def lines(start, count, *, apps=20, hosts=3, tag=b"line"):
    """RFC 3164 lines spread over ``apps`` apps, 8 severities and ``hosts``
    hosts (so over many topics); line i is app{i % apps}, severity i % 8."""
    out = []
    for i in range(start, start + count):
        pri = 8 + i % 8  # facility user, severity i % 8
        out.append(b"<%d>Nov 23 10:00:%02d web-%d app%d[42]: %s %08d payload\n"
                   % (pri, i % 60, i % hosts, i % apps, tag, i))
    return out


def append(path, data):
    with open(path, "ab") as f:
        f.write(b"".join(data))


class Mesh:
    """Two bucks (each with its live feed) and a tailer following app.log."""

    def __init__(self, tmp_path, procs, buck, *, buck_args=(), names=("a", "b"), tailer_args=()):
        self.bucks = [buck(n, None, *buck_args) for n in names]
        self.data = [d for _, _, d in self.bucks]
        self.pubs = [stats(d)["publish"] for d in self.data]
        self.log = tmp_path / "app.log"
        self.log.write_bytes(b"")
        args = ["tailer", "--path", str(self.log), "--env", "prod", "--start-at", "beginning",
                "--state-dir", str(tmp_path / "tailer-state"), *tailer_args]
        for _, ep, _ in self.bucks:
            args += ["--buck", ep]
        self.tailer = procs(*args)
        self.procs = procs

    def buck_flags(self):
        return [x for p in self.pubs for x in ("--feed", p)]

    def start(self, command, *args, name):
        """A live subscriber command on both bucks, logging warnings only."""
        return self.procs("--log-level", "warning", command, *self.buck_flags(), *args, name=name)

    def wait_subscribed(self, count=1):
        for d in self.data:
            poll_until(lambda: stats(d)["live"]["subscriptions"] >= count, what=f"subscriptions on {d.name}")


def json_lines(proc):
    out = []
    for line in proc.output().splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out
