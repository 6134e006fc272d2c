"""The fault harness (``tests/torture.py``) on a few seeds: a writer rotating
app.log every way at 2,000-4,000 lines/s while the tailer, the bucks and the
porter are killed with -9 or stopped, then every line must be in the index
export exactly once and ``helios audit`` must agree. A failing seed prints
the command that replays it."""

from __future__ import annotations

import pytest

from tests import torture


def _run(tmp_path, seed, variant, duration=None):
    plan = torture.make_plan(seed, variant, duration)
    res = torture.run(plan, tmp_path / "run")
    if not res.ok:
        # pytest keeps few temporary directories: keep the failing run's files (logs, plan, export, audit).
        pytest.fail(f"{res.line()}\n  the run's files: {torture.keep_failed(res, f'{seed}-{variant}')}", pytrace=False)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_random_schedule_of_rotations_and_kills_loses_and_duplicates_nothing(tmp_path, seed):
    _run(tmp_path, seed, "mixed", duration=10)


def test_a_glob_that_matches_the_rotated_and_compressed_siblings_reads_each_line_once(tmp_path):
    _run(tmp_path, 4, "glob", duration=10)


def test_the_tailer_down_across_two_compressed_rotations_loses_nothing(tmp_path):
    _run(tmp_path, 5, "down2gz")

