"""Running an analysis of bench/analyses/ in its --quick mode, and checking
what every report must hold; shared by the analyses' quick tests."""

import json
import subprocess
import sys

from tests.helpers import ROOT

PNG = b"\x89PNG\r\n\x1a\n"


def run_quick(name, tmp_path, timeout):
    """Run ``bench/analyses/NAME.py --quick`` into tmp_path; return its report
    text, its results.json and its output folder."""
    out = tmp_path / "analyses"
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "analyses" / f"{name}.py"), "--quick", "--out", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=timeout)
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
