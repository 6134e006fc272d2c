"""CURVE on every socket ([security] curve): only clients whose key is on a
buck's allow-list push, subscribe and query; a key removed from it and a
SIGHUP shut its holder out; nothing crosses the wire in plaintext; keys are
written and read with safe permissions. Real processes, real keys."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.helpers import ROOT, buck_events, buck_query, poll_until


def helios(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "helios", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout)


def write_security(path: Path, **keys: str) -> str:
    lines = ["[security]", "curve = true"] + [f'{k} = "{v}"' for k, v in keys.items()]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture
def keys(tmp_path):
    """Key pairs made by `helios keygen`: the bucks' server key, and clients
    tailer and ops (on the allow-list) and stranger (not on it); a config
    file for each."""
    kdir = tmp_path / "keys"
    for name in ("server", "tailer", "ops", "stranger"):
        r = helios("keygen", name, "--dir", str(kdir), *(("--role", "admin") if name == "ops" else ()))
        assert r.returncode == 0, r.stderr
    allow = tmp_path / "allow"
    allow.mkdir()
    for name in ("tailer", "ops"):
        (allow / f"{name}.key").write_bytes((kdir / f"{name}.key").read_bytes())
    k = SimpleNamespace(dir=kdir, allow=allow)
    k.buck = write_security(tmp_path / "buck.toml", server_secret_key=str(kdir / "private/server.key_secret"),
                            allow_dir=str(allow))
    for name in ("tailer", "ops", "stranger"):
        setattr(k, name, write_security(tmp_path / f"{name}.toml", secret_key=str(kdir / f"private/{name}.key_secret"),
                                        server_key=str(kdir / "server.key")))
    return k


def live_endpoint(data: Path) -> str:
    return poll_until(lambda: json.loads((data / "stats.json").read_text()).get("publish"), what="publish endpoint")


def tailer(procs, tmp_path, name: str, config: str | None, ingest: str, line: bytes):
    log = tmp_path / f"{name}.log"
    log.write_bytes(line + b"\n")
    args = ["tailer", "-p", str(log), "-b", ingest, "--copies", "1", "--start-at", "beginning", "--format", "raw",
            "--state-dir", str(tmp_path / f"state-{name}"), "--positions-interval", "0.1"]
    p = procs(*args, *(["-c", config] if config else []), name=f"tailer-{name}")
    p.file, p.state = log, tmp_path / f"state-{name}"
    return p


def tailer_stats(p) -> dict:
    try:
        return json.loads((p.state / "stats.json").read_text())
    except (OSError, ValueError):
        return {}


def subscriber(procs, name: str, config: str | None, pub: str):
    args = ["subscribe", "--feed", pub, "--output", "raw", "--reorder-delay", "0"]
    return procs(*args, *(["-c", config] if config else []), name=f"sub-{name}")


def ls(config: str | None, query: str) -> subprocess.CompletedProcess:
    return helios("buckets", "ls", "--query", query, "--timeout", "1.5", *(["-c", config] if config else []))


def messages(data: Path) -> list[bytes]:
    return sorted(e.message for e in buck_events(data)[0])


def test_only_clients_with_an_allowed_key_push_subscribe_and_query(keys, procs, buck, tmp_path):
    p, ingest, data = buck("a", None, "-c", keys.buck)
    pub, query = live_endpoint(data), buck_query(data)
    ok_sub = subscriber(procs, "ops", keys.ops, pub)
    bad_subs = [subscriber(procs, "stranger", keys.stranger, pub), subscriber(procs, "plain", None, pub)]
    poll_until(lambda: "Connected to the live feed" in ok_sub.output(), timeout=15, what="the allowed subscriber")
    # Senders without an allowed key: one with a key the buck does not know, one with none.
    refused = tailer(procs, tmp_path, "stranger", keys.stranger, ingest, b"pushed by the stranger")
    plain = tailer(procs, tmp_path, "plain", None, ingest, b"pushed in plaintext")
    poll_until(lambda: "refused this process's CURVE key" in refused.output(), timeout=15,
               what="the stranger tailer to be told it is refused")
    for t in (refused, plain):  # each tried to send its line live, and no buck took it
        poll_until(lambda: tailer_stats(t).get("live_unsent", 0) >= 1, timeout=15, what=f"{t.args} to give up")
    allowed = tailer(procs, tmp_path, "allowed", keys.tailer, ingest, b"pushed by the allowed tailer")
    poll_until(lambda: b"pushed by the allowed tailer" in ok_sub.log_path.read_bytes(), timeout=15,
               what="the allowed subscriber to see the allowed line")

    assert messages(data) == [b"pushed by the allowed tailer"]
    good = ls(keys.ops, query)
    assert good.returncode == 0 and "default/" in good.stdout and "1 bucket(s)" in good.stdout, good
    for config in (keys.stranger, None):
        r = ls(config, query)
        assert r.returncode == 1 and "0 bucket(s)" in r.stdout and "did not answer" in r.stderr, r
    for s in bad_subs:
        s.stop()
        assert b"pushed by" not in s.log_path.read_bytes()
        assert "Connected to the live feed" not in s.output()
    stranger_key = (keys.dir / "stranger.key").read_text().split('public-key = "')[1][:40]
    assert "refused a client" in p.output() and stranger_key in p.output()
    assert allowed.alive() and p.alive()


def test_a_key_removed_from_the_allow_list_is_refused_after_sighup_even_when_it_reconnects(keys, procs, buck,
                                                                                           tmp_path):
    p, ingest, data = buck("a", None, "-c", keys.buck)
    t = tailer(procs, tmp_path, "allowed", keys.tailer, ingest, b"before the key was removed")
    poll_until(lambda: messages(data) == [b"before the key was removed"], timeout=15, what="the first line")

    (keys.allow / "tailer.key").unlink()
    p.p.send_signal(signal.SIGHUP)
    poll_until(lambda: "removed tailer.key" in p.output(), what="the buck to reload its allow-list")
    # The buck ended the tailer's connection; ZeroMQ reconnects, and is refused.
    poll_until(lambda: "refused this process's CURVE key" in t.output(), timeout=15, what="the tailer's refusal")
    unsent = tailer_stats(t).get("live_unsent", 0)
    with open(t.file, "ab") as f:
        f.write(b"after the key was removed\n")
    poll_until(lambda: tailer_stats(t).get("live_unsent", 0) > unsent, timeout=15, what="the tailer to give up")
    assert messages(data) == [b"before the key was removed"]
    # Everybody else reconnects to the rebound sockets as before.
    r = ls(keys.ops, buck_query(data))
    assert r.returncode == 0 and "1 bucket(s)" in r.stdout, r


class Tap:
    """A TCP relay between clients and a buck that keeps every byte it forwards."""

    def __init__(self, target: str) -> None:
        host, port = target.removeprefix("tcp://").rsplit(":", 1)
        self.target = (host, int(port))
        self.server = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"tcp://127.0.0.1:{self.server.getsockname()[1]}"
        self.seen = bytearray()
        self.lock = threading.Lock()
        self.sockets: list[socket.socket] = []
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                t = threading.Thread(target=self._pump, args=(a, b), daemon=True)
                self.threads.append(t)
                t.start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                with self.lock:
                    self.seen += data
                dst.sendall(data)
        except OSError:
            pass
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def bytes(self) -> bytes:
        with self.lock:
            return bytes(self.seen)

    def close(self) -> None:
        try:
            self.server.shutdown(socket.SHUT_RDWR)  # wakes the accept (a close alone would not)
        except OSError:
            pass
        self.server.close()
        with self.lock:
            for s in self.sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        for t in self.threads:
            t.join(5)
        for s in self.sockets:
            s.close()


def test_bytes_on_the_wire_never_contain_a_line_in_plaintext(keys, procs, buck, tmp_path):
    p, ingest, data = buck("a", None, "-c", keys.buck)
    taps = {name: Tap(ep) for name, ep in (("ingest", ingest), ("live", live_endpoint(data)),
                                           ("query", buck_query(data)))}
    try:
        sub = subscriber(procs, "ops", keys.ops, taps["live"].endpoint)
        poll_until(lambda: "Connected to the live feed" in sub.output(), timeout=15, what="the subscriber")
        secret = b"user=alice password=hunter2-and-a-marker-that-is-unmistakable"
        tailer(procs, tmp_path, "allowed", keys.tailer, taps["ingest"].endpoint, secret)
        poll_until(lambda: secret in sub.log_path.read_bytes(), timeout=15, what="the line, live")
        listing = helios("buckets", "ls", "--json", "-c", keys.ops, "--query", taps["query"].endpoint)
        bucket_id = json.loads(listing.stdout)["buckets"][0]["id"]
        got = helios("buckets", "get", bucket_id, "--ndjson", "-c", keys.ops, "--query", taps["query"].endpoint)
        assert got.returncode == 0 and "hunter2" in got.stdout, (listing, got)
        for name, tap in taps.items():
            seen = tap.bytes()
            # The line went through the tap (it reached the subscriber and `buckets get`), and
            # the tap saw the ZeroMQ streams (their greeting names the mechanism) ...
            assert b"CURVE" in seen, (name, len(seen))
            # ... and none of the line, nor a telling piece of it.
            for piece in (secret, b"hunter2", b"password", b"alice"):
                assert piece not in seen, (name, piece)
    finally:
        for tap in taps.values():
            tap.close()


def test_keygen_writes_a_readable_public_key_and_a_private_secret_key(tmp_path):
    r = helios("keygen", "web-1", "--dir", str(tmp_path / "k"))
    assert r.returncode == 0, r.stderr
    public, private = tmp_path / "k/web-1.key", tmp_path / "k/private"
    secret = private / "web-1.key_secret"
    assert stat.S_IMODE(public.stat().st_mode) == 0o644
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
    key = public.read_text().split('public-key = "')[1][:40]
    assert f'public-key = "{key}"' in secret.read_text() and "secret-key" not in public.read_text()
    again = helios("keygen", "web-1", "--dir", str(tmp_path / "k"))
    assert again.returncode == 1 and "never overwrites" in again.stderr
    assert public.read_text().count(key) == 1


def test_keygen_token_prints_a_token_once_and_the_hash_for_the_config():
    from helios import tokens

    r = helios("keygen", "--token", "prod")
    assert r.returncode == 0, r.stderr
    token = next(w for w in r.stdout.split() if w.startswith("hlt_"))
    assert f'"prod={tokens.hash_token(token)}"' in r.stdout


def test_a_service_refuses_to_start_with_a_secret_key_others_can_read_naming_the_file(keys, tmp_path):
    secret = keys.dir / "private/server.key_secret"
    os.chmod(secret, 0o640)
    r = helios("buck", "-c", keys.buck, "--data-dir", str(tmp_path / "data"), "--ingest", "tcp://127.0.0.1:1")
    assert r.returncode == 2 and str(secret) in r.stderr and "chmod 600" in r.stderr, r
    assert not (tmp_path / "data").exists()


def test_a_service_refuses_to_start_with_a_missing_or_malformed_key_naming_the_file(keys, tmp_path):
    missing = tmp_path / "nowhere.key_secret"
    cfg = write_security(tmp_path / "missing.toml", secret_key=str(missing), server_key=str(keys.dir / "server.key"))
    r = helios("buckets", "ls", "-c", cfg, "--query", "tcp://127.0.0.1:1")
    assert r.returncode == 2 and f"security.secret_key: {missing}: no such secret key file" in r.stderr, r
    bad = tmp_path / "bad.key"
    bad.write_text('curve\n    public-key = "not a key"\n')
    cfg = write_security(tmp_path / "bad.toml", secret_key=str(keys.dir / "private/ops.key_secret"), server_key=str(bad))
    r = helios("subscribe", "-c", cfg, "--feed", "tcp://127.0.0.1:1", "--duration", "0")
    assert r.returncode == 2 and f"security.server_key: {bad}" in r.stderr and "40 z85" in r.stderr, r
    # A buck without its keys set at all: every missing key named.
    cfg = write_security(tmp_path / "nokeys.toml", secret_key=str(keys.dir / "private/ops.key_secret"))
    r = helios("buck", "-c", cfg, "--data-dir", str(tmp_path / "data"))
    assert r.returncode == 2 and "security.server_secret_key: required for helios buck" in r.stderr, r
    assert "security.allow_dir: required for helios buck" in r.stderr


def test_the_client_library_takes_its_keys_from_the_security_table_of_its_config_file(keys, buck, recorders,
                                                                                       tmp_path):
    _, ingest, data = buck("a", None, "-c", keys.buck)
    configs = {}
    for who in ("ops", "stranger"):
        text = Path(getattr(keys, who)).read_text()
        configs[who] = tmp_path / f"client-{who}.toml"
        configs[who].write_text(text + f'\n[client]\nbucks = ["{ingest}"]\ncopies = 1\nretry_for = 3\n')
    allowed, refused = recorders(config=str(configs["ops"])), recorders(config=str(configs["stranger"]))
    refused.record(message="recorded by a stranger")
    allowed.record(message="recorded by ops")
    assert allowed.flush(10) and refused.flush(10)  # delivered, or logged as undeliverable
    poll_until(lambda: messages(data) == [b"recorded by ops"], timeout=10, what="the allowed event")
    assert refused.stats()["dropped"] == 1 and allowed.stats()["dropped"] == 0
