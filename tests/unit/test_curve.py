"""CURVE key files, the [security] loader, and the socket factory's refusal
of plaintext when CURVE is on (helios.wire.curve, helios.wire.sockets)."""

import os
import stat

import pytest
import zmq

from helios import config
from helios.errors import ConfigError, ServiceError
from helios.wire import curve
from helios.wire.ports import free_endpoint
from helios.wire.sockets import SocketFactory


def security(**keys):
    return config.Security(curve=True, **keys)


def test_a_written_key_pair_reads_back_and_belongs_together(tmp_path):
    public_path, secret_path = curve.write_keypair(tmp_path, "tailer-1")
    pair = curve.read_secret(secret_path)
    assert curve.read_public(public_path) == pair.public == zmq.curve_public(pair.secret)
    assert stat.S_IMODE(secret_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(secret_path.parent.stat().st_mode) == 0o700
    assert pair.secret.decode() not in repr(pair)  # a traceback never shows it


def test_a_public_key_may_be_one_line_of_z85(tmp_path):
    public, _ = zmq.curve_keypair()
    (tmp_path / "x.key").write_bytes(public + b"\n")
    assert curve.read_public(tmp_path / "x.key") == public


@pytest.mark.parametrize("text, why", [
    ("", "no secret key in it"),
    ('public-key = "{pub}"\n', "no secret key in it"),
    ('secret-key = "short"\n', "not 40 z85 characters"),
    ('public-key = "{other}"\nsecret-key = "{sec}"\n', "not the one of its secret key"),
])
def test_a_malformed_secret_key_file_is_refused_naming_it(tmp_path, text, why):
    pub, sec = zmq.curve_keypair()
    other, _ = zmq.curve_keypair()
    path = tmp_path / "k.key_secret"
    path.write_text(text.format(pub=pub.decode(), sec=sec.decode(), other=other.decode()))
    os.chmod(path, 0o600)
    with pytest.raises(ServiceError, match=why) as err:
        curve.read_secret(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620])
def test_a_secret_key_file_open_to_group_or_others_is_refused(tmp_path, mode):
    _, secret_path = curve.write_keypair(tmp_path, "k")
    os.chmod(secret_path, mode)
    with pytest.raises(ServiceError, match=f"mode {mode:04o}.*chmod 600 {secret_path}"):
        curve.read_secret(secret_path)


def test_load_lists_every_key_a_role_needs_and_every_bad_file(tmp_path):
    with pytest.raises(ConfigError) as err:
        curve.load(security(secret_key=str(tmp_path / "missing")), serve=True, connect=True, what="helios relay")
    problems = "\n".join(err.value.problems)
    assert "security.server_secret_key: required for helios relay" in problems
    assert "security.allow_dir: required for helios relay" in problems
    assert "security.server_key: required for helios relay" in problems
    assert f"security.secret_key: {tmp_path / 'missing'}: no such secret key file" in problems


def test_load_is_none_when_curve_is_off_whatever_the_keys():
    assert curve.load(config.Security(secret_key="/nowhere")) is None


def test_the_config_section_wants_a_key_when_curve_is_on(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[security]\ncurve = true\nserver_secret_key = "x"\n')
    with pytest.raises(ConfigError) as err:
        config.load(path)
    assert any(p.startswith("security.allow_dir: required with server_secret_key") for p in err.value.problems)


def test_the_allow_dir_reads_every_key_file_and_names_each_bad_one(tmp_path):
    pub, _ = curve.write_keypair(tmp_path / "keys", "a")
    allow = tmp_path / "allow"
    allow.mkdir()
    (allow / "a.key").write_bytes(pub.read_bytes())
    (allow / "broken.key").write_text("nothing here\n")
    (allow / "README").write_text("not a key file: ignored\n")
    allowed, problems = curve.read_allow_dir(allow)
    assert [r.name for r in allowed.values()] == ["a.key"]
    assert len(problems) == 1 and str(allow / "broken.key") in problems[0]


def test_with_curve_on_the_factory_refuses_plaintext_sockets_but_keeps_inproc_plain():
    factory = SocketFactory(zmq.Context(), curve=curve.Curve())
    try:
        with pytest.raises(ServiceError, match="will not connect to .* in plaintext.*secret_key"):
            factory.make("sender", free_endpoint())
        with pytest.raises(ServiceError, match="will not bind .* in plaintext.*server_secret_key"):
            factory.make("ingest", free_endpoint())
        factory.make("handoff", "inproc://plain-pipe").close(linger=0)
    finally:
        factory.context.term()


def test_a_curve_client_reaches_a_curve_server_only_with_an_allowed_key(tmp_path):
    server_pub, server_secret = curve.write_keypair(tmp_path, "server")
    ok_pub, ok_secret = curve.write_keypair(tmp_path, "ok")
    _, bad_secret = curve.write_keypair(tmp_path, "bad")
    allow = tmp_path / "allow"
    allow.mkdir()
    (allow / "ok.key").write_bytes(ok_pub.read_bytes())
    ctx = zmq.Context()
    server = SocketFactory(ctx, curve=curve.Curve(server=curve.read_secret(server_secret), allow_dir=str(allow)))
    pull = server.make("ingest", "tcp://127.0.0.1:*")
    ep = pull.getsockopt_string(zmq.LAST_ENDPOINT)
    clients = []
    try:
        pushes = {}
        for name, secret in (("bad", bad_secret), ("ok", ok_secret)):
            c = SocketFactory(ctx, curve=curve.Curve(own=curve.read_secret(secret),
                                                     server_public=curve.read_public(server_pub)))
            pushes[name] = c.make("sender", ep, linger_ms=0)
            clients.append(pushes[name])
        # A sender is writable once its handshake completed (ZMQ_IMMEDIATE): only the allowed one.
        assert pushes["ok"].poll(5000, zmq.POLLOUT)
        pushes["ok"].send(b"from ok")
        assert pull.poll(5000) and pull.recv() == b"from ok"
        assert not pushes["bad"].poll(300, zmq.POLLOUT)
        zap = curve.zap_handler(ctx, str(allow))
        assert zap.counts == {"allowed": 1, "refused": 1, "refused_role": 0}
    finally:
        for s in clients + [pull]:
            s.close(linger=0)
        curve.zap_handler(ctx, str(allow)).close()
        ctx.term()
