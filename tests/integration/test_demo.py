"""`helios demo` as a new user meets it: every part runs, search and archie
work on its events, every printed command works as printed, counts are told
apart, and nothing is written outside its folder."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.helpers import poll_until
from tests.integration.test_history_web import Client

ROOT = Path(__file__).resolve().parents[2]


def env_with_tree() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def printed(out: str, label: str) -> list[str]:
    """The command the demo printed after ``label:``, as argv."""
    m = re.search(rf"^\s+{re.escape(label)}:\s+(.+)$", out, re.M)
    assert m, f"no {label!r} command in:\n{out}"
    return shlex.split(m.group(1))


def run_printed(argv: list[str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, env=env_with_tree(), capture_output=True, text=True, timeout=timeout)


def get_json(url: str, data: dict | None = None) -> dict:
    body = json.dumps(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"} if body else {})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def test_the_demo_runs_everything_and_every_printed_command_works(tmp_path):
    cwd = tmp_path / "elsewhere"  # where the user typed `helios demo`: nothing may land here
    cwd.mkdir()
    folder = tmp_path / "demo"
    out_path = tmp_path / "demo.out"
    with open(out_path, "w") as out:
        demo = subprocess.Popen([sys.executable, "-m", "helios", "demo", "--rate", "300", "--dir", str(folder)],
                                cwd=cwd, env=env_with_tree(), stdout=out, stderr=subprocess.STDOUT)
    try:
        # The web address is printed once the page answers, and it does answer.
        m = poll_until(lambda: re.search(r"live tail (http://127\.0\.0\.1:\d+/)", out_path.read_text()),
                       timeout=90, what="the web address")
        url = m.group(1)
        with urllib.request.urlopen(url, timeout=10) as r:
            assert r.status == 200
        text = out_path.read_text()
        # Every endpoint is printed: ingest, live feed and queries of each buck.
        for name in ("buck-a", "buck-b"):
            assert re.search(rf"{name}.+ingest tcp://\S+\s+live feed tcp://\S+\s+queries tcp://\S+", text), text
        for part in ("tailer", "porter", "history", "generator"):
            assert re.search(rf"^\s+{part}\s", text, re.M), text

        # Search finds the demo's events within the minute (the porter runs), by the printed command.
        search = printed(text, "search")
        found = poll_until(lambda: (r := run_printed(search, cwd)).returncode == 0 and r.stdout.strip() and r,
                           timeout=120, interval=1, what="a search hit")
        assert "declined" in found.stdout
        # The generator's mix has priorities, several hosts and apps: the same search, as JSON.
        r = run_printed([*search, "-o", "json", "--all"], cwd)
        hits = [json.loads(line) for line in r.stdout.splitlines()]
        assert hits and all(h["severity"] == "err" for h in hits), hits[:3]
        r = run_printed([*search[:-1], "-o", "json", "-n", "2000"], cwd)
        every = [json.loads(line) for line in r.stdout.splitlines()]
        assert len({h["host"] for h in every}) >= 5 and len({h["app"] for h in every}) >= 5
        assert len({h["severity"] for h in every}) >= 4
        # The search page's API finds them too.
        found = get_json(url + "api/search?env=demo&start=-15m&q=declined&limit=5")
        assert found["hits"], found

        # The other printed commands work as printed.
        for label in ("mesh status", "buckets", "porter", "audit"):
            r = run_printed(printed(text, label), cwd)
            assert r.returncode == 0, (label, r.stdout, r.stderr)
            if label == "mesh status":  # copies and distinct events apart; a new buck's bytes are counted
                assert "copies stored since start" in r.stdout and " 0 B on disk" not in r.stdout, r.stdout
                assert "distinct events)" in r.stdout, r.stdout
            if label == "audit":
                held = re.search(r"([\d,]+) distinct events held as [\d,]+ stored copies", r.stdout)
                assert held and int(held[1].replace(",", "")) > 0, r.stdout   # it reached the bucks
        # The index against the bucks: clean once the porter has loaded a closed window.
        def index_audit_clean():
            r = run_printed(printed(text, "index audit"), cwd)
            assert r.returncode in (0, 1), (r.stdout, r.stderr)
            assert not re.search(r"MISSING|EXTRA|MOVED", r.stdout), r.stdout
            return r.returncode == 0 and "No difference" in r.stdout
        poll_until(index_audit_clean, timeout=120, interval=2, what="the demo's index audit to pass")
        # subscribe runs until Ctrl-C: its first line is enough.
        sub = subprocess.Popen(printed(text, "live events"), cwd=cwd, env=env_with_tree(),
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            line = sub.stdout.readline()
            assert re.search(r" (warning|err|crit|alert|emerg) ", line), line
        finally:
            sub.send_signal(signal.SIGINT)
            sub.wait(timeout=15)
            sub.stdout.close()
        # A history request completes, from the CLI as printed ...
        r = run_printed(printed(text, "history index"), cwd, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        # ... and through archie.
        page = Client(url)  # the page's cookie and CSRF token, as a browser has them
        status, made = page.call("POST", "api/history", {"environment": "demo", "start": "-5m", "end": "-1m"})
        assert status in (200, 201), made
        poll_until(lambda: page.call("GET", f"api/history/{made['id']}")[1]["state"] == "ready",
                   timeout=120, interval=0.5, what="the archie request to be ready")
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=90)
    text = out_path.read_text()
    assert demo.returncode == 0, text
    # Counts are told apart: lines generated, events read, stored copies, distinct events indexed.
    final = re.search(r"Final counts: generated ([\d,]+) lines\s+tailer read ([\d,]+) events\s+"
                      r"stored copies ([\d,]+) \(buck-a ([\d,]+), buck-b ([\d,]+), ([\d.]+) per event read\)"
                      r"\s+searchable ([\d,]+) distinct events", text)
    assert final, text
    generated, read, copies, a, b, _, indexed = (int(x.replace(",", "").split(".")[0]) for x in final.groups())
    assert 0 < indexed <= read <= generated
    assert copies == a + b >= 2 * indexed  # at least the two live copies of each indexed event
    # Nothing outside the demo's folder.
    assert list(cwd.iterdir()) == []


def test_make_demo_installs_only_what_the_demo_needs():
    """`make demo` installs the package without the test extras, and no
    Debian package but python3-venv (no nagios, carbon or chromium)."""
    r = subprocess.run(["make", "-n", "-B", "demo"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    plan = r.stdout
    assert "pip install -q -e ." in plan and "[test]" not in plan
    for package in ("nagios4-core", "graphite-carbon", "chromium", "python3-whisper"):
        assert package not in plan
    assert "python3-venv" in plan
    assert ".venv/bin/helios demo" in plan
    r = subprocess.run(["make", "-n", "-B", "test"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "pip install -q -e '.[test]'" in r.stdout and "chromium" in r.stdout


def test_the_demo_follows_given_files_from_their_end_and_counts_them(tmp_path):
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    log = cwd / "app.log"
    log.write_text("Dec  6 10:00:00 old-host app[1]: written before the demo, not read\n")
    out_path = tmp_path / "demo.out"
    with open(out_path, "w") as out:
        demo = subprocess.Popen([sys.executable, "-m", "helios", "demo", "app.log", "--no-web",
                                 "--dir", str(tmp_path / "demo")], cwd=cwd, env=env_with_tree(), stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        poll_until(lambda: "tailer read" in out_path.read_text(), timeout=60, what="the demo's counts")
        assert f"follows {log}" in out_path.read_text()  # the relative path, made absolute
        n = iter(range(10**6))
        with open(log, "a") as f:
            def more():
                f.write("".join(f"<11>Dec  6 10:00:01 web-1 app[2]: given line {next(n)}\n" for _ in range(5)))
                f.flush()
                return re.search(r"tailer read ([1-9][\d,]*) events", out_path.read_text())
            poll_until(more, timeout=60, interval=0.5, what="the given file's lines to be read")
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=90)
    text = out_path.read_text()
    assert demo.returncode == 0, text
    assert "generated" not in text and "generator" not in text
    final = re.search(r"Final counts: tailer read ([\d,]+) events\s+stored copies ([\d,]+) \(buck-a", text)
    assert final, text
    read = int(final.group(1).replace(",", ""))
    assert 0 < read <= next(n)  # only what was appended after the start
    assert sorted(p.name for p in cwd.iterdir()) == ["app.log"]
