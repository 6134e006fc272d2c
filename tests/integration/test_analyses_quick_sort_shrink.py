"""The sortalog and shrinkalog analyses in their --quick mode, written into
tmp_path: the report and its plots are produced and the figures are sane
(sorting improves with the wait, every codec round-trips), so the analyses
keep working as the code changes.

Minutes, not seconds: marked ``analysis``; deselect with ``-m "not analysis"``.
"""


import pytest

from tests.integration.analyses import assert_plots, run_quick

pytestmark = pytest.mark.analysis

def test_sortalog_quick_sorts_better_the_longer_it_waits(tmp_path):
    report, results, out = run_quick("sortalog", tmp_path, timeout=400)
    assert_plots(report, out, "sortalog", ["disorder.png", "longer-wait-better-sort.png", "sorting-buys.png"])
    assert "## Conclusion" in report
    assert len(results["sources"]) >= 50
    counts = results["counts"]
    assert counts["distinct_events_at_bucks"] > 5000
    assert counts["events_archived"] == counts["distinct_events_at_bucks"], "the porter lost or added events"
    for stream, curve in results["in_place"].items():
        shares = list(curve.values())          # W = 0, 0.1, 1, 5, 30, 60, 300
        assert all(0 < s <= 1 for s in shares), stream
        assert all(b >= a - 0.01 for a, b in zip(shares, shares[1:])), f"{stream}: a longer wait sorted worse"
        assert shares[-1] > shares[0], f"{stream}: waiting did not help"
    assert results["porter_in_place"] > results["in_place"]["mesh (first arrival at either buck)"]["0"]
    assert all(v > 0 for v in results["compression"]["bytes"].values())
    # Every archived event is filled into the history index, the tailers' inventory records aside.
    assert results["history"]["fill_events"] == counts["events_archived"] - counts["inventory_archived"]
    assert counts["inventory_archived"] < counts["events_archived"] // 10


def test_shrinkalog_quick_round_trips_every_codec_and_the_new_format_is_not_larger(tmp_path):
    report, results, out = run_quick("shrinkalog", tmp_path, timeout=400)
    assert_plots(report, out, "shrinkalog", ["ratio.png", "tradeoffs.png"])
    assert "## Conclusion" in report
    inputs = results["results"]
    assert "synthetic" in inputs
    for name, r in inputs.items():
        for variant, v in r["variants"].items():
            assert v["ok"], f"{name}: {variant} did not round-trip"
            assert v["raw"] / v["bytes"] > 1.5, f"{name}: {variant} hardly compresses"
        v1 = r["variants"]["zstd -19 (format v1: today)"]["bytes"]
        v2 = r["variants"]["format v2, layout chosen per object"]["bytes"]
        assert v2 <= v1 * 1.01, f"{name}: the default format grew from {v1} to {v2} bytes"
        assert r["variants"]["zstd -19 (format v1: today)"]["bytes"] < r["variants"]["lz4"]["bytes"]
