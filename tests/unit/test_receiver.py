"""Whole-message limits when reading a socket (helios.wire.sockets.Receiver),
on real ZeroMQ sockets: a message over a limit is refused whole, and the
next one is read from its first part."""

from __future__ import annotations

import pytest
import zmq

from helios.model import random_id
from helios.wire.sockets import Receiver


@pytest.fixture
def pair():
    ctx = zmq.Context.instance()
    pull = ctx.socket(zmq.PULL)
    pull.setsockopt(zmq.LINGER, 0)
    endpoint = f"inproc://receiver-{random_id().hex()}"
    pull.bind(endpoint)
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    push.connect(endpoint)
    yield push, pull
    push.close()
    pull.close()


def take(receiver: Receiver) -> list:
    out = []
    while True:
        try:
            out.append(receiver.recv())
        except zmq.Again:
            return out


def test_messages_within_the_limits_come_whole_and_those_over_them_are_refused_whole(pair):
    push, pull = pair
    r = Receiver(pull, "ingest", max_bytes=100, max_parts=3)
    push.send_multipart([b"a" * 50, b"b" * 50])             # exactly 100 bytes: fine
    push.send_multipart([b"a" * 50, b"b" * 51])             # one byte over
    push.send_multipart([b"x", b"y", b"z"])                 # exactly 3 parts: fine
    push.send_multipart([b"x", b"y", b"z", b"w"])           # one part over
    push.send_multipart([b"c" * 101])                       # one part, over
    push.send_multipart([b"q"] * 1000)                      # far over, the rest dropped uncopied
    push.send_multipart([b"last"])
    got = take(r)
    assert got == [[b"a" * 50, b"b" * 50], None, [b"x", b"y", b"z"], None, None, None, [b"last"]]
    assert r.refused == {"too large": 2, "too many parts": 2}
    assert r.stats()["dropped_bytes"] == 101 + 4 + 101 + 1000


def test_the_refusal_is_logged_once_a_second_with_how_many_more(pair, caplog):
    push, pull = pair
    r = Receiver(pull, "query", max_bytes=10, max_parts=2, owner="Buck t")
    for _ in range(5):
        push.send_multipart([b"0123456789", b"more"])
    with caplog.at_level("WARNING"):
        assert take(r) == [None] * 5
    lines = [rec.getMessage() for rec in caplog.records if "refused a message" in rec.getMessage()]
    assert lines == [("Buck t refused a message of 2 parts and 14 bytes on its query socket: too large "
                      "(at most 2 parts and 10 bytes in all).")]


def test_a_receiver_can_tell_who_sent_a_message(pair):
    push, pull = pair
    r = Receiver(pull, "live feed", max_bytes=100, max_parts=2, peer=True)
    push.send(b"hello")
    assert r.recv() == [b"hello"] and r.peer == "?"  # inproc: no address, no key
