"""Each frame goes to N distinct bucks among the connected ones (real ZeroMQ sockets)."""

import zmq

from helios.wire.fanout import Fanout
from helios.wire.ports import free_endpoint
from helios.wire.sockets import SocketFactory
from tests.helpers import poll_until


def pulls(n):
    ctx = zmq.Context.instance()
    out = []
    for _ in range(n):
        s = ctx.socket(zmq.PULL)
        s.bind("tcp://127.0.0.1:*")  # a port the OS picks
        out.append((s.getsockopt_string(zmq.LAST_ENDPOINT), s))
    return out


def drain(sock):
    got = []
    while sock.poll(0):
        got.append(sock.recv())
    return got


def test_every_frame_reaches_two_distinct_bucks_of_three():
    servers = pulls(3)
    fan = Fanout(SocketFactory(), [ep for ep, _ in servers], copies=2)
    poll_until(lambda: fan.try_send(b"probe") == 2, what="connections")
    counts = {}
    for i in range(300):
        assert fan.send_until(b"frame %d" % i, timeout=5) == 2
    received = []
    poll_until(lambda: received.extend(f for _, s in servers for f in drain(s)) or
               sum(1 for f in received if f.startswith(b"frame")) == 600, what="all copies")
    for i in range(300):
        counts[i] = sum(1 for f in received if f == b"frame %d" % i)
    assert set(counts.values()) == {2}
    per_server = [n for n in fan.sent_to.values()]
    assert len(per_server) == 3 and min(per_server) > 50  # spread at random over all three
    fan.close(0)
    for _, s in servers:
        s.close(0)


def test_a_buck_that_is_down_is_skipped_and_one_copy_still_goes_out():
    [(ep, s)] = pulls(1)
    down = free_endpoint()
    fan = Fanout(SocketFactory(), [ep, down], copies=2)
    poll_until(lambda: fan.try_send(b"probe") == 1, what="the live buck")
    assert fan.send_until(b"x", timeout=5) == 1
    assert fan.counts["short_copies"] == 1
    fan.close(0)
    s.close(0)


def test_send_gives_up_at_its_timeout_when_no_buck_is_up():
    fan = Fanout(SocketFactory(), [free_endpoint()], copies=1)
    assert fan.send_until(b"x", timeout=0.2) == 0
    fan.close(0)


def test_a_mesh_that_starts_together_gets_both_copies_of_its_first_frame():
    ctx = zmq.Context.instance()
    ep_a, ep_b = free_endpoint(), free_endpoint()
    a = ctx.socket(zmq.PULL)
    a.bind(ep_a)
    fan = Fanout(SocketFactory(), [ep_a, ep_b], copies=2)
    b = ctx.socket(zmq.PULL)  # buck b binds only after the tailer started
    b.bind(ep_b)
    assert fan.send_until(b"first", timeout=5) == 2
    assert poll_until(lambda: a.poll(0) and b.poll(0), what="a copy at each buck")
    assert a.recv() == b.recv() == b"first"
    fan.close(0)
    a.close(0)
    b.close(0)


def test_a_dead_buck_costs_no_wait_once_it_is_known_dead():
    [(ep, s)] = pulls(1)
    fan = Fanout(SocketFactory(), [ep, free_endpoint()], copies=2)
    fan.last_ok = [0.0, 0.0]  # past the start grace: nothing is known alive
    poll_until(lambda: fan.try_send(b"probe") == 1, what="the live buck")
    # send waits only for alive bucks that are busy: the dead one is not among them.
    assert fan.alive(set()) == [0]
    assert fan.send(b"x", wait=5.0) == 1
    assert fan.counts["short_copies"] == 1
    fan.close(0)
    s.close(0)
