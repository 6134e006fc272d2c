"""`helios search` where there is no index (a relative default path, run
from another folder) says so and where it looked, not "no events"."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def search(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "helios", "search", "--env", "demo", *args, "error"], cwd=cwd,
                          capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def test_search_from_another_folder_says_there_is_no_index_there(tmp_path):
    r = search(tmp_path)
    assert r.returncode == 1
    assert f"no index at {tmp_path / 'helios-data' / 'index' / 'helios-recent'}" in r.stderr
    assert f"relative to the current directory {tmp_path}" in r.stderr
    assert "holds no events" not in r.stderr
    assert list(tmp_path.iterdir()) == []  # and it made none


def test_an_absolute_index_dir_that_does_not_exist_is_named(tmp_path):
    r = search(tmp_path, "--index-dir", str(tmp_path / "nowhere"))
    assert r.returncode == 1
    assert f"no index at {tmp_path / 'nowhere' / 'helios-recent'}: no porter has indexed anything there" in r.stderr
    assert "relative" not in r.stderr
