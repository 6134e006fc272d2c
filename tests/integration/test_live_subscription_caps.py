"""Many live subscriptions, with real processes (issue 17, attack 6): one
peer's 100 sockets of prefixes do not slow storing, are capped per peer and
in total, and the other peers' subscriptions still work."""

from __future__ import annotations

import json
import time

import zmq

from helios import codec
from helios.model import Event, random_id
from helios.wire import live
from tests.helpers import poll_until


def stats(data) -> dict:
    try:
        return json.loads((data / "stats.json").read_text())
    except (OSError, ValueError):
        return {}


def config(tmp_path, **buck) -> str:
    path = tmp_path / "buck.toml"
    path.write_text("[buck]\n" + "".join(f"{k} = {v!r}\n" for k, v in buck.items()))
    return str(path)


def subscriber(endpoint: str, prefixes, source: str | None = None) -> zmq.Socket:
    """A SUB on the buck's live feed, from the loopback address ``source`` when given."""
    sock = zmq.Context.instance().socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVHWM, 100_000)
    host_port = endpoint.removeprefix("tcp://")
    sock.connect(f"tcp://{source}:0;{host_port}" if source else endpoint)
    for p in prefixes:
        sock.subscribe(p)
    return sock


def frames(n: int):
    t = time.time_ns()
    for i in range(n):
        yield codec.encode_events("prod", "web-1", [Event(random_id(), t + i, t + i, "web-1", "sshd", 6, "", None,
                                                          b"line %d" % i, None)])


def received(sock, want: int, timeout: float = 60.0) -> int:
    got = 0
    deadline = time.monotonic() + timeout
    while got < want and time.monotonic() < deadline:
        if sock.poll(100):
            got += len(live.read(sock.recv_multipart()))
    return got


def test_one_peer_with_100_sockets_of_prefixes_is_capped_and_storing_keeps_up(buck, tmp_path):
    proc, ep, data = buck("a", None, "-c", config(tmp_path, live_max_subscriptions_per_peer=1000))
    pub = stats(data)["publish"]
    # The attacker: 100 sockets of 100 prefixes each, all different, all of the environment that is
    # sent to (prefixes that end mid-field: the worst case for a filter that scans them).
    attack = [subscriber(pub, [b"prod\0ss%d-%d" % (s, i) for i in range(100)]) for s in range(100)]
    poll_until(lambda: stats(data)["live"]["subscriptions_refused"] == 9000, timeout=60,
               what="the attacker's 10,000 subscriptions seen")
    # Another peer (another loopback address) still gets its subscription.
    honest = subscriber(pub, [live.prefix("prod", "sshd")], source="127.0.0.2")
    poll_until(lambda: stats(data)["live"]["subscriptions"] == 1001, what="the honest subscription")
    assert stats(data)["live"]["subscribing_peers"] == 2
    push = zmq.Context.instance().socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 5000)
    push.connect(ep)
    for f in frames(1000):
        push.send(f)
    # The buck keeps up: every frame stored, and every event reaches the honest subscriber.
    poll_until(lambda: stats(data)["events"] == 1000, timeout=60, what="1,000 frames stored")
    assert received(honest, 1000) == 1000
    # Refusals are logged once per interval, not once each.
    refusals = proc.output().count("ignored a live subscription")
    assert 1 <= refusals <= 3, proc.output()[-3000:]
    for s in (*attack, honest):
        s.close()
    push.close()


def test_with_the_caps_raised_100_000_prefixes_are_all_taken_and_storing_keeps_up(buck, tmp_path):
    _, ep, data = buck("a", None, "-c", config(tmp_path, live_max_subscriptions=200_000,
                                                 live_max_subscriptions_per_peer=200_000))
    pub = stats(data)["publish"]
    # The attack of issue 17 as it was: 100 sockets of 1,000 prefixes, all taken this time.
    many = [subscriber(pub, [b"prod\0ss%d-%d" % (s, i) for i in range(1000)]) for s in range(100)]
    honest = subscriber(pub, [live.prefix("prod", "sshd")], source="127.0.0.2")
    poll_until(lambda: stats(data)["live"]["subscriptions"] == 100_001, timeout=60, what="100,001 subscriptions")
    push = zmq.Context.instance().socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 5000)
    push.connect(ep)
    for f in frames(1000):
        push.send(f)
    # Each frame is decoded and its topic looked up among 100,001 prefixes: the buck keeps up.
    poll_until(lambda: stats(data)["events"] == 1000, timeout=60, what="1,000 frames stored")
    assert received(honest, 1000) == 1000
    assert stats(data)["live"]["frames_decoded"] == 1000 and stats(data)["live"]["subscriptions_refused"] == 0
    for s in (*many, honest, push):
        s.close()


