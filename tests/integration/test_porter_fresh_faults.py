"""Indexing open windows (``[porter] index_open_windows``, the default)
stays exactly once when things break: a closed window's load goes on from
the byte offsets the early loads reached (``helios.porter.early``), so
what is lost or repeated between the two would show here. Each test breaks
something on purpose, lets every window close and be loaded, and checks
that ``helios export`` gives every line exactly once."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections import Counter

from tests.helpers import buck_query, poll_until
from tests.integration.test_porter_open_windows import count, syslog
from tests.integration.test_web_mesh import append


def mesh(tmp_path, procs, buck, window: str, *index: str):
    """Two bucks, a tailer with a spool re-sending its closed windows, a
    porter with its default (open windows indexed); their Procs."""
    bucks = [buck(n, None, "--window", window) for n in ("a", "b")]
    log = tmp_path / "app.log"
    log.write_bytes(b"")
    args = ["tailer", "--path", str(log), "--env", "prod", "--start-at", "beginning",
            "--state-dir", str(tmp_path / "tailer"), "--timezone", "UTC", "--spool-window", window,
            "--resend-jitter", "1"]
    for _, ep, _ in bucks:
        args += ["--buck", ep]
    procs(*args)
    porter = ["porter", "--index-dir", str(tmp_path / "index"), "--state-dir", str(tmp_path / "porter"),
              "--archive-dir", str(tmp_path / "archive"), "--poll-interval", "0.5", "--grace", "0.5",
              "--workers", "0", *index]
    for _, _, data in bucks:
        porter += ["--query", buck_query(data)]
    return log, procs(*porter, "run", name="porter"), [p for p, _, _ in bucks]


def exported(tmp_path, *index: str) -> Counter:
    """How many times each line (by its number) is in the index, from `helios export`."""
    r = subprocess.run([sys.executable, "-m", "helios", "export", "--index-dir", str(tmp_path / "index"), *index,
                        "--env", "prod", "--start", "2000-01-01T00:00:00Z", "-o", "ndjson"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines: Counter = Counter()
    ids: Counter = Counter()
    for row in r.stdout.splitlines():
        e = json.loads(row)
        m = re.search(r"app\[42\]: line (\d{6})", e.get("message", ""))
        if m:
            lines[int(m.group(1))] += 1
            ids[e["id"]] += 1
    assert all(n == 1 for n in ids.values()), [i for i, n in ids.items() if n > 1]
    return lines


def assert_exactly_once(tmp_path, total: int, *index: str) -> None:
    lines = exported(tmp_path, *index)
    assert sorted(lines) == list(range(total)), f"missing: {sorted(set(range(total)) - set(lines))[:20]}"
    assert set(lines.values()) == {1}, {k: v for k, v in lines.items() if v != 1}


def settle(tmp_path, total: int) -> None:
    """Until the spool re-sent its closed windows (third copies, in later
    windows) and every window closed and was loaded."""
    tailer_stats = tmp_path / "tailer" / "stats.json"
    spool = tmp_path / "tailer" / "spool"

    def resent_all() -> bool:
        files = [f for f in spool.rglob("*") if f.is_file()]
        try:
            return bool(files) and json.loads(tailer_stats.read_text())["resent_buckets"] >= len(files)
        except (OSError, ValueError, KeyError):
            return False
    poll_until(resent_all, timeout=90, interval=0.5, what="the spool's re-sends")
    status = tmp_path / "porter" / "status.json"

    def all_loaded():
        try:
            env = json.loads(status.read_text())["environments"]["prod"]
        except (OSError, ValueError, KeyError):
            return False
        return env.get("open") == 0 and env.get("index_behind") == 0 and env["events_indexed"] >= total
    poll_until(all_loaded, timeout=90, interval=0.5, what="every window closed and loaded")


def window_loads(porter) -> tuple[int, int]:
    """From the porter's log: events its closed-window loads took, and those loaded while open."""
    out = porter.output()
    whole = sum(int(n) for n in re.findall(r"Indexed window \S+: (\d+) event\(s\)", out))
    early = sum(int(n) for n in re.findall(r"and (\d+) loaded while it was open", out))
    return whole, early


def test_a_closed_window_load_takes_only_what_the_early_loads_did_not(tmp_path, procs, buck):
    log, porter, _ = mesh(tmp_path, procs, buck, "6")
    append(log, syslog(0, 60))
    poll_until(lambda: count(tmp_path) == 60, timeout=30, interval=0.3, what="60 events while open")
    settle(tmp_path, 60)
    assert_exactly_once(tmp_path, 60)
    whole, early = window_loads(porter)
    assert early >= 60 and whole < 60, (whole, early)   # the window loads did not take the 60 again


def test_a_porter_killed_between_the_early_load_and_the_window_load_loads_the_window_whole_once(
        tmp_path, procs, buck):
    log, porter, _ = mesh(tmp_path, procs, buck, "8")
    append(log, syslog(0, 40))
    poll_until(lambda: count(tmp_path) == 40, timeout=30, interval=0.3, what="40 events while open")
    porter.stop(signal.SIGKILL)   # its offsets are gone; its claims are in the ledger
    append(log, syslog(40, 20))
    porter.start()
    poll_until(lambda: count(tmp_path) == 60, timeout=30, interval=0.3, what="60 events after the restart")
    settle(tmp_path, 60)
    assert_exactly_once(tmp_path, 60)


def test_a_buck_killed_mid_window_leaves_the_bucks_different_copies_and_each_line_once(tmp_path, procs, buck):
    log, _, (buck_a, _) = mesh(tmp_path, procs, buck, "8")
    append(log, syslog(0, 30))
    poll_until(lambda: count(tmp_path) == 30, timeout=30, interval=0.3, what="30 events while open")
    buck_a.stop(signal.SIGKILL)   # mid-window: its copy stops here, buck-b's goes on
    append(log, syslog(30, 30))
    poll_until(lambda: count(tmp_path) == 60, timeout=30, interval=0.3, what="60 events from buck-b alone")
    buck_a.start()                # same data dir and ports: it appends to the window it had open
    append(log, syslog(60, 30))
    poll_until(lambda: count(tmp_path) == 90, timeout=30, interval=0.3, what="90 events")
    settle(tmp_path, 90)
    assert_exactly_once(tmp_path, 90)


def test_the_same_in_opensearch_a_porter_killed_between_early_and_window_load(tmp_path, procs, buck, osmem_url):
    index = ("--index", "opensearch", "--index-url", osmem_url)
    log, porter, _ = mesh(tmp_path, procs, buck, "8", *index)

    def lines() -> int:
        try:
            return sum(exported(tmp_path, *index).values())
        except AssertionError:   # no index yet
            return -1
    append(log, syslog(0, 40))
    poll_until(lambda: lines() == 40, timeout=30, interval=0.5, what="40 events while open")
    porter.stop(signal.SIGKILL)
    append(log, syslog(40, 20))
    porter.start()
    poll_until(lambda: lines() == 60, timeout=30, interval=0.5, what="60 events after the restart")
    settle(tmp_path, 60)
    assert_exactly_once(tmp_path, 60, *index)
