"""The buck: takes batch frames on PULL and appends them to bucket files.

A buck stores a batch without decoding it: ``codec.check_frame`` verifies the
version, header and checksum, and the frame is appended exactly as it
arrived. A message may carry several frames (one per part); each part is
checked and stored on its own, so one bad part costs only itself.

Nothing a sender does can stop a buck: every bad frame is counted by reason
and logged (at most once a second per reason, with how many were like it),
and the loop goes on. SIGTERM (``stop``) finishes the messages at hand,
fsyncs and closes the bucket files, writes the final stats, and returns.

Stats are written to ``DATA_DIR/stats.json`` every ``stats_interval``
seconds (atomically), for ``helios demo`` and the operator tools.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Callable

import zmq

from helios import codec
from helios.errors import FrameError, RecordError, ServiceError
from helios.store import layout
from helios.store.atomic import write_atomic
from helios.store.durable import make_dirs
from helios.store.buckets import BucketFiles
from helios.store.dirlock import lock_dir
from helios.query.server import DRAIN as QUERY_DRAIN
from helios.query.server import QueryServer
from helios.buck.diskfull import DiskFull, is_full
from helios.wire.publisher import Publisher
from helios.wire.rights import NOBODY, Rights
from helios.wire.sockets import QUERY_MAX_PARTS, UPSTREAM_MAX_BYTES, UPSTREAM_MAX_PARTS, Receiver, SocketFactory

log = logging.getLogger(__name__)

# Senders remembered for the stats (environment/host pairs).
MAX_SENDERS = 10_000
# Input kinds counted apart (what frames name beyond them is counted as "other").
MAX_INPUTS = 64


# Messages taken per wake-up before housekeeping gets a turn.
DRAIN = 256
# Subscriptions (and drop reports) taken per wake-up from the live feed's socket.
UPSTREAM_DRAIN = 64


def auto_publish(ingest: str) -> str:
    host, _, port = ingest.rpartition(":")
    if ingest.startswith("tcp://") and port == "*":
        return f"{host}:*"  # the OS picks the ingest port, and another one for this
    if ingest.startswith("tcp://") and port.isdigit():
        if int(port) >= 65535:
            raise ServiceError(f"publish = \"auto\" takes the ingest port + 1, and {ingest} has none above it; "
                               "set [buck] publish")
        return f"{host}:{int(port) + 1}"
    return ingest + ".pub"


def auto_query(ingest: str) -> str:
    """[buck] query = "auto": the ingest port + 2 (the live feed takes + 1)."""
    host, _, port = ingest.rpartition(":")
    if ingest.startswith("tcp://") and port == "*":
        return f"{host}:*"
    if ingest.startswith("tcp://") and port.isdigit():
        if int(port) >= 65534:
            raise ServiceError(f"query = \"auto\" takes the ingest port + 2, and {ingest} has none there; "
                               "set [buck] query")
        return f"{host}:{int(port) + 2}"
    return ingest + ".query"


class Buck:
    def __init__(self, cfg, factory: SocketFactory | None = None) -> None:
        self.cfg = cfg
        self.name = cfg.name or f"buck-{cfg.ingest.rsplit(':', 1)[-1]}"
        self.data_dir = Path(cfg.data_dir)
        try:
            make_dirs(self.data_dir / "buckets")  # 0750 whatever the umask
        except OSError as exc:
            raise ServiceError(f"cannot use data directory {self.data_dir}: {exc}") from None
        self.buckets = BucketFiles(self.data_dir / "buckets", cfg.window, fsync=cfg.fsync)
        self.factory = factory or SocketFactory()
        self.stopping = threading.Event()
        self.reload_asked = threading.Event()  # SIGHUP: re-read the CURVE allow-list
        self.counts: Counter[str] = Counter()
        self.bad: Counter[str] = Counter()
        self._bad_logged: dict[str, tuple[float, int]] = {}
        self.started = time.time()
        self.senders: dict[str, list] = {}
        # Per input kind a frame's header names (codec: file, journal, syslog/tcp, ...):
        # [events, bytes, frames refused, frames not written]; unmarked frames are not in it.
        self.inputs: dict[str, list[int]] = {}
        self._stored, self._stored_at, self._stored_counted = 0, -1e9, 0
        self.publisher: Publisher | None = None
        self.http = None  # an HttpIngest when [buck] http is set
        self.query: QueryServer | None = None  # bucket queries, when [buck] query is not ""
        self.metrics = None  # a helios.metrics.Endpoint when [buck] metrics is set
        self.receivers: dict[zmq.Socket, Receiver] = {}  # whole-message limits per socket (run)
        # A full data directory (helios.buck.diskfull): frames read but not written wait in
        # ``held``, and the ingest socket is not read until they are written.
        self.disk = DiskFull(self.name, str(self.data_dir), cfg.full_retry, cfg.full_log_interval)
        self.held: list[tuple[codec.BatchHeader, bytes]] = []
        self._paused = False  # the ingest socket is out of the poller while frames are held
        # With CURVE: the rights of the key a message came with (helios.wire.rights), by its User-Id.
        self.rights_of = self.factory.rights_lookup()
        self._bound: dict[str, str] = {}  # ingest, publish, query: where a port "*" was bound

    @property
    def publish_endpoint(self) -> str:
        """The live feed's endpoint: as configured, or "auto": the ingest port + 1."""
        return auto_publish(self.cfg.ingest) if self.cfg.publish == "auto" else self.cfg.publish

    @property
    def query_endpoint(self) -> str:
        """The bucket query endpoint: as configured, or "auto": the ingest port + 2."""
        return auto_query(self.cfg.ingest) if self.cfg.query == "auto" else self.cfg.query

    def bound(self, what: str, configured: str) -> str:
        """The endpoint ``what`` (ingest, publish, query) is bound to: as
        configured, but with the port the OS picked for a port ``*``."""
        return self._bound.get(what, configured)

    def _note_bound(self, what: str, configured: str, sock: zmq.Socket) -> None:
        if configured.endswith(":*"):
            self._bound[what] = sock.getsockopt_string(zmq.LAST_ENDPOINT)

    def stop(self) -> None:
        """Ask the loop to finish; safe from a signal handler."""
        self.stopping.set()

    def reload(self) -> None:
        """SIGHUP: re-read the CURVE allow-list at the loop's next turn (the
        loop owns the sockets, which are rebound if a key was removed); safe
        from a signal handler. Without CURVE there is nothing to reload."""
        self.reload_asked.set()

    def run(self) -> None:
        # One buck per data directory: two would append to the same bucket files.
        lock = lock_dir(self.data_dir, "buck", flag="--data-dir", what="data directory")
        try:
            self._run()
        finally:
            lock.close()

    def _run(self) -> None:
        if self.cfg.metrics:
            from helios import metrics  # only when used; read at scrape time, never in the loop

            self.metrics = metrics.Endpoint.start("buck", self.name, self.cfg.metrics, metrics.buck_families(self))
        ingest = self.factory.make(
            "ingest", self.cfg.ingest, hwm=self.cfg.rcvhwm, max_msg_size=self.cfg.max_frame_bytes
        )
        self._note_bound("ingest", self.cfg.ingest, ingest)
        # Every socket the loop serves, with what to do with one message of it.
        # Live publishing and HTTP ingest register theirs here too.
        self.handlers: dict[zmq.Socket, Callable[[list[bytes]], None]] = {ingest: self.handle}
        # Sockets read with copy=False: their handlers take zmq.Frames, which
        # carry the sender's key (User-Id) and address (Peer-Address).
        self.with_frames: set[zmq.Socket] = set()
        if self.rights_of is not None:
            self.handlers[ingest] = self.handle_frames
            self.with_frames.add(ingest)
        # Whole-message limits (all parts together) of the sockets others send to.
        self.receivers = {
            ingest: Receiver(ingest, "ingest", self.cfg.max_message_bytes, self.cfg.max_message_parts,
                             owner=f"Buck {self.name}", frames=ingest in self.with_frames)}
        # Messages taken per wake-up from sockets whose messages cost more than a batch.
        self.drain: dict[zmq.Socket, int] = {}
        if self.publish_endpoint:
            try:
                pub = self.factory.make("publisher", self.publish_endpoint, hwm=self.cfg.publish_hwm)
            except ServiceError:
                ingest.close(linger=0)
                raise
            self._note_bound("publish", self.publish_endpoint, pub)
            self.publisher = Publisher(pub, self.name, max_subscriptions=self.cfg.live_max_subscriptions,
                                       max_per_peer=self.cfg.live_max_subscriptions_per_peer)
            # The loop reads subscriptions (and subscribers' drop reports) from it, with who sent them.
            upstream = self.receivers[pub] = Receiver(pub, "live feed", UPSTREAM_MAX_BYTES, UPSTREAM_MAX_PARTS,
                                                      owner=f"Buck {self.name}", peer=True)
            self.handlers[pub] = lambda parts: self.publisher.on_upstream(parts, self.peer_name(upstream.peer))
            self.drain[pub] = UPSTREAM_DRAIN  # a flood of subscriptions must not starve ingest
            log.info("Buck %s publishes its live feed on %s.", self.name, self.bound("publish", self.publish_endpoint))
        if self.query_endpoint:
            try:
                qsock = self.factory.make("query", self.query_endpoint, max_msg_size=self.cfg.query_max_request)
            except ServiceError:
                for sock in self.handlers:
                    sock.close(linger=0)
                raise
            self._note_bound("query", self.query_endpoint, qsock)
            self.query = QueryServer(qsock, self.data_dir / "buckets", self.buckets, self.stats,
                                     max_bytes=self.cfg.query_max_bytes, name=self.name,
                                     rights_of=self.rights_of, allow_remote=self.cfg.query_allow_remote)
            self.handlers[qsock] = self.query.handle_frames
            self.with_frames.add(qsock)
            self.receivers[qsock] = Receiver(qsock, "query", self.cfg.query_max_request, QUERY_MAX_PARTS,
                                             owner=f"Buck {self.name}", frames=True)
            # A fetch reads up to query_max_bytes: a few per wake-up, then ingest again.
            self.drain[qsock] = QUERY_DRAIN
            log.info("Buck %s answers bucket queries on %s.", self.name, self.bound("query", self.query_endpoint))
        if self.cfg.http:
            # Imported only when used: aiohttp costs a buck ~20 MB it does not need otherwise.
            from helios.buck.http_ingest import HttpIngest

            self.http = HttpIngest(self)
            try:
                # Its server thread hands requests to this loop over an inproc pipe.
                self.handlers[self.http.start()] = self.http.handle
            except ServiceError:
                for sock in self.handlers:
                    sock.close(linger=0)
                raise
        log.info("Buck %s takes batches on %s and files them under %s.", self.name, self.bound("ingest", self.cfg.ingest),
                 self.data_dir)
        next_stats = 0.0
        poller = zmq.Poller()
        for sock in self.handlers:
            poller.register(sock, zmq.POLLIN)
        try:
            while not self.stopping.is_set():
                if self.reload_asked.is_set():
                    self.reload_asked.clear()
                    self.factory.reload_allow_list()
                for sock, _ in poller.poll(100):
                    handler = self.handlers[sock]
                    receiver = self.receivers.get(sock)
                    for _ in range(self.drain.get(sock, DRAIN)):
                        if self.held and sock is ingest:
                            break  # the disk is full: the rest waits in ZeroMQ's queue
                        try:
                            parts = receiver.recv() if receiver else sock.recv_multipart(zmq.NOBLOCK, copy=sock not in self.with_frames)
                        except zmq.Again:
                            break
                        if parts is not None:  # None: over a whole-message limit, refused and counted
                            handler(parts)
                if self.http is not None:
                    self.http.end_round()  # group commit: one fsync for the round's fsynced requests
                if self.disk.full or self.held or self._paused:
                    self.while_full(poller, ingest)
                now = time.time()
                if now >= next_stats:
                    self.buckets.close_idle(now)
                    self.write_stats()
                    next_stats = now + self.cfg.stats_interval
        finally:
            if self.http is not None:
                self.http.close()  # requests still waiting get 503
            if self.held:
                log.error("Buck %s stops with %d frame(s) (%d events) it could not write to its full disk; "
                          "their senders' spools still have them.", self.name, len(self.held),
                          sum(h.count for h, _ in self.held))
            for sock in self.handlers:
                sock.close(linger=0)
            self.buckets.fsync_all()
            self.buckets.close()
            self.write_stats()
            if self.metrics is not None:
                self.metrics.close()
            log.info("Buck %s stopped: %d frames, %d events stored.", self.name, self.counts["frames"], self.counts["events"])

    def peer_name(self, peer: str | None) -> str | None:
        """A peer as people know it: a CURVE key by its name in the allow-list
        (ZAP gives the z85 key itself as User-Id), else as given (an address)."""
        rights = self.rights_of(peer) if self.rights_of is not None and peer else None
        return rights.name if rights is not None and rights.name else peer

    def handle_frames(self, frames: list[zmq.Frame]) -> None:
        """One ingest message with CURVE: ``handle`` it with the rights of its key."""
        try:
            who = self.rights_of(frames[0].get("User-Id")) or NOBODY
        except zmq.ZMQError:  # no User-Id: not a CURVE connection
            who = NOBODY
        self.handle([f.bytes for f in frames], who)

    def handle(self, parts: list[bytes], who: Rights | None = None) -> None:
        """One ingest message: check each part, store the good ones, publish them.
        Frames that do not fit on a full disk are held (see ``while_full``).
        ``who``: the rights of the sender's key (None: not checked, CURVE off)."""
        accepted = self.accept(parts, who)
        if accepted:
            self.store(accepted, self.held)
            self.publish(_not_in(accepted, self.held))

    def while_full(self, poller: zmq.Poller, ingest: zmq.Socket) -> None:
        """The loop's turn while the disk is full: ingest is not polled while
        frames are held; every ``full_retry`` seconds the held frames are
        written again (or, with none held, writes may try again once the
        disk has room: helios.buck.diskfull)."""
        if self.held and not self._paused:
            poller.unregister(ingest)
            self._paused = True
        self.disk.report()
        if self.disk.due():
            if self.held:
                held, self.held = self.held, []
                self.store(held, self.held)  # one that goes through ends the episode
                self.publish(_not_in(held, self.held))
                if self.held:
                    self.disk.retried()
            else:
                self.disk.probe()
        if self._paused and not self.held:
            poller.register(ingest, zmq.POLLIN)
            self._paused = False

    def accept(self, parts: list[bytes], who: Rights | None = None) -> list[tuple[codec.BatchHeader, bytes]]:
        """Check each frame without decoding it; count and log the bad ones.
        A frame of an environment ``who`` may not send to is refused too."""
        accepted = []
        for frame in parts:
            header = None
            try:
                header = codec.check_frame(frame, max_raw=self.cfg.max_raw_bytes)
                if not layout.valid_environment(header.environment):
                    raise FrameError(f"environment name {header.environment!r} is not allowed")
                if who is not None and not who.may("send", header.environment):
                    raise FrameError(f"environment not allowed for the key: {who.describe()} may not send "
                                     f"to {header.environment}")
                if header.count > self.cfg.max_batch_events:
                    raise FrameError(f"batch of {header.count} events: over the limit of "
                                     f"{self.cfg.max_batch_events} (max_batch_events)")
                header, frame = self.vet(header, frame)
            except FrameError as exc:
                self.reject(str(exc), len(frame))
                if header is not None and header.input:
                    self._input(header.input)[2] += 1
                continue
            accepted.append((header, frame))
        return accepted

    def vet(self, header: codec.BatchHeader, frame: bytes) -> tuple[codec.BatchHeader, bytes]:
        """The events' own check (``codec.vet``): with ``check_events =
        "header"`` only for a frame whose header's time span leaves the sane
        range (the others are stored undecoded, which is what keeps a buck
        cheap); with "all", every frame. Events with a time out of range are
        kept with a corrected time and a mark, counted in ``corrected``;
        any other bad event refuses its frame (``FrameError``)."""
        now = time.time_ns()
        earliest = max(0, now - int(self.cfg.event_max_age * 1e9)) if self.cfg.event_max_age else 0
        latest = now + int(self.cfg.event_max_ahead * 1e9)
        if self.cfg.check_events == "header" and codec.span_ok(header, earliest, latest):
            return header, frame
        header, frame, reasons = codec.vet(frame, header, earliest, latest, now, max_raw=self.cfg.max_raw_bytes)
        if reasons:
            self.counts["corrected_events"] += len(reasons)
            self._note("corrected", f"Buck {self.name} kept {len(reasons)} event(s) of a frame from {header.host!r} "
                       f"({header.environment}) with a corrected time, marked {codec.CORRECTED!r} in their "
                       f"fields (first: {reasons[0]})")
        return header, frame

    def store(self, accepted: list[tuple[codec.BatchHeader, bytes]], full: list | None = None) -> bool:
        """Append frames to the current bucket of their environment. Returns
        False if any could not be written: for lack of space they go to
        ``full`` when given (held, counted in ``self.disk``), else they are
        counted and logged as lost."""
        by_env: dict[str, list[tuple[codec.BatchHeader, bytes]]] = {}
        for item in accepted:
            by_env.setdefault(item[0].environment, []).append(item)
        now = time.time()
        ok = True
        for env, items in by_env.items():
            try:
                self.buckets.append(env, [frame for _, frame in items], now)
            except RecordError as exc:
                if is_full(exc):  # not lost yet: held by the caller, or refused (HTTP 507)
                    ok = False
                    self.disk.hit(len(items), sum(h.count for h, _ in items), exc)
                    if full is not None:
                        full.extend(items)
                    continue
                # Lost data: the frames were accepted off the wire but not kept.
                self.counts["write_errors"] += len(items)
                for header, _ in items:
                    if header.input:
                        self._input(header.input)[3] += 1
                log.error("Buck %s could not store %d frame(s) of %s: %s", self.name, len(items), env, exc)
                ok = False
                continue
            if self.disk.episode:
                self.disk.wrote()  # space again: helios.buck.diskfull
            for header, frame in items:
                self.counts["events"] += header.count
                self.counts["frames"] += 1
                self.counts["bytes"] += len(frame)
                if header.input:
                    c = self._input(header.input)
                    c[0] += header.count
                    c[1] += len(frame)
                self.seen(header, now)
        return ok

    def publish(self, accepted: list[tuple[codec.BatchHeader, bytes]]) -> None:
        """Live feed of stored frames, to whoever subscribed (helios.wire.publisher):
        nothing is decoded when nobody watches, and nothing here ever blocks."""
        if self.publisher is not None:
            for header, frame in accepted:
                self.publisher.publish(header, frame)

    def reject(self, why: str, size: int) -> None:
        reason = why.split(":")[0]
        self.bad[reason] += 1
        self._note(reason, f"Buck {self.name} refused a {size}-byte frame: {why}")

    def _note(self, reason: str, text: str) -> None:
        """Log ``text`` at most once a second per reason, with how many were
        like it meanwhile."""
        last, suppressed = self._bad_logged.get(reason, (0.0, 0))
        now = time.monotonic()
        if now - last >= 1.0:
            more = f" ({suppressed} more like it since the last report)" if suppressed else ""
            log.warning("%s%s.", text, more)
            self._bad_logged[reason] = (now, 0)
        else:
            self._bad_logged[reason] = (last, suppressed + 1)

    def seen(self, header: codec.BatchHeader, now: float) -> None:
        """Who sends to this buck (for ``helios status``): per environment and
        sending host, when it last sent, how many events, and the newest
        event time it sent (its delay is ``last_seen`` minus that)."""
        key = f"{header.environment}/{header.host}"
        s = self.senders.get(key)
        if s is None:
            if len(self.senders) >= MAX_SENDERS:  # forget the longest silent
                del self.senders[min(self.senders, key=lambda k: self.senders[k][0])]
            s = self.senders[key] = [now, 0, 0, {}]
        s[0] = now
        s[1] += header.count
        s[2] = max(s[2], header.last_time)
        if header.input:
            # The events of each input kind the sender names (the rest came unmarked); a kind
            # past MAX_INPUTS was counted as "other" by ``store``.
            kind = header.input if header.input in self.inputs else "other"
            s[3][kind] = s[3].get(kind, 0) + header.count

    def _input(self, kind: str) -> list[int]:
        """The counts of an input kind: [events, bytes, frames refused, frames not written]."""
        c = self.inputs.get(kind)
        if c is None:
            if len(self.inputs) >= MAX_INPUTS:   # kinds are a sender's word: bounded
                kind = "other"
                c = self.inputs.get(kind)
            if c is None:
                c = self.inputs[kind] = [0, 0, 0, 0]
        return c

    def disk_use(self) -> dict:
        """The data directory's file system, and what the buckets take of it
        (summed at most once a minute: a listing of every bucket is not free)."""
        try:
            st = os.statvfs(self.data_dir)
            fs = {"disk_total": st.f_blocks * st.f_frsize, "disk_free": st.f_bavail * st.f_frsize}
        except OSError:
            fs = {}
        now = time.monotonic()
        if now - self._stored_at >= 60:
            self._stored_at = now
            try:
                self._stored = sum(path.stat().st_size for _, path in layout.list_buckets(self.data_dir / "buckets"))
                self._stored_counted = self.counts["bytes"]
            except OSError:
                pass
        # Plus what was stored since that listing (frames; their record headers aside), so a
        # new buck does not show "stored 0 B" beside the events it took in its first minute.
        return {**fs, "stored_bytes": self._stored + self.counts["bytes"] - self._stored_counted}

    def stats(self) -> dict:
        return {
            "senders": {k: {"last_seen": v[0], "events": v[1], "newest_event": v[2] / 1e9, "inputs": dict(v[3])}
                        for k, v in self.senders.items()},
            # Per input kind frames named (file, journal, container, syslog/udp, ...).
            "inputs": {k: dict(zip(("events", "bytes", "dropped", "errors"), v)) for k, v in self.inputs.items()},
            **self.disk_use(),
            "name": self.name,
            "pid": os.getpid(),
            "ingest": self.bound("ingest", self.cfg.ingest),
            "data_dir": str(self.data_dir),
            "started": self.started,
            "updated": time.time(),
            "frames": self.counts["frames"],
            "events": self.counts["events"],
            "bytes": self.counts["bytes"],
            "write_errors": self.counts["write_errors"],
            "bad_frames": dict(self.bad),
            "refused_messages": {r.name: r.stats()["refused"] for r in self.receivers.values()},
            "corrected_events": self.counts["corrected_events"],
            "open_buckets": self.buckets.open_count,
            "publish": self.bound("publish", self.publish_endpoint),
            "query": self.bound("query", self.query_endpoint),
            "queries": self.query.stats() if self.query is not None else None,
            "live": self.publisher.stats() if self.publisher is not None else None,
            "http": self.http.stats() if self.http is not None else None,
            "disk": dict(self.disk.stats(), held_frames=len(self.held)),
            "metrics": self.metrics.address if self.metrics is not None else None,
            "curve": self.factory.curve_counts(),
        }

    def write_stats(self) -> None:
        try:
            write_atomic(self.data_dir / "stats.json", json.dumps(self.stats()).encode(), durable=False)
        except OSError as exc:
            # A full disk is reported (once per interval, by self.disk) when
            # events cannot be written; the stats file, written every
            # stats_interval, may find it full first and must not repeat it.
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                log.debug("Buck %s could not write its stats file: %s.", self.name, exc)
            else:
                log.warning("Buck %s could not write its stats file: %s.", self.name, exc)


def _not_in(items: list, held: list) -> list:
    """``items`` without those in ``held`` (the same objects), in order."""
    if not held:
        return items
    kept = {id(frame) for _, frame in held}
    return [item for item in items if id(item[1]) not in kept]
