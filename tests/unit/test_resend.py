"""Spool buckets are re-sent a slice at a time: every frame once, never more than a few messages in flight."""

import zmq

from helios.tail.resend import RESEND_HWM, Resender
from helios.tail.spool import Spool
from helios.wire.sockets import SocketFactory
from tests.helpers import poll_until

DAY0 = 1_700_006_400


def test_a_bucket_goes_to_one_buck_a_slice_at_a_time_with_every_frame_once(tmp_path):
    spool = Spool(tmp_path / "spool", 60, max_bytes=10 ** 9, max_age=86400.0, jitter=0.0, message_bytes=4000)
    frames = [bytes([i % 256]) * 1000 + b"%d" % i for i in range(200)]
    for f in frames:
        spool.append("prod", f, now=DAY0)
    spool.close()
    [(name, path, _)] = spool.buckets()
    ctx = zmq.Context.instance()
    pull = ctx.socket(zmq.PULL)
    pull.setsockopt(zmq.RCVHWM, 1)
    pull.bind("tcp://127.0.0.1:*")  # a port the OS picks
    ep = pull.getsockopt_string(zmq.LAST_ENDPOINT)
    r = Resender(SocketFactory(), [ep], spool)
    r.add(name.relpath(), path)
    # Nobody reads: the resender stops after what the two queues hold, it does not read the bucket ahead.
    poll_until(lambda: r.step() == [] and r.jobs[0].buck is not None, what="a first slice")
    for _ in range(20):
        r.step()
    assert r.busy()
    got, done = [], []

    def progress():
        while pull.poll(0):
            got.extend(pull.recv_multipart())
        done.extend(r.step())
        return done
    poll_until(progress, timeout=20, what="the whole bucket")
    while pull.poll(200):
        got.extend(pull.recv_multipart())
    assert got == frames
    assert RESEND_HWM <= 4
    r.close()
    pull.close(0)
