"""Each analysis of bench/analyses/ in its --quick mode, against the real mesh
(real processes, sockets and faults), written into tmp_path: the report and
its plots are produced, and the figures are sane, so the analyses keep
working as the code changes.

Minutes, not seconds: marked ``analysis``; deselect with ``-m "not analysis"``.
"""

import json
import subprocess
import sys

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.analysis

PNG = b"\x89PNG\r\n\x1a\n"


def run_quick(name, tmp_path):
    """Run ``bench/analyses/NAME.py --quick`` into tmp_path; return its report
    text, its results.json and its output folder."""
    out = tmp_path / "analyses"
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "analyses" / f"{name}.py"), "--quick", "--out", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{name} --quick exited {r.returncode}:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    report = (out / f"{name}.md").read_text()
    results = json.loads((out / name / "results.json").read_text())
    return report, results, out


def assert_plots(report, out, name, expected):
    """Every plot the report shows exists as a real PNG, and the expected ones are shown."""
    for png in expected:
        assert f"]({name}/{png})" in report, f"{png} is not shown in the report"
        data = (out / name / png).read_bytes()
        assert data.startswith(PNG) and len(data) > 10_000, f"{png} is not a drawn PNG"
    assert "## Command" in report and f"bench/analyses/{name}.py --quick" in report


def test_duralog_quick_loses_nothing_where_a_setting_promises_it(tmp_path):
    report, results, out = run_quick("duralog", tmp_path)
    assert_plots(report, out, "duralog", ["loss-vs-cost.png", "loss-by-fault.png"])
    runs = {(r["setting"], r["fault"]): r for r in results["runs"]}
    p = results["params"]
    for r in runs.values():
        assert r["events"] >= 0.8 * p["rate"] * p["duration"], f"{r['setting']}/{r['fault']} ran short"
        assert r["dup"] == 0, f"{r['setting']}/{r['fault']}: duplicates that dedup by id cannot remove"
        if r["promised"]:
            assert r["lost"] == 0, f"{r['setting']}/{r['fault']} promises no loss and lost {r['lost']}"
    # The spool keeps what a tailer killed with -9 had read; ids make its re-reads harmless.
    assert runs[("spool-2", "tailer")]["lost"] == 0
    assert runs[("spool-2", "porter")]["lost"] == 0
    # The power-cut model bites where nothing was fsynced, and fsynced acks survive it.
    assert runs[("http-written", "power")]["lost"] > 0
    assert runs[("http-fsynced", "power")]["lost"] == 0
    for key, cost in results["costs"].items():
        assert cost["events_per_s"] > 1000, f"{key}: capacity {cost['events_per_s']}"
    assert "| `spool-2` |" in report and "0 ✓" in report


def test_headless_quick_masterless_mesh_loses_nothing_while_bucks_die(tmp_path):
    report, results, out = run_quick("headless", tmp_path)
    assert_plots(report, out, "headless", ["throughput-and-loss.png", "recovery.png"])
    churn = {(r["topology"], r["spool"]): r for r in results["churn"]}
    ml = churn[("masterless-2", False)]
    assert ml["kills"] >= 2 and ml["events"] > 0
    # Each batch went to both bucks: killing one, even with no spool, loses nothing.
    assert ml["lost"] == 0 and ml["dup"] == 0
    for r in results["churn"]:
        assert r["dup"] == 0 and r["p99_ms"] is not None
    for r in results["throughput"]:
        assert r["lines_per_s"] > 1000, f"{r['topology']} x{r['tailers']}: {r['lines_per_s']}"
        if not r["topology"].startswith("primary"):
            assert r["copies_stored"] == r["copies_wanted"]
