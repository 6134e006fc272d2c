"""What the fuzz suites share: how many examples, and how long one may take.

Every fuzz test runs a modest number of examples by default, so that the
whole suite costs a minute or two of ``make test``. For a long run::

    HELIOS_FUZZ_EXAMPLES=20000 .venv/bin/pytest tests/unit/test_fuzz_inputs.py tests/integration/test_fuzz_live.py

runs that many examples in each (pytest's ``--hypothesis-seed=N`` replays a run).
``deadline`` bounds one example: an input that takes longer is a hang, and
fails the test with the input that did it.
"""

from __future__ import annotations

import datetime
import os

from hypothesis import HealthCheck, settings


def examples(default: int) -> int:
    value = os.environ.get("HELIOS_FUZZ_EXAMPLES", "")
    return int(value) if value.strip().isdigit() and int(value) > 0 else default


def fuzz(default: int, deadline_s: float | None = 5.0, **kw) -> settings:
    """Hypothesis settings of a fuzz test: ``default`` examples (or
    HELIOS_FUZZ_EXAMPLES), each within ``deadline_s`` seconds."""
    return settings(max_examples=examples(default), database=None,
                    deadline=None if deadline_s is None else datetime.timedelta(seconds=deadline_s),
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
                    **kw)
