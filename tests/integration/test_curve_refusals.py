"""Refused CURVE handshakes are logged within a total limit (issue 17): the
per-key limit alone let 300 fresh random keys log 300 warnings."""

from __future__ import annotations

import subprocess
import sys

import zmq
from zmq.utils.monitor import recv_monitor_message

from helios import codec
from helios.model import Event, random_id
from tests.helpers import ROOT, buck_events, poll_until


def keygen(name: str, directory) -> None:
    r = subprocess.run([sys.executable, "-m", "helios", "keygen", name, "--dir", str(directory)],
                       capture_output=True, text=True, cwd=ROOT, timeout=30, check=False)
    assert r.returncode == 0, r.stderr


def read_key(path, field: str) -> bytes:
    return path.read_text().split(f'{field} = "')[1][:40].encode()


def refused_handshake(endpoint: str, server_public: bytes) -> None:
    """One CURVE handshake with a fresh random key, to the refusal."""
    public, secret = zmq.curve_keypair()
    sock = zmq.Context.instance().socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, 0)
    sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = server_public, public, secret
    mon = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_FAILED_AUTH)
    try:
        sock.connect(endpoint)
        assert mon.poll(10_000), "no refusal within 10 s"
        assert recv_monitor_message(mon)["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH
    finally:
        sock.disable_monitor()
        mon.close(linger=0)
        sock.close(linger=0)


def test_300_handshakes_with_fresh_random_keys_log_a_few_warnings_and_allowed_keys_still_get_in(buck, tmp_path):
    kdir, allow = tmp_path / "keys", tmp_path / "allow"
    for name in ("server", "tailer"):
        keygen(name, kdir)
    allow.mkdir()
    (allow / "tailer.key").write_bytes((kdir / "tailer.key").read_bytes())
    cfg = tmp_path / "buck.toml"
    cfg.write_text(f'[security]\ncurve = true\nserver_secret_key = "{kdir}/private/server.key_secret"\n'
                   f'allow_dir = "{allow}"\n')
    p, ingest, data = buck("a", None, "-c", str(cfg))
    server_public = read_key(kdir / "server.key", "public-key")
    for _ in range(300):
        refused_handshake(ingest, server_public)
    warnings = [line for line in p.output().splitlines() if "refused a client" in line]
    assert 1 <= len(warnings) <= 5, warnings
    assert "at most 5 a minute in all" in warnings[0]
    # An allowed key still gets in.
    push = zmq.Context.instance().socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 5000)
    tailer_secret = kdir / "private" / "tailer.key_secret"
    push.curve_serverkey = server_public
    push.curve_publickey = read_key(tailer_secret, "public-key")
    push.curve_secretkey = read_key(tailer_secret, "secret-key")
    push.connect(ingest)
    t = 1_700_000_000_000_000_000
    push.send(codec.encode_events("prod", "h", [Event(random_id(), t, t, "h", "a", 6, "", None, b"in", None)]))
    poll_until(lambda: len(buck_events(data)[0]) == 1, timeout=15, what="the allowed key's batch")
    push.close()
