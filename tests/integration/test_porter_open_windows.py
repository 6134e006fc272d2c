"""``[porter] index_open_windows``: events are searchable while their window
is still open on the bucks, and the index still holds each once after the
window's own load (two bucks' copies, spool re-sends, the fresh load and
the window load all merge away)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from tests.helpers import buck_query, poll_until
from tests.integration.test_web_mesh import append


def syslog(start: int, count: int) -> list[bytes]:
    """Lines of now (the index keeps the last recent_days only)."""
    stamp = time.strftime("%b %e %H:%M:%S", time.gmtime()).encode()
    return [b"<14>%s web-1 app[42]: line %06d\n" % (stamp, i) for i in range(start, start + count)]


def search(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "helios", "search", "--index-dir", str(tmp_path / "index"),
                           "--env", "prod", "--start", "2000-01-01T00:00:00Z", *args],
                          capture_output=True, text=True, timeout=60)


def count(tmp_path) -> int:
    r = search(tmp_path, "--count", "--app", "app")  # not the tailer's inventory records
    return int(r.stdout.strip() or 0) if r.returncode in (0, 1) and r.stdout.strip().isdigit() else -1


def mesh(tmp_path, procs, buck, window: str):
    bucks = [buck(n, None, "--window", window) for n in ("a", "b")]
    log = tmp_path / "app.log"
    log.write_bytes(b"")
    args = ["tailer", "--path", str(log), "--env", "prod", "--start-at", "beginning",
            "--state-dir", str(tmp_path / "tailer"), "--timezone", "UTC", "--spool-window", window, "--resend-jitter", "1"]
    for _, ep, _ in bucks:
        args += ["--buck", ep]
    procs(*args)
    queries = [buck_query(data) for _, _, data in bucks]
    porter = ["porter", "--index-dir", str(tmp_path / "index"), "--state-dir", str(tmp_path / "porter"),
              "--archive-dir", str(tmp_path / "archive"), "--poll-interval", "0.5", "--grace", "0.5",
              "--workers", "0", "--index-open-windows"]
    for q in queries:
        porter += ["--query", q]
    procs(*porter, "run", name="porter")
    return log, queries


def test_events_are_searchable_while_their_window_is_open(tmp_path, procs, buck):
    log, queries = mesh(tmp_path, procs, buck, "3600")  # an hour: the window stays open throughout
    append(log, syslog(0, 50))
    poll_until(lambda: count(tmp_path) == 50, timeout=30, interval=0.3, what="50 events in the index")
    r = subprocess.run([sys.executable, "-m", "helios", "buckets", "ls", *[x for q in queries for x in ("--query", q)]],
                       capture_output=True, text=True, timeout=60)
    assert " open " in f" {r.stdout} " and "closed" not in r.stdout, r.stdout
    append(log, syslog(50, 25))
    poll_until(lambda: count(tmp_path) == 75, timeout=30, interval=0.3, what="75 events in the index")


def test_each_event_is_indexed_once_after_its_window_closed_and_was_loaded_whole(tmp_path, procs, buck):
    log, _ = mesh(tmp_path, procs, buck, "2")
    total = 0
    for burst in range(4):
        append(log, syslog(total, 30))
        total += 30
        poll_until(lambda: count(tmp_path) == total, timeout=30, interval=0.3, what=f"{total} events")
    # The spool re-sent its closed windows (a third copy of each event, in later bucket windows) ...
    tailer_stats = tmp_path / "tailer" / "stats.json"
    spool = tmp_path / "tailer" / "spool"

    def resent_all() -> bool:  # each spool window (file) re-sent once at least
        files = [f for f in spool.rglob("*") if f.is_file()]
        return bool(files) and json.loads(tailer_stats.read_text())["resent_buckets"] >= len(files)
    poll_until(lambda: tailer_stats.exists() and resent_all(), timeout=60, interval=0.5,
               what="the spool's re-sends")
    # ... and every window closed (2 s windows, held open 2 windows more) and was loaded whole.
    status = tmp_path / "porter" / "status.json"

    def all_loaded():
        try:
            envs = json.loads(status.read_text())["environments"]["prod"]
        except (OSError, ValueError, KeyError):
            return False
        return envs.get("open") == 0 and envs.get("index_behind") == 0 and envs["events_indexed"] >= total
    poll_until(all_loaded, timeout=60, interval=0.5, what="every window loaded whole")
    r = search(tmp_path, "--all", "-o", "json", "--app", "app")
    ids = [json.loads(line)["id"] for line in r.stdout.splitlines()]
    assert len(ids) == total and len(set(ids)) == total
