"""A buck keeps running and keeps ingesting whatever garbage reaches its ingest."""

import json
import os
import struct
import zlib

import msgpack
import zmq

from helios import codec
from helios.model import Event, random_id
from tests.helpers import buck_events, poll_until


def valid_frame(n, env="prod"):
    events = [Event(random_id(), 1_000 + i, 2_000, "h", "app", 6, "", None, b"msg %d" % i, None) for i in range(n)]
    return codec.encode_events(env, "sender", events)


def stats(data):
    try:
        return json.loads((data / "stats.json").read_text())
    except (OSError, ValueError):
        return None


def test_garbage_truncated_and_oversized_frames_do_not_stop_a_buck(buck):
    proc, ep, data = buck("a", None, "--max-frame-bytes", "65536")
    poll_until(lambda: stats(data), what="the buck to start")
    ctx = zmq.Context.instance()
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 1000)
    push.connect(ep)
    good = valid_frame(10)
    header = msgpack.packb(["prod", "h", 1, 0, 0, 1 << 40])
    bomb = struct.pack(">BBHI", 1, 1, len(header), zlib.crc32(header + b"x")) + header + b"x"
    hostile = [
        b"",
        b"\x00",
        os.urandom(100),
        good[:-7],                       # truncated
        good[:20],
        b"\x07" + good[1:],              # unknown version
        good[:30] + b"\xff" + good[31:],  # garbled
        bomb,                            # decompression bomb
        valid_frame(1, env="../../etc"),  # path traversal in the environment name
    ]
    for frame in hostile:
        push.send(frame)
    push.send_multipart([b"junk", good])  # one bad part, one good part
    # An oversized frame makes ZeroMQ drop that connection; use a socket of its own.
    big = ctx.socket(zmq.PUSH)
    big.setsockopt(zmq.LINGER, 1000)
    big.connect(ep)
    big.send(os.urandom(200_000))
    big.close()

    push.send(valid_frame(5))
    s = poll_until(lambda: (s := stats(data)) and s["events"] == 15 and s, what="the valid frames stored")
    assert proc.alive()
    assert sum(s["bad_frames"].values()) == len(hostile) + 1
    events, clean = buck_events(data)
    assert clean and len(events) == 15
    assert not (data / "buckets" / ".." / ".." / "etc").exists()
    push.close()
    assert proc.stop() == 0
