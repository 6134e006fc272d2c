"""The porter tells when it leaves events out of the index because of their
age (issue 16, finding 8: yearless syslog times 14 days old were dropped by
``--recent-days 7`` at INFO only): a WARNING with the counts, and the figure
in ``helios porter status`` and ``helios status``. Real processes: a tailer,
two bucks, ``helios porter once``."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys

from tests.helpers import ROOT, poll_until
from tests.integration.test_porter import porter_args, start_bucks, status_file


def helios(*args):
    return subprocess.run([sys.executable, "-m", "helios", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def syslog_line(when: datetime.datetime, n: int) -> bytes:
    # RFC 3164: no year, the day padded with a space.
    return f"{when:%b} {when.day:2d} {when:%H:%M:%S} web-1 app[7]: line {n:08d}\n".encode()


def test_events_older_than_the_index_keeps_are_counted_and_warned_about(tmp_path, procs, buck):
    bucks = start_bucks(buck, "a", "b")
    logs = tmp_path / "logs"
    logs.mkdir()
    now = datetime.datetime.now(datetime.timezone.utc)
    old, new = now - datetime.timedelta(days=14), now - datetime.timedelta(minutes=1)
    (logs / "app.log").write_bytes(b"".join(syslog_line(old, n) for n in range(300))
                                   + b"".join(syslog_line(new, n) for n in range(300, 320)))
    args = ["tailer", "--path", str(logs / "app.log"), "--env", "prod", "--start-at", "beginning",
            "--state-dir", str(tmp_path / "tailer"), "--encoders", "0"]
    for _, ingest, _, _ in bucks:
        args += ["--buck", ingest]
    procs(*args)
    queries = [q for *_, q in bucks]
    logged = []

    def ported():
        r = subprocess.run([sys.executable, "-m", "helios", *porter_args(tmp_path, queries, "--recent-days", "7",
                                                                         cmd="once")],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
        logged.append(r.stderr)
        d = (status_file(tmp_path).get("environments") or {}).get("prod") or {}
        return r if d.get("events_indexed", 0) >= 20 and d.get("index_behind") == 0 else None

    poll_until(ported, timeout=60, interval=0.5, what="the porter to index the new lines")
    logged = "".join(logged)
    assert "WARNING" in logged and "300 event(s) of prod" in logged and "left out of the index" in logged, logged
    assert "recent_days 7" in logged

    st = helios("porter", "status", "--json", "--state-dir", str(tmp_path / "porter"),
                *[x for q in queries for x in ("--query", q)])
    too_old = json.loads(st.stdout)["environments"]["prod"]["too_old"]
    assert too_old["events"] == 300 and too_old["windows"] >= 1
    assert too_old["oldest"].startswith(f"{old:%Y-%m-%d}")
    text = helios("porter", "status", "--state-dir", str(tmp_path / "porter"), *[x for q in queries for x in ("--query", q)])
    assert "300 events left out of the index" in text.stdout

    # A second pass over nothing new leaves the figure as it is (counted once, with the window's mark).
    helios(*porter_args(tmp_path, queries, "--recent-days", "7", cmd="once"))
    st = helios("porter", "status", "--json", "--state-dir", str(tmp_path / "porter"),
                *[x for q in queries for x in ("--query", q)])
    assert json.loads(st.stdout)["environments"]["prod"]["too_old"]["events"] == 300

    mesh = helios("status", *[x for q in queries for x in ("--query", q)])
    assert "300 events too old for the index" in mesh.stdout, mesh.stdout
