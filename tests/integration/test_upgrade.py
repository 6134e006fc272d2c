"""An upgrade in the middle of a stream: a mesh runs the code of commit
01d012b (the version before content identity), the log is written and
rotated, the porter ports a first part; then each buck, and then the
tailer, is stopped (SIGTERM, as docs/operations.md "Upgrading to content
identity" says) and started from this tree on the same state directory,
positions, spool and bucket files, while the writer goes on and rotates the
log under the stopped tailer. Every line must be in the index once, and
``helios audit`` (new code) must pass."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests import torture
from tests.helpers import ROOT

OLD = "01d012b"


@pytest.fixture(scope="module")
def old_tree(tmp_path_factory):
    """The helios package of commit 01d012b, unpacked (git archive) in a temporary directory."""
    if subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", OLD + "^{commit}"],
                      capture_output=True).returncode != 0:
        pytest.skip(f"commit {OLD} is not in this repository (a shallow clone?)")
    dest = tmp_path_factory.mktemp(f"helios-{OLD}")
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", OLD, "helios", "setup.cfg", "pyproject.toml"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


@pytest.mark.parametrize("stop", ["upgrade", "upgrade-kill"])
def test_upgrading_a_running_mesh_from_01d012b_loses_nothing_and_indexes_nothing_twice(tmp_path, old_tree, stop,
                                                                                     request):
    """``upgrade``: each service stopped with SIGTERM; ``upgrade-kill``: the
    tailer killed with -9 instead (a crash during the upgrade: the new code
    reads again from the old code's last saved offsets)."""
    plan = torture.make_plan(7, "mixed", duration=11)
    plan.update(compress="gz", delaycompress=True, keep=6, encoders=2,
                rotations=[[1.5, "rename"], [6.5, "copytruncate"], [9.0, "rename"]],
                faults=[{"at": 2.0, "target": "buck-a", "kind": "upgrade", "down": 1.0},
                        {"at": 2.5, "target": "porter", "kind": "run", "down": 0.5},   # the old porter's first pass
                        {"at": 3.5, "target": "buck-b", "kind": "upgrade", "down": 1.0},
                        {"at": 5.5, "target": "tailer", "kind": stop, "down": 4.0}],   # two rotations under it
                replay=f"cd {ROOT} && PYTHONPATH=$PWD {sys.executable} -m pytest -q '{request.node.nodeid}'")
    res = torture.run(plan, tmp_path / "run", code=old_tree, upgrade_to=ROOT)
    if not res.ok:
        pytest.fail(f"{res.line()}\n  the run's files: {torture.keep_failed(res, f'upgrade-{stop}')}", pytrace=False)
    out = (tmp_path / "run" / "tailer.out").read_text()
    assert out.count("Tailer on") >= 2   # the old tailer and the new one
