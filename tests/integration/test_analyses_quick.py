"""Each analysis of bench/analyses/ in its --quick mode, against the real mesh
(real processes, sockets and faults), written into tmp_path: the report and
its plots are produced, and the figures are sane, so the analyses keep
working as the code changes.

Minutes, not seconds: marked ``analysis``; deselect with ``-m "not analysis"``.
"""


import pytest

from tests.integration.analyses import assert_plots, run_quick

pytestmark = pytest.mark.analysis

def test_duralog_quick_loses_nothing_where_a_setting_promises_it(tmp_path):
    report, results, out = run_quick("duralog", tmp_path, timeout=300)
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
        assert cost["events_per_s"] > 0, f"{key}: no capacity measured"  # figures: the report, not a test
    assert "| `spool-2` |" in report and "0 ✓" in report


def test_headless_quick_masterless_mesh_loses_nothing_while_bucks_die(tmp_path):
    report, results, out = run_quick("headless", tmp_path, timeout=300)
    assert_plots(report, out, "headless", ["throughput-and-loss.png", "recovery.png"])
    churn = {(r["topology"], r["spool"]): r for r in results["churn"]}
    ml = churn[("masterless-2", False)]
    assert ml["kills"] >= 2 and ml["events"] > 0
    # Each batch went to both bucks: killing one, even with no spool, loses nothing.
    assert ml["lost"] == 0 and ml["dup"] == 0
    for r in results["churn"]:
        assert r["dup"] == 0 and r["p99_ms"] is not None
    for r in results["throughput"]:
        assert r["lines_per_s"] > 0, f"{r['topology']} x{r['tailers']}: no throughput measured"
        if not r["topology"].startswith("primary"):
            # (a few more: the tailers' inventory records are events the bucks count too)
            assert r["copies_wanted"] <= r["copies_stored"] <= r["copies_wanted"] + 20 * r["tailers"]
