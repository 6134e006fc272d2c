"""The buck's live subscriptions (helios.wire.publisher): matched by the
topic's own prefixes, exactly as ZeroMQ's prefix filter would, and capped per
peer and in total."""

from __future__ import annotations

import random
import time

import pytest
import zmq

from helios import codec
from helios.model import Event, random_id
from helios.wire import live
from helios.wire.publisher import Prefixes, Publisher

ENVS = ["prod", "prodx", "stage"]
APPS = ["ssh", "sshd", "nginx", ""]
HOSTS = ["web-1", "web-10", "db"]


def topics() -> list[bytes]:
    return [live.topic(e, a, s, h) for e in ENVS for a in APPS for s in (None, 3, 6) for h in HOSTS]


def some_prefixes(rng: random.Random, n: int) -> set[bytes]:
    """Cuts of real topics anywhere, mid-field too, and a few that match nothing."""
    every = topics()
    out = set()
    for _ in range(n):
        t = rng.choice(every)
        out.add(t[:rng.randint(0, len(t))])
    out |= {b"nope", b"prod\0zzz", b"stage\0ssh\0" + b"x" * 300}
    return out


def test_a_topic_matches_exactly_when_some_prefix_starts_it():
    rng = random.Random(17)
    for _ in range(50):
        subs = some_prefixes(rng, rng.randint(1, 30))
        pre = Prefixes()
        for p in subs:
            pre.add(p, "peer")
        for t in topics():
            assert pre.matches(t) == any(t.startswith(p) for p in subs), (t, sorted(subs))
        # Removing keeps the lengths right.
        for p in rng.sample(sorted(subs), len(subs) // 2):
            assert pre.remove(p) == "peer"
            subs.discard(p)
        for t in topics():
            assert pre.matches(t) == any(t.startswith(p) for p in subs)


@pytest.fixture
def wired():
    """A Publisher on a real XPUB socket, and a SUB that takes everything it sends."""
    ctx = zmq.Context.instance()
    xpub = ctx.socket(zmq.XPUB)
    xpub.setsockopt(zmq.LINGER, 0)
    xpub.setsockopt(zmq.SNDHWM, 100_000)
    endpoint = f"inproc://publisher-{random_id().hex()}"
    xpub.bind(endpoint)
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.RCVHWM, 100_000)
    sub.connect(endpoint)
    sub.subscribe(b"")
    deadline = time.monotonic() + 5
    while not xpub.poll(10) and time.monotonic() < deadline:
        pass
    xpub.recv()  # the SUB's own subscription; the test feeds the publisher its own
    yield xpub, sub
    sub.close()
    xpub.close()


def sent_topics(sub) -> list[bytes]:
    out = []
    while sub.poll(50):
        out.append(sub.recv_multipart()[0])
    return out


def frame(env: str) -> tuple[codec.BatchHeader, bytes]:
    t = time.time_ns()
    evs = [Event(random_id(), t, t, h, a, s, "", None, b"m", None)
           for a in APPS for s in (None, 3, 6) for h in HOSTS]
    data = codec.encode_events(env, "web-1", evs)
    return codec.check_frame(data), data


def test_a_buck_publishes_what_the_prefixes_ask_for_as_zeromq_would_match_them(wired):
    xpub, sub = wired
    rng = random.Random(6)
    for _ in range(15):
        pub = Publisher(xpub, "buck-t")
        subs = some_prefixes(rng, rng.randint(0, 12))
        subs |= {live.WHOLE + p for p in some_prefixes(rng, 2) if rng.random() < 0.3}
        for p in subs:
            pub.on_upstream([b"\x01" + p], "peer")
        for env in ENVS:
            header, data = frame(env)
            pub.publish(header, data)
            got = sent_topics(sub)
            plain = [t for t in topics() if t.startswith(env.encode() + b"\0")]
            want = sorted(t for t in plain if any(t.startswith(p) for p in subs if p[:1] != live.WHOLE))
            whole = live.whole_topic(env)
            if any(whole.startswith(p) for p in subs if p[:1] == live.WHOLE):
                want = sorted(want + [whole])
            assert sorted(got) == want, (env, sorted(subs))


def test_subscriptions_over_a_peers_limit_are_ignored_and_counted(wired):
    xpub, _ = wired
    pub = Publisher(xpub, "buck-t", max_subscriptions=100, max_per_peer=3)
    for i in range(10):
        pub.on_upstream([b"\x01prod\0app%d\0" % i], "mallory")
    pub.on_upstream([b"\x01prod\0sshd\0"], "alice")
    pub.on_upstream([b"\x01prod\0app0\0"], "alice")  # held already: nothing charged
    s = pub.stats()
    assert s["subscriptions"] == 4 and s["subscriptions_refused"] == 7 and s["subscribing_peers"] == 2
    # The last subscriber of a prefix leaving frees its owner's room.
    pub.on_upstream([b"\x00prod\0app0\0"], None)
    pub.on_upstream([b"\x01prod\0app9\0"], "mallory")
    assert pub.stats()["subscriptions"] == 4 and pub.per_peer["mallory"] == 3
    # An unsubscription of one that was ignored changes nothing.
    pub.on_upstream([b"\x00prod\0app5\0"], None)
    assert pub.stats()["subscriptions"] == 4
    # A prefix longer than any topic is refused, whoever asks.
    pub.on_upstream([b"\x01prod\0" + b"a" * 5000], "dave")
    assert pub.stats()["subscriptions"] == 4 and pub.stats()["subscriptions_refused"] == 8


def test_subscriptions_over_the_total_limit_are_ignored_whoever_asks(wired):
    xpub, sub = wired
    pub = Publisher(xpub, "buck-t", max_subscriptions=5, max_per_peer=100)
    for i in range(5):
        pub.on_upstream([b"\x01prod\0app%d\0" % i], f"peer{i}")
    pub.on_upstream([b"\x01" + live.whole_topic("prod")], "carol")
    assert pub.stats()["subscriptions"] == 5 and pub.stats()["subscriptions_refused"] == 1
    header, data = frame("prod")
    pub.publish(header, data)
    assert live.whole_topic("prod") not in sent_topics(sub)
