"""The progress line of `helios history request` and `export --history`."""

from helios.commands.history import progress_line

P = {"windows_done": 3, "windows_total": 3, "events_loaded": 1_200, "bytes_read": 22_334_000, "bytes_total": 22_440_000}


def test_a_request_being_built_shows_the_bytes_read_of_the_planned_total():
    line = progress_line("building", 0.5, dict(P, windows_done=1), eta=12)
    assert "1/3 windows, 1,200 events, 21.3 MiB of 21.4 MiB, ETA 0:12" in line


def test_a_ready_request_shows_what_was_read_not_of_a_total_it_never_reached():
    """The total is the plan's guess (the largest copy among the bucks): "21.3 MiB of 21.4 MiB" on a
    finished request looked like a build that stopped short (issue 21)."""
    line = progress_line("ready", 1.0, P, eta=None)
    assert line.endswith("3/3 windows, 1,200 events, 21.3 MiB read") and " of " not in line