def test_subscriptions_beyond_the_buck_total_are_ignored_until_others_leave(buck, tmp_path):
    _, ep, data = buck("a", None, "-c", config(tmp_path, live_max_subscriptions=50))
    pub = stats(data)["publish"]
    first = subscriber(pub, [b"prod\0app%d\0" % i for i in range(50)])
    poll_until(lambda: stats(data)["live"]["subscriptions"] == 50, what="50 subscriptions")
    late = subscriber(pub, [live.prefix("prod", "sshd")], source="127.0.0.2")
    poll_until(lambda: stats(data)["live"]["subscriptions_refused"] == 1, what="the 51st refused")
    push = zmq.Context.instance().socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 5000)
    push.connect(ep)
    push.send(next(frames(1)))
    poll_until(lambda: stats(data)["events"] == 1, what="the frame stored")
    assert stats(data)["live"]["messages"] == 0  # nothing published for the refused one
    assert not late.poll(300)
    # The first subscriber leaves: its prefixes are freed, and a new subscription is taken.
    first.close()
    poll_until(lambda: stats(data)["live"]["subscriptions"] == 0, what="the prefixes freed")
    late.close()
    again = subscriber(pub, [live.prefix("prod", "sshd")], source="127.0.0.2")
    poll_until(lambda: stats(data)["live"]["subscriptions"] == 1, what="the subscription taken")
    push.send(next(frames(1)))
    assert received(again, 1, timeout=10) == 1
    again.close()
    push.close()


def test_with_curve_a_peer_is_its_key_whatever_the_number_of_its_sockets(buck, tmp_path):
    import subprocess
    import sys

    from tests.helpers import ROOT

    kdir, allow = tmp_path / "keys", tmp_path / "allow"
    for name in ("server", "mallory", "reader"):
        # Both subscribers are readers of every environment (only those get onto the live
        # feed); "reader" also pushes the frames it then reads.
        role = {"server": [], "mallory": ["--role", "reader"], "reader": ["--role", "reader", "--role", "sender"]}[name]
        r = subprocess.run([sys.executable, "-m", "helios", "keygen", name, "--dir", str(kdir), *role],
                           capture_output=True, text=True, cwd=ROOT, timeout=30, check=False)
        assert r.returncode == 0, r.stderr
    allow.mkdir()
    for name in ("mallory", "reader"):
        (allow / f"{name}.key").write_bytes((kdir / f"{name}.key").read_bytes())
    cfg = tmp_path / "buck.toml"
    cfg.write_text(f'[buck]\nlive_max_subscriptions_per_peer = 300\n[security]\ncurve = true\n'
                   f'server_secret_key = "{kdir}/private/server.key_secret"\nallow_dir = "{allow}"\n')
    proc, ep, data = buck("a", None, "-c", str(cfg))
    pub = stats(data)["publish"]

    def key(path, field):
        return path.read_text().split(f'{field} = "')[1][:40].encode()

    def curve_subscriber(name: str, prefixes) -> zmq.Socket:
        sock = zmq.Context.instance().socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        secret = kdir / "private" / f"{name}.key_secret"
        sock.curve_serverkey = key(kdir / "server.key", "public-key")
        sock.curve_publickey, sock.curve_secretkey = key(secret, "public-key"), key(secret, "secret-key")
        for p in prefixes:
            sock.subscribe(p)
        sock.connect(pub)
        return sock

    # One key, 20 sockets of 50 prefixes: one peer, held to its 300.
    attack = [curve_subscriber("mallory", [b"prod\0x%d-%d\0" % (s, i) for i in range(50)]) for s in range(20)]
    poll_until(lambda: stats(data)["live"]["subscriptions_refused"] == 700, timeout=30,
               what="mallory's 1,000 subscriptions seen")
    reader = curve_subscriber("reader", [live.prefix("prod", "sshd")])  # same address, another key
    poll_until(lambda: stats(data)["live"]["subscriptions"] == 301, timeout=15, what="the reader's subscription")
    assert stats(data)["live"]["subscribing_peers"] == 2
    top = stats(data)["live"]["top_subscribing_peers"]  # by the key's name in the allow-list
    assert sorted(top.values()) == [1, 300] and "mallory" in max(top, key=top.get)
    assert "ignored a live subscription from mallory" in proc.output()
    push = zmq.Context.instance().socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 5000)
    push.curve_serverkey = key(kdir / "server.key", "public-key")
    secret = kdir / "private" / "reader.key_secret"
    push.curve_publickey, push.curve_secretkey = key(secret, "public-key"), key(secret, "secret-key")
    push.connect(ep)
    for f in frames(10):
        push.send(f)
    assert received(reader, 10, timeout=20) == 10
    for s in (*attack, reader, push):
        s.close()
