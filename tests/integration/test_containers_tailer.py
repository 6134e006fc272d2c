"""`helios tailer --kubernetes` on a fake node: a kubelet's /var/log/pods and
Docker's /var/lib/docker/containers built in a tmp tree, a real tailer and
two real bucks. Partial records become one event under the offset of their
first record, also across a restart in the middle of one; the kubelet's
rotation (rename to N.log.TIMESTAMP, then gzip) loses and repeats nothing."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import time

from tests.helpers import bucks_events, poll_until

FAST = ["--spool-window", "2", "--resend-jitter", "0.5", "--rotate-wait", "1", "--partial-flush", "30",
        "--positions-interval", "0.2", "--rescan-interval", "0.2", "--live-wait", "0.2"]
UID = "6f1c2a9e-93b5-4c8e-a0d1-2b7e4f0c9d11"


class Node:
    def __init__(self, tmp_path, procs, buck, extra=()):
        self.tmp, self.procs = tmp_path, procs
        self.pods = tmp_path / "var-log-pods"
        self.docker = tmp_path / "docker-containers"
        self.pods.mkdir()
        self.docker.mkdir()
        self.b = [buck("a"), buck("b")]
        self.extra = list(extra)
        self.tailer = None

    def pod_log(self, namespace="shop", pod="web-7d9f-x2v", container="nginx", n=0):
        d = self.pods / f"{namespace}_{pod}_{UID}" / container
        d.mkdir(parents=True, exist_ok=True)
        p = d / f"{n}.log"
        p.touch()
        return p

    def start(self):
        args = ["tailer", "--kubernetes", "--kubernetes-root", str(self.pods), "--docker-root", str(self.docker),
                "--env", "prod", "--start-at", "beginning", "--state-dir", str(self.tmp / "state"), *FAST,
                *self.extra]
        for _, ep, _ in self.b:
            args += ["--buck", ep]
        self.tailer = self.procs(*args, name=f"tailer-{time.monotonic_ns()}")
        poll_until(lambda: "Tailer on" in self.tailer.output() or not self.tailer.alive(), what="the tailer")
        return self.tailer

    def events(self):
        return bucks_events(data for _, _, data in self.b)

    def by_id(self):
        return {e.id: e for e in self.events()}

    def wait_for(self, messages, timeout=20):
        want = set(messages)
        return poll_until(lambda: want <= {e.message for e in self.by_id().values()} and self.by_id(),
                          timeout=timeout, what=f"{sorted(want)[:3]} in the bucks")


def cri(text: bytes, stream=b"stdout", tag=b"F", t=b"2024-03-11T08:15:02.118000000Z") -> bytes:
    return b"%s %s %s %s\n" % (t, stream, tag, text)


def test_cri_partial_records_are_one_event_with_the_pods_fields(tmp_path, procs, buck):
    node = Node(tmp_path, procs, buck)
    log = node.pod_log()
    node.start()
    lines = [cri(b"GET /index.html 200"),
             cri(b"a long line, first piece ", tag=b"P"),
             cri(b"warning: disk 91% full", stream=b"stderr"),
             cri(b"second piece ", tag=b"P"),
             cri(b"and its end")]
    with open(log, "ab") as f:
        f.write(b"".join(lines))
    node.wait_for({b"GET /index.html 200", b"a long line, first piece second piece and its end",
                   b"warning: disk 91% full"})
    events = {e.message: e for e in node.by_id().values()}
    assert len(events) == 3
    joined = events[b"a long line, first piece second piece and its end"]
    assert joined.offset == len(lines[0])  # the offset of its first record
    f = joined.fields
    assert (f["namespace"], f["pod"], f["pod_uid"], f["container"], f["stream"]) == \
        ("shop", "web-7d9f-x2v", UID, "nginx", "stdout")
    assert f["pieces"] == 3 - 1 + 1 and f["partial"] is False
    assert f["line_bytes"] == sum(map(len, lines[1:5])) - 1  # its records and the lines between them
    assert events[b"warning: disk 91% full"].fields["stream"] == "stderr"
    assert events[b"GET /index.html 200"].time == 1710144902118000000


def test_docker_json_file_partial_records_are_joined_and_named(tmp_path, procs, buck):
    node = Node(tmp_path, procs, buck)
    cid = "4f2a" + "0" * 60
    d = node.docker / cid
    d.mkdir()
    (d / "config.v2.json").write_text(json.dumps({"Name": "/billing-worker", "Config": {"Labels": {}}}))
    log = d / f"{cid}-json.log"
    log.touch()
    other = node.docker / ("9e" + "1" * 62)
    other.mkdir()
    olog = other / f"{other.name}-json.log"
    olog.touch()
    node.start()

    def rec(text, stream="stdout"):
        return json.dumps({"log": text, "stream": stream, "time": "2024-03-11T08:15:02.5Z"}).encode() + b"\n"
    with open(log, "ab") as f:
        f.write(rec("x" * 100) + rec("y" * 100) + rec("z\n") + rec("short one\n", "stderr"))
    with open(olog, "ab") as f:
        f.write(rec("no config here\n"))
    node.wait_for({b"x" * 100 + b"y" * 100 + b"z", b"short one", b"no config here"})
    events = {e.message: e for e in node.by_id().values()}
    joined = events[b"x" * 100 + b"y" * 100 + b"z"]
    assert joined.offset == 0 and joined.fields["container"] == "billing-worker"
    assert joined.fields["container_id"] == cid and joined.fields["pieces"] == 3
    assert events[b"short one"].fields["stream"] == "stderr"
    assert events[b"no config here"].fields["container"] == other.name[:12]


def test_a_restart_in_the_middle_of_a_partial_line_neither_loses_nor_duplicates(tmp_path, procs, buck):
    node = Node(tmp_path, procs, buck)
    log = node.pod_log()
    node.start()
    with open(log, "ab") as f:
        f.write(cri(b"before") + cri(b"piece one, ", tag=b"P") + cri(b"piece two, ", tag=b"P")
                + cri(b"other stream meanwhile", stream=b"stderr"))
    node.wait_for({b"before", b"other stream meanwhile"})
    for sig in (signal.SIGKILL, signal.SIGTERM):
        node.tailer.stop(sig)
        with open(log, "ab") as f:
            f.write(cri(b"piece three (%d)" % sig, tag=b"P"))
        node.start()
        node.wait_for({b"before"})
    with open(log, "ab") as f:
        f.write(cri(b"the end") + cri(b"after"))
    whole = b"piece one, piece two, piece three (%d)piece three (%d)the end" % (signal.SIGKILL, signal.SIGTERM)
    node.wait_for({whole, b"after"})
    events = node.by_id().values()
    assert sorted(e.message for e in events) == sorted([b"before", b"other stream meanwhile", whole, b"after"])
    joined = next(e for e in events if e.message == whole)
    assert joined.offset == len(cri(b"before")) and joined.fields["pieces"] == 5


def test_the_kubelets_rotation_and_gzip_lose_and_repeat_nothing(tmp_path, procs, buck):
    node = Node(tmp_path, procs, buck)
    log = node.pod_log(container="api")
    node.start()
    expected = set()
    n = 0
    for rotation in range(3):
        with open(log, "ab") as f:
            for _ in range(50):
                f.write(cri(b"line %05d" % n, tag=b"F"))
                expected.add(b"line %05d" % n)
                n += 1
            f.write(cri(b"split %05d " % n, tag=b"P"))
            f.write(cri(b"rest %05d" % n))
            expected.add(b"split %05d rest %05d" % (n, n))
            n += 1
        node.wait_for(expected)  # the kubelet rotates at 10 MB: the tailer has seen the file by then
        with open(log, "ab") as f:  # and these are written just before the rename
            f.write(cri(b"late %05d " % n, tag=b"P") + cri(b"end"))
            expected.add(b"late %05d end" % n)
            n += 1
        stamp = f"2024031{rotation}-081502"
        rotated = log.with_name(f"0.log.{stamp}")
        os.rename(log, rotated)
        log.touch()
        if rotation:  # the kubelet compresses the one before the last
            prev = log.with_name(f"0.log.2024031{rotation - 1}-081502")
            with open(prev, "rb") as src, gzip.open(str(prev) + ".gz", "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.unlink(prev)
    with open(log, "ab") as f:
        f.write(cri(b"line %05d" % n))
        expected.add(b"line %05d" % n)
    node.wait_for(expected, timeout=30)
    events = node.by_id().values()
    messages = [e.message for e in events]
    assert sorted(messages) == sorted(expected)  # each once: one id per line
    assert all(e.fields["container"] == "api" and e.fields["namespace"] == "shop" for e in events)


def test_a_line_cut_by_a_rotation_or_never_finished_is_sent_marked_partial(tmp_path, procs, buck):
    node = Node(tmp_path, procs, buck, extra=["--partial-flush", "1"])
    log = node.pod_log()
    err = node.pod_log(container="sidecar")
    node.start()
    with open(log, "ab") as f:
        f.write(cri(b"whole") + cri(b"cut by the rotation: ", tag=b"P"))
    node.wait_for({b"whole"})
    os.rename(log, log.with_name("0.log.20240311-081502"))
    with open(log, "wb") as f:
        f.write(cri(b"its end, in the new file"))
    with open(err, "ab") as f:
        f.write(cri(b"the container died here", stream=b"stderr", tag=b"P"))
    node.wait_for({b"cut by the rotation: ", b"its end, in the new file", b"the container died here"})
    events = {e.message: e for e in node.by_id().values()}
    assert len(events) == 4
    assert events[b"cut by the rotation: "].fields["partial"] is True
    assert events[b"the container died here"].fields["partial"] is True
    assert events[b"the container died here"].fields["container"] == "sidecar"
    assert "partial" not in events[b"its end, in the new file"].fields


def test_whole_records_with_nothing_to_join_keep_the_pods_fields(tmp_path, procs, buck):
    node = Node(tmp_path, procs, buck)
    log = node.pod_log(container="api")
    node.start()
    with open(log, "ab") as f:      # only whole records: passed on as they are, with the path's fields
        f.write(cri(b"2024-03-11 08:15:02,118 ERROR [main] com.x.Y: boom") + cri(b"ok", stream=b"stderr"))
    node.wait_for({b"2024-03-11 08:15:02,118 ERROR [main] com.x.Y: boom", b"ok"})
    events = sorted(node.by_id().values(), key=lambda e: e.offset)
    assert [(e.fields["namespace"], e.fields["pod"], e.fields["container"], e.fields["stream"]) for e in events] == \
        [("shop", "web-7d9f-x2v", "api", "stdout"), ("shop", "web-7d9f-x2v", "api", "stderr")]
    assert events[0].severity == 3 and events[0].app == "com.x.Y"
    assert [e.fields["line_bytes"] for e in events] == [len(cri(b"2024-03-11 08:15:02,118 ERROR [main] com.x.Y: "
                                                                b"boom")) - 1, len(cri(b"ok", stream=b"stderr")) - 1]
