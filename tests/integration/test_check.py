"""``helios check``: a monitoring-plugins check on the live feed (exit codes, output, perfdata)."""

import re
import subprocess
import sys

import pytest

from helios.wire.ports import free_endpoint
from tests.helpers import ROOT, poll_until
from tests.integration.livemesh import Mesh, append, lines, stats

PERF = re.compile(r"'events'=(\d+);([^;]*);([^;]*);0 'dropped'=(\d+);;;0 'bucks'=(\d+);;;0;(\d+)$")

# Each check watches its own app; 600 lines over 20 apps give each app 30 events.
CASES = [  # app, thresholds, expected exit code
    ("app0", ["-w", "50", "-c", "100"], 0),      # 30 is within 0..50
    ("app1", ["-w", "20", "-c", "100"], 1),      # 30 > 20
    ("app2", ["-w", "10", "-c", "20"], 2),       # critical is looked at first
    ("app3", ["-w", "40:", "-c", "10:"], 1),     # fewer than 40
    ("app4", ["-w", "~:100", "-c", "@25:35"], 2),  # inside 25..35
    ("app5", ["-c", "@0"], 0),                   # critical only on silence
]


def run_check(*args, timeout=30):
    return subprocess.run([sys.executable, "-m", "helios", "check", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def test_each_threshold_gives_its_state_as_exit_code_with_perfdata(tmp_path, procs, buck):
    mesh = Mesh(tmp_path, procs, buck)
    # A check's state is its exit status (0 OK, 1 WARNING, 2 CRITICAL).
    checks = [(mesh.start("check", "--env", "prod", "--app", app, "--seconds", "4", *limits,
                          name=f"check-{app}").expect_exit(code), code)
              for app, limits, code in CASES]
    for d in mesh.data:  # one prefix per check, on each buck
        poll_until(lambda: stats(d)["live"]["subscriptions"] == len(CASES), timeout=30,
                   what="every check to subscribe")
    append(mesh.log, lines(0, 600))
    for (proc, code), (app, limits, _) in zip(checks, CASES):
        poll_until(lambda: not proc.alive(), timeout=15, what=f"check on {app} to finish")
        out = proc.output().strip().splitlines()[-1]
        assert proc.p.returncode == code, out
        state = ("OK", "WARNING", "CRITICAL")[code]
        assert out.startswith(f"HELIOS {state} - 30 events in 4 s (env=prod app={app}) | "), out
        m = PERF.search(out)
        assert m, out
        assert m.groups() == ("30", *[limits[limits.index(f)+1] if f in limits else "" for f in ("-w", "-c")],
                              "0", "2", "2")


def test_a_check_with_no_buck_reachable_is_unknown():
    r = run_check("--feed", free_endpoint(), "--connect-timeout", "0.3", "--seconds", "1", "-c", "10")
    assert r.returncode == 3
    assert r.stdout.startswith("HELIOS UNKNOWN - no buck reachable within 0.3 s"), r.stdout


def test_a_check_with_one_buck_down_still_counts_and_says_which(tmp_path, procs, buck):
    mesh = Mesh(tmp_path, procs, buck)
    down = free_endpoint()
    # --contains: the tailed lines only, not the tailer's inventory records (live events too).
    proc = procs("--log-level", "warning", "check", "--feed", mesh.pubs[0], "--feed", down, "--seconds", "3",
                 "--connect-timeout", "0.5", "-w", "5", "--env", "prod", "--contains", "payload",
                 name="check").expect_exit(1)
    poll_until(lambda: stats(mesh.data[0])["live"]["subscriptions"] == 1, what="the check to subscribe")
    append(mesh.log, lines(0, 10))
    poll_until(lambda: not proc.alive(), timeout=15, what="the check to finish")
    out = proc.output().strip().splitlines()[-1]
    assert proc.p.returncode == 1, out
    assert f"not reachable: {down}" in out and "'bucks'=1;;;0;2" in out and "- 10 events" in out


@pytest.mark.parametrize("args, why", [
    (["-w", "10:5"], "starts above its end"),
    (["-c", "lots"], "is not a range"),
    (["--severity", "loud"], "not a severity"),
    (["--bogus"], "No such option"),
    (["--seconds", "0"], "--seconds"),
    (["--feed", "nowhere"], "subscribe.bucks"),
])
def test_bad_arguments_are_unknown_on_standard_output(args, why):
    r = run_check(*args)
    assert r.returncode == 3, r.stdout + r.stderr
    assert r.stdout.startswith("HELIOS UNKNOWN - bad arguments: ") and why in r.stdout, r.stdout
