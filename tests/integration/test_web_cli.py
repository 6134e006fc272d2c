"""``helios web`` as a command: bad settings, a taken port, a clean stop."""

import signal
import socket
import subprocess
import sys

from helios.wire.ports import free_endpoint
from tests.integration.webpage import start_web


def helios(*args, timeout=30):
    return subprocess.run([sys.executable, "-m", "helios", *args], capture_output=True, text=True, timeout=timeout)


def test_web_help_shows_every_setting_with_its_default():
    out = " ".join(helios("web", "--help").stdout.split())  # help text wraps
    for flag, default in (("--feed", "tcp://127.0.0.1:7302"), ("--listen", "127.0.0.1:7390"),
                          ("--max-lines", "10000"), ("--max-lag", "0.5"), ("--session-rate", "20000")):
        assert flag in out and f"[default: {default}]" in out, flag


def test_bad_web_settings_exit_2_and_name_every_key():
    r = helios("web", "--listen", "nowhere", "--feed", "tcp//x", "--max-lines", "5", "--reorder-delay", "9")
    assert r.returncode == 2
    for key in ("web.listen", "web.bucks_pub[0]", "web.max_lines", "web.reorder_delay"):
        assert key in r.stderr, (key, r.stderr)


def test_a_taken_port_is_a_clear_error_not_a_traceback():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = helios("web", "--listen", f"127.0.0.1:{port}", "--feed", free_endpoint())
    assert r.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in r.stderr and "Traceback" not in r.stderr


def test_web_stops_cleanly_on_sigterm(procs):
    web = start_web(procs, free_endpoint())
    assert web.status()["bucks"][0]["state"] in ("connecting", "down")
    assert web.proc.stop(signal.SIGTERM, timeout=10) == 0
    assert "The live tail stopped." in web.proc.output()
