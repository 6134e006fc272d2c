"""The suite's own rules (tests/helpers.py, tests/conftest.py): a missing
component skips unless HELIOS_REQUIRE requires it, and a helios process that
ends otherwise than a test said is a problem the teardown reports."""

import signal

import pytest

from tests.helpers import Proc, poll_until, require


@pytest.mark.parametrize("wanted, component, fails", [
    ("", "chromium", False),
    ("all", "chromium", True),                  # make installs it
    ("all", "elasticsearch", False),            # make does not
    ("all,elasticsearch", "elasticsearch", True),
    ("nagios", "chromium", False),
])
def test_a_missing_component_skips_unless_it_is_required(monkeypatch, wanted, component, fails):
    monkeypatch.setenv("HELIOS_REQUIRE", wanted)
    with pytest.raises(pytest.fail.Exception if fails else pytest.skip.Exception, match="not here"):
        require(component, "it is not here")


def test_a_process_that_exits_non_zero_by_itself_is_a_problem_unless_expected(tmp_path):
    p = Proc(["buck", "--window", "7"], tmp_path / "bad.out")  # 7 does not divide a day: a config error
    poll_until(lambda: not p.alive(), what="the buck to refuse its config")
    assert p.stop() == 2
    assert p.problems() == ["exited with status 2 by itself, not [0]"]
    assert p.expect_exit(2).problems() == []


def test_sigterm_stops_a_buck_with_status_0_and_sigkill_is_no_problem(tmp_path):
    p = Proc(["buck", "--ingest", "tcp://127.0.0.1:*", "--publish", "", "--query", "",
              "--data-dir", str(tmp_path / "data")], tmp_path / "buck.out")
    poll_until(lambda: (tmp_path / "data" / "stats.json").exists(), what="the buck to start")
    assert p.stop() == 0 and p.problems() == []
    p.start()
    poll_until(lambda: "takes batches" in p.output().split("stopped")[-1], what="the buck to start again")
    assert p.stop(signal.SIGKILL) == -signal.SIGKILL
    assert p.problems() == []
