"""What the tailer tells its operator when nothing can work yet: a path that
matches no file, no buck answering, and a stop that sent nothing. Each is
said once, and again when it changes, not every second."""

from __future__ import annotations

from tests.helpers import poll_until
from tests.integration.test_web_mesh import append, syslog
from helios.wire.ports import free_endpoint


def test_a_missing_path_and_no_buck_are_said_once_and_the_stop_claims_nothing_sent(tmp_path, procs, buck):
    log = tmp_path / "logs" / "app.log"  # its directory does not exist yet
    nobody = free_endpoint()  # no buck listens there
    t = procs("tailer", "--path", str(log), "--env", "prod", "--start-at", "beginning", "--rescan-interval", "0.2",
              "--state-dir", str(tmp_path / "state"), "--buck", nobody, "--copies", "1")
    poll_until(lambda: "Nothing to follow" in t.output(), timeout=20, what="the missing path to be said")
    assert f"the directory {log.parent} does not exist" in t.output()
    poll_until(lambda: "No buck answers" in t.output(), timeout=30, what="no buck to be said")
    assert nobody in t.output()

    log.parent.mkdir()
    append(log, syslog(0, 10))
    poll_until(lambda: "now matches 1 file(s)" in t.output(), timeout=20, what="the path to match")
    # Said once each, though the tailer looked again many times.
    assert t.output().count("Nothing to follow") == 1
    assert t.output().count("No buck answers") == 1
    poll_until(lambda: "Following" in t.output(), timeout=20, what="the file to be followed")
    t.stop()
    out = t.output()
    assert "Tailer stopped: read 10 lines" in out
    assert "0 events sent live to a buck" in out
    assert "in the spool" in out


def test_a_buck_that_comes_up_is_said_and_the_lines_are_counted_as_sent(tmp_path, procs, buck):
    _, ingest, _ = buck("a")
    log = tmp_path / "app.log"
    append(log, syslog(0, 10))
    t = procs("tailer", "--path", str(log), "--env", "prod", "--start-at", "beginning",
              "--state-dir", str(tmp_path / "state"), "--buck", ingest, "--copies", "1")
    poll_until(lambda: "Following" in t.output(), timeout=20, what="the file to be followed")
    poll_until(lambda: (tmp_path / "state" / "stats.json").exists()
               and '"events_sent": 10' in (tmp_path / "state" / "stats.json").read_text(),
               timeout=20, what="the lines to be sent")
    t.stop()
    out = t.output()
    assert "10 events sent live to a buck" in out and "No buck answers" not in out
    assert "Nothing to follow" not in out
