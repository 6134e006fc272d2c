"""Container logs followed by a plain --path glob (no --kubernetes): a Docker
json-file log and a CRI log copied to another directory are told by their
first line, unwrapped and their split records joined, as under the
kubelet's roots; a 1 MiB line split in 16 KiB records is one event; a
kill -9 between the pieces of a line loses and repeats nothing, and
``helios audit`` finds every byte; a [[tailer.parse]] ``format = "cri"``
joins a file whose first line is not a record, and an explicit other
format turns joining off. Real tailer, real bucks, real files."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import ROOT, buck_events, poll_until

FAST = ["--spool-window", "2", "--resend-jitter", "0.5", "--rotate-wait", "1", "--partial-flush", "30",
        "--positions-interval", "0.2", "--rescan-interval", "0.2", "--live-wait", "0.2"]
PIECE = 16 * 1024    # what Docker and containerd split a long line into


def cri(text: bytes, stream=b"stdout", tag=b"F", t=b"2024-03-11T08:15:02.118000000Z") -> bytes:
    return b"%s %s %s %s\n" % (t, stream, tag, text)


def docker(text: str, stream="stdout") -> bytes:
    return json.dumps({"log": text, "stream": stream, "time": "2024-03-11T08:15:02.5Z"}).encode() + b"\n"


class Host:
    def __init__(self, tmp_path, procs, buck, config=None):
        self.tmp, self.procs = tmp_path, procs
        self.logs = tmp_path / "logs"
        self.logs.mkdir()
        self.b = [buck("a"), buck("b")]
        self.config = config
        self.tailer = None

    def start(self):
        args = ["tailer", "--path", str(self.logs / "*"), "--env", "prod", "--start-at", "beginning",
                "--state-dir", str(self.tmp / "state"), *FAST]
        if self.config:
            (self.tmp / "helios.toml").write_text(self.config.format(logs=self.logs))
            args += ["--config", str(self.tmp / "helios.toml")]
        for _, ep, _ in self.b:
            args += ["--buck", ep]
        self.tailer = self.procs(*args, name=f"tailer-{time.monotonic_ns()}")
        poll_until(lambda: "Tailer on" in self.tailer.output() or not self.tailer.alive(), what="the tailer")
        return self.tailer

    def by_id(self):
        out = {}
        for _, _, data in self.b:
            out.update({e.id: e for e in buck_events(data)[0] if e.app != "helios-inventory"})
        return out

    def wait_for(self, messages, timeout=30):
        want = set(messages)
        return poll_until(lambda: want <= {e.message for e in self.by_id().values()} and self.by_id(),
                          timeout=timeout, what=f"{[m[:40] for m in sorted(want)][:3]} in the bucks")

    def audit(self):
        return subprocess.run([sys.executable, "-m", "helios", "audit", *(str(d) for _, _, d in self.b)],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_a_docker_json_log_under_any_path_is_unwrapped_and_its_split_records_joined(tmp_path, procs, buck):
    host = Host(tmp_path, procs, buck)
    log = host.logs / "4f2a0000-json.log"
    plain = host.logs / "app.log"
    records = [docker("x" * 100), docker("y" * 100), docker("z\n"), docker("short one\n", "stderr")]
    log.write_bytes(b"".join(records))
    # A plain file beside it: its lines stay as they are, one event each, even one that looks like a record.
    plain.write_bytes(b"2024-03-11 08:15:02 INFO started\n" + docker("not a container log") + b"last\n")
    # Whole records only (the common case): passed on as they are, unwrapped by the parser.
    whole = host.logs / "9e11-json.log"
    whole.write_bytes(docker("2024-03-11 08:15:02,118 ERROR [main] com.x.Y: boom\n") + docker("ok\n", "stderr"))
    host.start()
    host.wait_for({b"x" * 100 + b"y" * 100 + b"z", b"short one", b"2024-03-11 08:15:02 INFO started", b"last",
                   b"2024-03-11 08:15:02,118 ERROR [main] com.x.Y: boom", b"ok"})
    fast = sorted((e for e in host.by_id().values() if e.source == str(whole)), key=lambda e: e.offset)
    assert [(e.fields["stream"], e.severity, e.app) for e in fast] == [("stdout", 3, "com.x.Y"), ("stderr", None, "")]
    assert [e.fields["line_bytes"] for e in fast] == [len(docker("2024-03-11 08:15:02,118 ERROR [main] com.x.Y: "
                                                                 "boom\n")) - 1, len(docker("ok\n", "stderr")) - 1]
    events = {e.message: e for e in host.by_id().values()}
    joined = events[b"x" * 100 + b"y" * 100 + b"z"]
    assert joined.offset == 0 and joined.fields["pieces"] == 3 and joined.fields["stream"] == "stdout"
    assert joined.fields["line_bytes"] == sum(map(len, records[:3])) - 1
    assert joined.time == 1710144902500000000                          # the runtime's time
    assert events[b"short one"].fields["stream"] == "stderr"
    assert len([e for e in events.values() if e.source == str(plain)]) == 3   # not joined, not swallowed
    assert "holds container records" in host.tailer.output() and str(plain) + " holds" not in host.tailer.output()


def cri_record(text: bytes, partial: bool = False, stream: str = "stdout") -> bytes:
    return cri(text, stream=stream.encode(), tag=b"P" if partial else b"F")


def docker_record(text: bytes, partial: bool = False, stream: str = "stdout") -> bytes:
    return docker(text.decode() + ("" if partial else "\n"), stream)


@pytest.mark.parametrize("record", [cri_record, docker_record], ids=["cri", "docker"])
def test_a_copied_container_log_joins_a_1_mib_line_and_a_kill_9_between_pieces_loses_and_repeats_nothing(
        tmp_path, procs, buck, record):
    host = Host(tmp_path, procs, buck)
    log = host.logs / ("copied-0.log" if record is cri_record else "copied-json.log")
    big = b"".join(b"%07d," % i for i in range(1024 * 1024 // 8))
    assert len(big) == 1024 * 1024
    pieces = [big[i:i + PIECE] for i in range(0, len(big), PIECE)]
    head = record(b"before")
    with open(log, "wb") as f:
        f.write(head)
        for p in pieces[:-1]:
            f.write(record(p, partial=True))
        f.write(record(pieces[-1]))
        f.write(record(b"piece one, ", partial=True) + record(b"other stream meanwhile", stream="stderr"))
    host.start()
    host.wait_for({b"before", big, b"other stream meanwhile"})
    events = {e.message: e for e in host.by_id().values()}
    assert events[big].offset == len(head) and events[big].fields["pieces"] == len(pieces) == 64
    assert events[big].fields["line_bytes"] == sum(len(record(p, partial=True)) for p in pieces[:-1]) \
        + len(record(pieces[-1])) - 1
    assert events[big].fields.get("partial", False) is False
    # kill -9 while "piece one, " waits for the rest of its line; the rest comes while the tailer is down.
    host.tailer.stop(signal.SIGKILL)
    with open(log, "ab") as f:
        f.write(record(b"piece two, ", partial=True))
    host.start()
    host.wait_for({b"before"})
    host.tailer.stop(signal.SIGKILL)                  # and once more, at once after the restart
    with open(log, "ab") as f:
        f.write(record(b"the end") + record(b"after"))
    host.start()
    host.wait_for({b"piece one, piece two, the end", b"after"})
    messages = sorted(e.message for e in host.by_id().values())
    assert messages == sorted([b"before", big, b"other stream meanwhile", b"piece one, piece two, the end", b"after"])
    host.tailer.stop(signal.SIGTERM)
    result = host.audit()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No gaps" in result.stdout


CONFIG = """
[[tailer.parse]]
paths = ["{logs}/forced.log"]
format = "cri"

