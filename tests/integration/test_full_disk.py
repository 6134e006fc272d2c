"""A buck whose data directory fills up: it keeps what it acked, refuses HTTP
writes with 507, holds its ZeroMQ ingest (the tailer keeps the lines in its
spool, on another disk), logs once per interval, and resumes by itself when
space returns; afterwards `helios audit` finds no gap.

The data directory is a real 8 MiB tmpfs, mounted by the test (root only)."""

from __future__ import annotations

import errno
import http.client
import json
import subprocess
import sys
import time
from urllib.parse import urlsplit


from tests.helpers import ROOT, buck_events, buck_http, poll_until


def fill(where):
    """Fill the filesystem at ``where`` to the last byte; returns the filler file."""
    path = where / "filler"
    chunk = b"\0" * 65536
    with open(path, "wb", buffering=0) as f:
        size = len(chunk)
        while size:
            try:
                f.write(chunk[:size])
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                size //= 2  # the last few blocks
    return path


def post(url, events):
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=15)
    try:
        conn.request("POST", "/v1/events", json.dumps(events), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read()), resp.headers
    finally:
        conn.close()


def health(url):
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
    try:
        conn.request("GET", "/healthz")
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def test_a_full_data_dir_refuses_with_507_keeps_what_it_acked_and_resumes_without_a_gap(
        small_disk, buck, procs, tmp_path):
    proc, ep, data = buck("a", None, "--http", "127.0.0.1:0", "--full-retry", "0.2", "--full-log-interval", "1")
    url = buck_http(data)
    log = tmp_path / "logs" / "app.log"
    log.parent.mkdir()
    log.write_bytes(b"".join(b"before the disk filled %04d\n" % i for i in range(100)))
    tailer = procs("tailer", "--path", str(log), "--env", "prod", "--start-at", "beginning", "--buck", ep,
                   "--copies", "1", "--state-dir", str(tmp_path / "tailer"), "--spool-window", "2",
                   "--resend-jitter", "0.5", "--live-wait", "0.2", "--positions-interval", "0.2")
    assert post(url, [{"environment": "prod", "message": f"acked {i}"} for i in range(50)])[0] == 200
    poll_until(lambda: len(buck_events(data)[0]) == 150, what="the first 150 events stored")

    filler = fill(small_disk)
    # The tailer's next lines cannot be written: the buck holds them and stops reading.
    with open(log, "ab") as f:
        f.write(b"".join(b"while the disk was full %04d\n" % i for i in range(3000)))
    poll_until(lambda: health(url)["status"] == "full", what="the buck to find its disk full")
    status, answer, headers = post(url, [{"environment": "prod", "message": "refused"}])
    assert status == 507 and headers["Retry-After"] and "full" in answer["error"]
    full_at = time.monotonic()

    def reported():  # more refusals while full, until the buck has reported them once
        assert post(url, [{"environment": "prod", "message": "refused again"}])[0] == 507
        return "is still full" in proc.output()
    poll_until(reported, interval=0.2, what="the buck to report what it refused meanwhile")
    assert proc.alive() and tailer.alive()
    stored = buck_events(data)
    assert stored[1] and len(stored[0]) == 150  # what it acked is whole, nothing half-written

    filler.unlink()  # space returns; nobody tells the buck
    poll_until(lambda: health(url)["status"] == "ok", what="the buck to resume by itself")
    full_for = time.monotonic() - full_at
    assert post(url, [{"environment": "prod", "message": "after"}])[0] == 200
    with open(log, "ab") as f:
        f.write(b"".join(b"after the disk emptied %04d\n" % i for i in range(100)))

    def every_line():
        messages = {e.message for e in buck_events(data)[0]}
        return len(messages) == 150 + 3000 + 100 + 1 and messages
    messages = poll_until(every_line, timeout=30, what="every line and the acked events stored")
    assert b"refused" not in messages and b"after" in messages

    s = poll_until(lambda: (d := json.loads((data / "stats.json").read_text())["disk"]) and not d["full"] and d,
                   what="stats.json to say the disk is not full")
    assert s["episodes"] >= 1 and s["refused_frames"] >= 1 and s["refused_requests"] >= 2
    out = proc.output()
    assert out.count("is full (") == 1  # the moment it filled: said once
    # Then once per 1 s interval at most, not once per frame or request.
    assert 1 <= out.count("is still full") <= full_for + 1
    assert "has space again" in out
    assert "could not write its stats file" not in out
    audit = subprocess.run([sys.executable, "-m", "helios", "audit", "--data-dir", str(data)],
                           capture_output=True, text=True, cwd=ROOT)
    assert audit.returncode == 0, audit.stdout + audit.stderr


def test_with_http_writes_only_a_full_disk_is_one_episode_until_space_returns(small_disk, buck):
    proc, _, data = buck("a", None, "--http", "127.0.0.1:0", "--full-retry", "0.2", "--full-log-interval", "1")
    url = buck_http(data)
    assert post(url, [{"message": "kept"}])[0] == 200
    filler = fill(small_disk)
    big = [{"message": "x" * 1000, "n": i} for i in range(200)]  # 200 kB: no room for it
    status, answer, _ = post(url, big)
    assert status == 507 and "full" in answer["error"]
    assert health(url)["status"] == "full"
    t0 = time.monotonic()

    def reported():
        assert post(url, big)[0] == 507
        return proc.output().count("is still full") >= 2
    poll_until(reported, interval=0.1, what="two reports while still full")
    full_for = time.monotonic() - t0
    out = proc.output()
    assert out.count("is full (") == 1 and "has space again" not in out
    assert out.count("is still full") <= full_for + 2
    filler.unlink()
    poll_until(lambda: post(url, big)[0] == 200, what="the buck to take writes again by itself")
    poll_until(lambda: "has space again" in proc.output(), what="the end of the episode logged")
    assert health(url)["status"] == "ok"
    assert sorted(e.message for e in buck_events(data)[0])[-1] == b"x" * 1000
    assert b"kept" in {e.message for e in buck_events(data)[0]}
