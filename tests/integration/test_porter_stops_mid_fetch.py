"""A porter asked to stop while its fresh job (open windows) fetches from
bucks that no longer answer stops within its stop timeout: it does not go
on to the next buck's fetch (each waits the query timeout, 10 s; two of
them outlasted the 15 s a stop may take)."""

from __future__ import annotations

import signal
import threading

import zmq

from helios.query import protocol
from tests.helpers import buck_query, poll_until
from tests.integration.test_porter_open_windows import syslog
from tests.integration.test_web_mesh import append


class Swallower(threading.Thread):
    """A real ZeroMQ hop in front of a buck's query endpoint: passes every
    request on and its answer back, except fetches, which it keeps
    unanswered (a buck that died after the porter listed its windows)."""

    def __init__(self, target: str) -> None:
        super().__init__(daemon=True)
        ctx = zmq.Context.instance()
        self.front = ctx.socket(zmq.ROUTER)
        self.front.setsockopt(zmq.LINGER, 0)
        self.front.bind("tcp://127.0.0.1:*")
        self.endpoint = self.front.getsockopt_string(zmq.LAST_ENDPOINT)
        self.back = ctx.socket(zmq.DEALER)
        self.back.setsockopt(zmq.LINGER, 0)
        self.back.connect(target)
        self.fetches = threading.Event()
        self.stop = threading.Event()
        self.client = b""

    def run(self) -> None:
        poller = zmq.Poller()
        poller.register(self.front, zmq.POLLIN)
        poller.register(self.back, zmq.POLLIN)
        try:
            while not self.stop.is_set():
                ready = dict(poller.poll(100))
                if self.front in ready:
                    ident, *rest = self.front.recv_multipart()
                    if protocol.peek_id(rest[-1])[1] == "fetch":
                        self.fetches.set()
                        continue
                    self.client = ident
                    self.back.send_multipart(rest)
                if self.back in ready:
                    self.front.send_multipart([self.client, *self.back.recv_multipart()])
        finally:
            self.front.close()
            self.back.close()


def test_a_porter_stops_in_time_while_the_bucks_it_fetches_from_do_not_answer(tmp_path, procs, buck):
    bucks = [buck(n, None, "--window", "3600") for n in ("a", "b")]  # windows open throughout
    log = tmp_path / "app.log"
    log.write_bytes(b"")
    args = ["tailer", "--path", str(log), "--env", "prod", "--start-at", "beginning",
            "--state-dir", str(tmp_path / "tailer"), "--timezone", "UTC"]
    for _, ep, _ in bucks:
        args += ["--buck", ep]
    procs(*args)
    append(log, syslog(0, 20))
    hops = [Swallower(buck_query(data)) for _, _, data in bucks]
    for h in hops:
        h.start()
    try:
        porter = ["porter", "--index-dir", str(tmp_path / "index"), "--state-dir", str(tmp_path / "porter"),
                  "--archive-dir", str(tmp_path / "archive"), "--poll-interval", "0.5", "--grace", "0.5",
                  "--workers", "0", "--index-open-windows"]
        for h in hops:
            porter += ["--query", h.endpoint]
        p = procs(*porter, "run", name="porter")
        # The fresh job listed the open windows and waits on its first fetch: stop it now.
        poll_until(lambda: any(h.fetches.is_set() for h in hops), timeout=30, what="the porter's first fetch")
        assert p.stop(signal.SIGTERM) == 0   # within the 15 s stop timeout, else it fails as hung
        assert not p.problems(), p.problems()
    finally:
        for h in hops:
            h.stop.set()
            h.join(5)
