"""`helios porter once` that indexed nothing says why: no buck answered, the
bucks hold nothing yet, or their windows are still open (issue 21: "0
window(s) indexed" right after start, with no reason)."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import buck_query, poll_until
from tests.integration.test_web_mesh import append, syslog
from helios.wire.ports import free_endpoint


def porter_once(tmp_path, *bucks: str) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "helios", "porter", "--state-dir", str(tmp_path / "porter"),
            "--index-dir", str(tmp_path / "index"), "--archive-dir", str(tmp_path / "archive"), "--timeout", "2"]
    for b in bucks:
        args += ["--query", b]
    return subprocess.run([*args, "once"], capture_output=True, text=True, timeout=120)


def test_porter_once_says_why_it_indexed_nothing(tmp_path, procs, buck):
    nobody = free_endpoint()
    r = porter_once(tmp_path, nobody)
    assert f"0 window(s) indexed, 0 archived, 0 pruned from bucks; no buck answered: {nobody}" in r.stderr, r.stderr

    _, ingest, data = buck("a")
    query = buck_query(data)
    r = porter_once(tmp_path, query)
    assert "0 window(s) indexed" in r.stderr and "the bucks (1 answered) hold no window yet" in r.stderr, r.stderr

    log = tmp_path / "app.log"
    append(log, syslog(0, 10))
    procs("tailer", "--path", str(log), "--env", "prod", "--start-at", "beginning",
          "--state-dir", str(tmp_path / "state"), "--buck", ingest, "--copies", "1")
    poll_until(lambda: list((data / "buckets").rglob("*.bkt")) or None, timeout=20, what="a bucket file")
    r = porter_once(tmp_path, query)
    assert "0 window(s) indexed" in r.stderr, r.stderr
    assert "still open on a buck" in r.stderr and "loaded once closed" in r.stderr, r.stderr
