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


def test_a_state_directory_that_is_not_one_is_refused_at_start_with_its_path(tmp_path):
    (tmp_path / "porter").write_text("a file where the state directory should be")
    r = porter_once(tmp_path, free_endpoint())
    assert r.returncode == 1 and r.stderr.strip().endswith(
        f"helios: cannot use the porter state directory {tmp_path / 'porter'}: it is not a directory"), r.stderr
    (tmp_path / "porter").unlink()
    (tmp_path / "porter").mkdir()
    (tmp_path / "porter" / "seen").write_text("a file where the dedup ledger should be")
    r = porter_once(tmp_path, free_endpoint())
    assert r.returncode == 1 and f"cannot use the porter's dedup ledger {tmp_path / 'porter' / 'seen'}: it is not " \
        "a directory" in r.stderr, r.stderr


def test_a_dedup_ledger_that_cannot_be_written_fails_porter_once_and_loses_nothing(tmp_path, procs):
    """Every window waits while its claims cannot be written (`once` exits
    1, saying which file), and is indexed whole once they can."""
    from helios.porter.seen import PART_S, Seen
    from tests.integration.test_porter import assert_once_and_whole, index_events, plant_two_bucks, \
        started_bucks_over

    want = plant_two_bucks(tmp_path / "buck-a", tmp_path / "buck-b", windows=2, per_window=300)
    qs = started_bucks_over(tmp_path, procs, "ab")
    ledger = Seen(tmp_path / "porter" / "seen")
    blocked = {ledger.path("prod", e.received // (PART_S * 1_000_000_000)) for e in want}
    for path in blocked:
        path.mkdir(parents=True)   # a directory where a partition file goes: every append to it fails
    r = porter_once(tmp_path, *qs)
    assert r.returncode == 1, r.stderr
    assert "Cannot record window prod/" in r.stderr and f"porter's dedup ledger {sorted(blocked)[0]}" in r.stderr, \
        r.stderr
    assert "0 window(s) indexed" in r.stderr and "2 due but not indexed: left for the next pass" in r.stderr, r.stderr
    assert not index_events(tmp_path)
    for path in blocked:
        path.rmdir()
    r = porter_once(tmp_path, *qs)
    assert r.returncode == 0, r.stderr
    assert_once_and_whole(index_events(tmp_path), want)
