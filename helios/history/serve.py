"""``helios history serve``: the builder of history indexes.

It polls the request store (``[history] dir``) every ``poll_interval``:
claims queued requests (up to ``builds`` at once, each on a thread of its
own), renews the leases of its builds, and deletes the indexes of ready
requests whose expiry has come. The web (archie) and the CLI only write
requests to the store; this process is the only one that reads the archive
and the bucks for history, so it is the one that needs their settings
(the ``[porter]`` section: archive, index, bucks). Several serve processes
may share one store: each request is claimed by one, and one that dies
leaves its builds to the others once their leases run out.

SIGTERM stops the builds in progress after the window at hand and puts
their requests back in the queue, for the next start (or another builder).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

from helios.errors import HeliosError
from helios.history import places
from helios.history.builder import Counts, Stopped, fill
from helios.history.requests import Request
from helios.history.sources import plan
from helios.timespec import iso_s

__all__ = ["HistoryServer", "build_request"]

log = logging.getLogger(__name__)

NS = 1_000_000_000
REPORT_EVERY = 0.5       # seconds between progress writes (the last window is always written)


def _when(ns: int) -> str:
    return iso_s(ns // NS)


def open_sources(cfg):
    """(archive, query client, close) of the porter's settings."""
    def make():
        from helios.query.client import QueryClient

        archive = places.open_archive(cfg)
        qc = QueryClient(timeout=cfg.porter.timeout)
        return archive, qc, qc.close
    return make


def build_request(cfg, store, r: Request, owner: str, stop: threading.Event) -> str:
    """Build one claimed request; returns its final state ("ready",
    "failed", "stopped", "dropped"). Never raises for a failed build: the
    request says why."""
    h = cfg.history
    index = None
    t0 = time.monotonic()
    try:
        archive, qc, close = open_sources(cfg)()
        try:
            windows, warnings = plan(r.environment, r.start, r.end, archive=archive, qc=qc,
                                     bucks=list(cfg.porter.bucks), margin=h.margin,
                                     archived_before=time.time() - cfg.porter.archive_age)
        finally:
            close()
        options = {"workers": h.load_workers} if r.index_kind == "sqlite" else {}
        index = places.history_index(cfg, r, **options)
        # From an empty index: what an earlier attempt left is not counted as
        # loaded by this one (and a half-built index is never shown as built).
        index.drop()
        counts = Counts(warnings=list(warnings))
        last = [0.0]

        def report(c: Counts) -> bool:
            now = time.monotonic()
            if now - last[0] < REPORT_EVERY and c.windows_done < c.windows_total:
                return not stop.is_set()
            last[0] = now
            return store.progress(r.id, owner, h.lease, **c.progress(), warnings=c.warnings[-50:]) and not stop.is_set()

        if not store.progress(r.id, owner, h.lease, windows_total=len(windows),
                              bytes_total=sum(w.size for w in windows), warnings=counts.warnings):
            raise Stopped()
        fill(index, r.environment, r.start, r.end, windows, open_sources=open_sources(cfg), report=report,
             counts=counts, stop=stop)
        if not (store.progress(r.id, owner, h.lease, **counts.progress(), warnings=counts.warnings[-50:])
                and store.finish(r.id, owner, h.expiry)):
            raise Stopped()
        log.info("History request %s is ready: %d event(s) of %s from %s to %s in %s, from %d window(s) "
                 "(%.1f MB) in %.1f s.", r.id, counts.events_loaded, r.environment, _when(r.start), _when(r.end),
                 r.index_name, counts.windows_done, counts.bytes_read / 1e6, time.monotonic() - t0)
        return "ready"
    except Stopped:
        current = store.get(r.id)
        if current.state == "expired":
            if index is not None:   # dropped while we loaded: what we loaded after the drop goes too
                index.drop()
            log.info("History request %s was dropped during its build; the build stopped.", r.id)
            return "dropped"
        if store.release(r.id, owner):
            log.info("History request %s goes back to the queue: this builder is stopping.", r.id)
        return "stopped"
    except HeliosError as exc:
        reason = str(exc)
    except Exception as exc:  # a bug, or a library error not translated: the request must still say
        log.exception("History request %s failed unexpectedly.", r.id)
        reason = f"{type(exc).__name__}: {exc}"
    finally:
        if index is not None:
            index.close()
    store.fail(r.id, owner, reason)
    log.error("History request %s (%s from %s to %s) failed: %s. `helios history retry %s` tries again.",
              r.id, r.environment, _when(r.start), _when(r.end), reason, r.id)
    return "failed"


class HistoryServer:
    def __init__(self, cfg) -> None:
        self.cfg = cfg
        self.store = places.store(cfg)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        self.stopping = threading.Event()
        self.builds: dict[str, tuple[threading.Thread, threading.Event]] = {}

    def stop(self) -> None:
        """Stop the builds after their window at hand; safe from a signal handler."""
        self.stopping.set()

    def run(self) -> None:
        h = self.cfg.history
        log.info("History builder %s serves the requests in %s: %d build(s) at once, into %s indexes, from the "
                 "%s archive and %d buck(s).", self.owner, self.store.path, h.builds, self.cfg.porter.index,
                 places.describe_archive(self.cfg), len(self.cfg.porter.bucks))
        try:
            while not self.stopping.is_set():
                self.step()
                self.stopping.wait(h.poll_interval)
        finally:
            for thread, stop in self.builds.values():
                stop.set()
            for thread, _ in self.builds.values():
                thread.join(60)
            self.store.close()
            log.info("History builder stopped.")

    def step(self) -> None:
        """One look at the store: finished builds, leases, expiries, new requests."""
        h = self.cfg.history
        for rid, (thread, _) in list(self.builds.items()):
            if not thread.is_alive():
                del self.builds[rid]
            else:
                self.store.progress(rid, self.owner, h.lease)   # renew: a long window must not lose its lease
        self.expire_due()
        while len(self.builds) < h.builds and not self.stopping.is_set():
            r = self.store.claim(self.owner, h.lease)
            if r is None:
                break
            log.info("Building history request %s: %s from %s to %s into %s (attempt %d).", r.id, r.environment,
                     _when(r.start), _when(r.end), r.index_name, r.attempts)
            stop = threading.Event()
            thread = threading.Thread(target=self._build, args=(r, stop), name=f"history-{r.id}", daemon=True)
            self.builds[r.id] = (thread, stop)
            thread.start()

    def _build(self, r: Request, stop: threading.Event) -> None:
        # Our own store connection: a build thread must not wait on the main
        # thread's transactions, nor they on its.
        store = places.store(self.cfg)
        try:
            build_request(self.cfg, store, r, self.owner, _Either(stop, self.stopping))
        finally:
            store.close()

    def expire_due(self) -> None:
        for r in self.store.due():
            try:
                gone = self.store.expire(r.id, f"expired after {self.cfg.history.expiry:.0f} s", only_if_due=True)
                if gone is None:
                    continue
                index = places.history_index(self.cfg, gone)
                try:
                    index.drop()
                finally:
                    index.close()
                log.info("History request %s expired: its index %s was deleted.", r.id, r.index_name)
            except HeliosError as exc:
                log.warning("Could not delete the index of expired history request %s: %s.", r.id, exc)


class _Either:
    """Set when either event is (a build's own stop, or the server's)."""

    def __init__(self, a: threading.Event, b: threading.Event) -> None:
        self.a, self.b = a, b

    def is_set(self) -> bool:
        return self.a.is_set() or self.b.is_set()

    def set(self) -> None:
        self.a.set()
