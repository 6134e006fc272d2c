"""`helios audit --env E` with lines a rule or a [[tailer.parse]] table sent to
other environments: a real tailer and a real buck, then things broken on
purpose. Every byte of such a file is still accounted for (its lines are
looked for in every environment), a range lost from another environment is
named (exit 1), and a clean run exits 0."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys

from tests.helpers import ROOT, buck_events, poll_until

CONFIG = """
[tailer]
environment = "prod"
start_at = "beginning"
copies = 1

[[tailer.parse]]
paths = ["{billing}"]
environment = "billing"

[[tailer.parse]]
paths = ["{web}"]

[[tailer.parse.rules]]
name = "audit"
regex = 'AUDIT (?P<user>\\w+)'
environment = "audit"
"""
WEB = [b"GET /a 200\n", b"AUDIT alice changed her password\n", b"GET /b 404\n", b"AUDIT bob logged in\n",
       b"GET /c 200\n"]


def run_audit(data, *args):
    r = subprocess.run([sys.executable, "-m", "helios", "audit", str(data), *args], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout + r.stderr


def test_audit_env_accounts_for_lines_moved_to_other_environments_and_names_a_range_lost_there(
        tmp_path, procs, buck):
    b, endpoint, data = buck("a")
    billing, web = tmp_path / "billing.log", tmp_path / "web.log"
    billing.write_bytes(b"".join(b"invoice %d paid\n" % i for i in range(200)))
    web.write_bytes(b"".join(WEB))
    config = tmp_path / "helios.toml"
    config.write_text(CONFIG.format(billing=billing, web=web))
    tailer = procs("tailer", "--config", str(config), "--path", str(tmp_path / "*.log"), "--buck", endpoint,
                   "--state-dir", str(tmp_path / "state"), "--positions-interval", "0.2", name="tailer")
    poll_until(lambda: len({e.id for e in buck_events(data)[0] if e.app != "helios-inventory"}) == 205,
               timeout=30, what="every line in the buck")
    assert tailer.stop(signal.SIGTERM) == 0        # its last inventory records say both files were read to the end
    # Clean: each environment's audit is clean, also the tailer's (whose inventory names billing.log and
    # web.log, whose lines are in billing and audit) and audit (which holds only some lines of web.log).
    for env in ("prod", "audit", "billing"):
        code, out = poll_until(lambda: (r := run_audit(data, "--env", env))[0] == 0 and r, timeout=30,
                               what=f"a clean audit of {env}")
        assert "No gaps" in out
    code, out = run_audit(data, "--env", "prod")
    assert f"{web} " in out and "held in audit, prod" in out and f"{billing} " in out and "held in billing" in out
    assert run_audit(data)[0] == 0                 # all environments at once, as before
    code, out = run_audit("--buck", endpoint, "--env", "audit")     # asked of the running buck
    assert code == 0 and "held in audit, prod" in out, out
    assert b.stop() == 0

    # Broken: the buck lost the audit environment's buckets (web.log's AUDIT lines).
    shutil.rmtree(data / "buckets" / "audit")
    code, out = run_audit(data, "--env", "prod")
    first = len(WEB[0])
    second = sum(map(len, WEB[:3]))
    assert code == 1, out
    assert f"missing bytes {first:,}..{first + len(WEB[1]):,}" in out        # named, to the byte
    assert f"missing bytes {second:,}..{second + len(WEB[3]):,}" in out
    assert [line for line in out.splitlines() if f"{billing} " in line][0].endswith(": OK")
    b.start()                                      # the same, asked of the buck over its query endpoint
    code, out = poll_until(lambda: (r := run_audit("--buck", endpoint, "--env", "prod"))[0] == 1 and r,
                           timeout=30, what="the restarted buck's answer")
    assert code == 1 and f"missing bytes {first:,}..{first + len(WEB[1]):,}" in out, out
    assert b.stop() == 0

    # Broken: the billing environment lost its buckets: the tailer's environment names the whole file.
    shutil.rmtree(data / "buckets" / "billing")
    code, out = run_audit(data, "--env", "prod")
    assert code == 1 and f"{billing} " in out
    assert f"bytes 0..{billing.stat().st_size:,} seen on disk, held by no buck" in out