[[tailer.parse]]
paths = ["{logs}/off.log"]
format = "raw"
"""


def test_a_parse_table_format_cri_joins_a_file_auto_would_not_and_another_format_turns_joining_off(
        tmp_path, procs, buck):
    host = Host(tmp_path, procs, buck, CONFIG)
    banner = b"# copied from node-7 at 08:20\n"          # a first line that is no record: auto would not join
    (host.logs / "forced.log").write_bytes(banner + cri(b"one ", tag=b"P") + cri(b"line"))
    (host.logs / "off.log").write_bytes(cri(b"left ", tag=b"P") + cri(b"apart"))
    host.start()
    host.wait_for({b"one line", b"# copied from node-7 at 08:20"})
    forced = [e for e in host.by_id().values() if e.source.endswith("forced.log")]
    assert sorted(e.message for e in forced) == [b"# copied from node-7 at 08:20", b"one line"]
    poll_until(lambda: len([e for e in host.by_id().values() if e.source.endswith("off.log")]) == 2,
               what="off.log's two records")
    off = sorted((e for e in host.by_id().values() if e.source.endswith("off.log")), key=lambda e: e.offset)
    assert [e.message for e in off] == [cri(b"left ", tag=b"P")[:-1], cri(b"apart")[:-1]]   # raw: as written


MASKED = """
[[tailer.parse]]
paths = ["{logs}/*-json.log"]
mask = ['pw=(\\S+)']
drop = ['healthcheck']
"""


def test_a_joined_container_line_is_masked_whole_and_a_dropped_one_is_counted_and_audited(tmp_path, procs, buck):
    host = Host(tmp_path, procs, buck, MASKED)
    secret = "s3cr3t-" + "x" * 20
    log = host.logs / "app-json.log"
    log.write_bytes(docker("login ok pw=" + secret[:10]) + docker(secret[10:] + " done\n")
                    + docker("GET /healthcheck 200\n") + docker("bye\n"))
    host.start()
    stars = "*" * len(secret)
    host.wait_for({f"login ok pw={stars} done".encode(), b"bye"})
    events = host.by_id().values()
    assert all(secret[:10].encode() not in e.message and secret[10:].encode() not in e.message for e in events)
    assert [e.fields["dropped"] for e in events if e.message == b""] == [1]
    host.tailer.stop(signal.SIGTERM)
    result = host.audit()
    assert result.returncode == 0 and "No gaps" in result.stdout, result.stdout + result.stderr
