"""The command line: bad configs, help texts, the demo."""

import re
import subprocess
import sys

from helios import config
from tests.helpers import bound_endpoints, buck_events


def helios(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "helios", *args], capture_output=True, text=True, timeout=timeout)


BAD = """
[buck]
window = 7
fsync = "yes"
colour = "blue"

[tailer]
paths = []
bucks = ["tcp://127.0.0.1:7301", "tcp//nowhere"]
batch_delay = -1

[porter2]
x = 1
"""


def test_a_bad_config_file_exits_2_and_lists_every_problem(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(BAD)
    for args in (["check-config", str(path)], ["buck", "-c", str(path)], ["tailer", "-c", str(path)]):
        r = helios(*args)
        assert r.returncode == 2, args
        for key in ("buck.window", "buck.fsync", "buck.colour", "tailer.paths", "tailer.bucks[1]",
                    "tailer.batch_delay", "porter2"):
            assert key in r.stderr, (args, key, r.stderr)
        assert "7 problem(s)" in r.stderr


def test_a_toml_syntax_error_is_reported_with_its_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[buck]\nwindow = = 3\n")
    r = helios("check-config", str(path))
    assert r.returncode == 2 and "line 2" in r.stderr


def test_a_service_without_its_required_keys_says_which(tmp_path):
    r = helios("tailer")
    assert r.returncode == 2
    assert "tailer.paths: required" in r.stderr and "tailer.bucks: required" in r.stderr


def test_a_bad_flag_value_is_reported_by_its_key(tmp_path):
    r = helios("buck", "--window", "7", "--ingest", "nowhere", "--data-dir", str(tmp_path))
    assert r.returncode == 2
    assert "buck.window" in r.stderr and "buck.ingest" in r.stderr


def test_the_example_config_checks_clean(tmp_path):
    r = helios("check-config", "--example")
    assert r.returncode == 0
    path = tmp_path / "example.toml"
    path.write_text(r.stdout)
    r = helios("check-config", str(path))
    assert r.returncode == 0, r.stderr
    assert "OK" in r.stdout


def test_every_command_has_help_that_shows_defaults():
    for cmd in ("buck", "tailer", "demo", "check-config"):
        r = helios(cmd, "--help")
        assert r.returncode == 0 and "Usage: helios " + cmd in r.stdout
    r = helios("buck", "--help")
    assert f"[default: {config.default('buck', 'window')}]" in r.stdout


def test_a_port_in_use_is_a_clear_error(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = helios("buck", "--ingest", f"tcp://127.0.0.1:{port}", "--data-dir", str(tmp_path))
    assert r.returncode == 1
    assert re.search(rf"cannot bind tcp://127.0.0.1:{port}", r.stderr)


def test_the_demo_runs_the_mesh_and_counts_events_in_both_bucks(tmp_path):
    r = helios("demo", "--duration", "4", "--rate", "500", "--dir", str(tmp_path), timeout=90)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "buck-a" in r.stdout and "tailer" in r.stdout and "generator" in r.stdout
    assert re.search(r"live tail http://127\.0\.0\.1:\d+/", r.stdout)
    final = re.search(r"Final counts: .*stored copies [\d,]+ \(buck-a ([\d,]+), buck-b ([\d,]+)", r.stdout)
    assert final, r.stdout
    a, b = (int(x.replace(",", "")) for x in final.groups())
    assert a > 0 and b > 0
    # Every batch went to both bucks: they hold the same events.
    held = [{e.id for e in buck_events(tmp_path / name)[0]} for name in ("buck-a", "buck-b")]
    assert held[0] and held[0] == held[1]


def test_a_second_buck_on_the_same_data_directory_is_refused(tmp_path, procs):
    first = procs("buck", "--ingest", "tcp://127.0.0.1:*", "--data-dir", str(tmp_path / "a"), name="first")
    bound_endpoints(tmp_path / "a", first.p.pid)
    r = helios("buck", "--ingest", "tcp://127.0.0.1:*", "--data-dir", str(tmp_path / "a"))
    assert r.returncode == 1
    assert f"another buck is running with the data directory {tmp_path / 'a'}" in r.stderr
    assert "give each buck its own --data-dir" in r.stderr
    # The first one goes on storing; a buck on its own directory starts.
    other = procs("buck", "--ingest", "tcp://127.0.0.1:*", "--data-dir", str(tmp_path / "b"), name="other")
    bound_endpoints(tmp_path / "b")
    assert first.alive() and other.alive()


def test_a_buck_restarted_on_its_data_directory_starts_again(tmp_path, procs):
    """The lock goes with the process: a stopped (or killed) buck leaves
    no lock behind that would refuse its own restart."""
    first = procs("buck", "--ingest", "tcp://127.0.0.1:*", "--data-dir", str(tmp_path / "a"), name="first")
    bound_endpoints(tmp_path / "a", first.p.pid)
    first.p.kill()
    first.p.wait()
    first.expect_exit(-9)
    again = procs("buck", "--ingest", "tcp://127.0.0.1:*", "--data-dir", str(tmp_path / "a"), name="again")
    bound_endpoints(tmp_path / "a", again.p.pid)
    assert again.alive()


def test_a_demo_window_that_does_not_divide_a_day_is_refused():
    r = helios("demo", "--window", "7", "--duration", "1")
    assert r.returncode == 2
    assert "7 does not divide 86400" in r.stderr
