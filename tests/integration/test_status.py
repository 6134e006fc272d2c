"""``helios status`` against real bucks: both up with the sender that feeds
them, the porter's report shown, and a buck killed with -9 shown as down."""

import json
import signal
import subprocess
import sys
import time

import zmq

from helios import codec
from helios.model import Event, random_id
from helios.query.client import QueryClient
from tests.helpers import ROOT, buck_query, poll_until


def status(*addresses, extra=()):
    """``helios status`` of the bucks at these addresses (a buck's ingest
    endpoint is its address: the tests' bucks bind the "auto" ports)."""
    args = [sys.executable, "-m", "helios", "status", "--interval", "0.2", "--timeout", "1", *extra]
    for address in addresses:
        args += ["--buck", address]
    return subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=ROOT)


def push(ingest, host, n):
    now = time.time_ns()
    events = [Event(random_id(), now - 5 * 10**9, now, host, "app", 6, "", None, b"line %d" % i, None)
              for i in range(n)]
    sock = zmq.Context.instance().socket(zmq.PUSH)
    sock.connect(ingest)
    sock.send(codec.encode_events("prod", host, events))
    sock.close(linger=2000)


def test_status_shows_bucks_senders_and_the_porter_and_then_a_dead_buck(buck):
    pa, ia, da = buck("a")
    pb, ib, db = buck("b")
    qa, qb = buck_query(da), buck_query(db)
    push(ia, "web-1", 10)
    push(ib, "web-1", 10)
    with QueryClient(timeout=5) as qc:
        poll_until(lambda: all(s.get("events") == 10 for s in qc.stats([qa, qb]).values()),
                   what="both bucks to store the events")
        report = {"environments": {"prod": {"indexed": time.time_ns(), "archived": None, "pruned": None,
                                            "behind": "0 windows"}}, "problems": []}
        assert all(r is None for r in qc.report([qa, qb], "porter@host-p", report).values())

    r = status(ia, ib, extra=("-o", "json"))
    assert r.returncode == 0, r.stdout + r.stderr
    st = json.loads(r.stdout)
    assert [b["up"] for b in st["bucks"]] == [True, True]
    assert all(b["disk_total"] > 0 for b in st["bucks"])
    (sender,) = st["senders"]
    assert sender["sender"] == "prod/web-1" and sender["events"] == 20 and len(sender["bucks"]) == 2
    assert 4 <= sender["delay"] < 60  # the events were 5 s old when sent
    assert st["porters"][0]["source"] == "porter@host-p" and "prod" in st["porters"][0]["environments"]
    assert st["warnings"] == []

    text = status(ia, ib).stdout
    assert "prod/web-1" in text and "porter@host-p" in text and "No warnings." in text

    pb.stop(signal.SIGKILL)
    r = status(ia, ib)
    assert r.returncode == 1
    assert f"DOWN  {qb}" in r.stdout
    assert f"buck {qb} is DOWN" in r.stdout
    assert f"up    {qa}" in r.stdout
