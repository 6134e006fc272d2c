"""The relay: one per host, between the host's applications and the bucks.

Applications that record events directly (``helios.client`` with ``[client]
relay``) PUSH their batch frames to the relay over a local socket (ipc: no
network, no TCP stack, one send per batch). The relay does for those frames
what a tailer does for its batches, with the same parts:

- each frame is checked (``codec.check_frame``: version, header, checksum;
  nothing is decoded) and appended to the local ``Spool`` first, so a frame
  the relay took survives the relay: a ``kill -9`` loses nothing spooled (the
  spool is fsynced every ``sync_interval`` seconds, which bounds what a crash
  of the whole machine could lose);
- then it goes live to ``copies`` distinct bucks chosen at random among the
  connected ones (``helios.wire.fanout.Fanout``, waiting at most
  ``live_wait`` for busy ones, never for dead ones);
- each closed spool bucket is re-sent whole to one random buck after its
  window plus a jitter, retried until a buck takes it, and once more before
  the spool prunes it (``helios.tail.resend.Resender.tick``). What it re-sent
  is kept in ``STATE_DIR/resent.json``, so a restart goes on where it was.

So applications keep recording while every buck is down: the relay spools,
and when bucks return, the re-send delivers every spooled event (duplicates
of what went live are removed downstream by event id). What is lost when the
relay is killed is what it had not yet spooled: frames in its socket queue.

Bad frames are counted by reason and logged (at most once a second per
reason); they never stop the relay. SIGTERM spools the frames already in its
socket queue, fsyncs the spool and exits; a restart can lose only what was
still in flight between an application and the relay at that moment (at most
the sockets' high-water marks), as a buck restart can for direct ZeroMQ
clients. One relay per state directory (a lock file).

Syslog over the network (``[relay] syslog_udp``, ``syslog_tcp``,
``syslog_tls``): the listeners of ``helios.syslognet.server`` are polled in
this same loop; each read becomes a frame that is spooled, then sent, as
above (``take_syslog``), before the socket is read again. Why the relay and
not the tailer: the relay is the host's long-running receiver already (it
listens, spools and fans out what it did not read from a file), and a
tailer's loop is paced by file polling, not by sockets.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections import Counter
from pathlib import Path

import zmq

from helios import codec
from helios.errors import FrameError, RecordError, ServiceError
from helios.store import layout
from helios.store.atomic import write_atomic
from helios.store.durable import make_dirs
from helios.store.dirlock import lock_dir
from helios.tail.resend import Resender
from helios.tail.spool import Spool
from helios.wire.fanout import Fanout
from helios.wire.sockets import Receiver, SocketFactory

log = logging.getLogger(__name__)

DRAIN = 256          # messages taken per wake-up before housekeeping gets a turn
HOUSEKEEPING_S = 0.25
DRAIN_AT_STOP_S = 2.0  # most time a stop spends on the batches already queued
RESENT_VERSION = 1
RECORD_OVERHEAD = 16    # a spool record's bytes besides its frame (length, crc), rounded up


class Relay:
    def __init__(self, cfg, factory: SocketFactory | None = None) -> None:
        self.cfg = cfg
        self.factory = factory or SocketFactory()
        self.name = socket.gethostname()
        self.state = Path(cfg.state_dir)
        self.stopping = threading.Event()
        self.counts: Counter[str] = Counter()
        self.bad: Counter[str] = Counter()
        self._bad_logged: dict[str, tuple[float, int]] = {}
        self.started = time.time()
        self.metrics = None
        self.spool: Spool | None = None
        self.receiver: Receiver | None = None
        self.syslog = None
        # Bytes appended to the spool since its listing (cached up to a second) was
        # last seen, so that spool_full knows the size now, not a second ago.
        self.appended = 0
        self._listing_seen: list | None = None

    def stop(self) -> None:
        """Ask the loop to finish; safe from a signal handler."""
        self.stopping.set()

    # --- the loop ---

    def run(self) -> None:
        cfg = self.cfg
        try:
            make_dirs(self.state)  # 0750 whatever the umask
        except OSError as exc:
            raise ServiceError(f"cannot use the relay's state directory {self.state}: {exc}") from None
        self.lock = lock_dir(self.state, "relay")
        self.resent_path = self.state / "resent.json"
        self.sent = load_resent(self.resent_path)
        self.saved_sent = dict(self.sent)
        self.spool = Spool(self.state / "spool", cfg.spool_window, max_bytes=cfg.spool_max_bytes,
                           max_age=cfg.spool_max_age, jitter=cfg.resend_jitter)
        make_ipc_dir(cfg.listen)
        pull = self.factory.make("ingest", cfg.listen, hwm=cfg.rcvhwm, max_msg_size=cfg.max_frame_bytes)
        # Whole-message limits (ZeroMQ's MAXMSGSIZE is per part): a message over them is refused whole.
        self.receiver = Receiver(pull, "ingest", cfg.max_message_bytes, cfg.max_message_parts, owner="Relay")
        self.fanout = Fanout(self.factory, list(cfg.bucks), cfg.copies, hwm=cfg.sndhwm, monitor=True)
        self.resender = Resender(self.factory, list(cfg.bucks), self.spool)
        try:
            if cfg.syslog_udp or cfg.syslog_tcp or cfg.syslog_tls:
                from helios.syslognet.server import SyslogInput

                self.syslog = SyslogInput(cfg, self, self.name)
                self.syslog.start()
            if cfg.metrics:
                from helios import metrics  # only when used; read at scrape time, never in the loop

                self.metrics = metrics.Endpoint.start("relay", self.name, cfg.metrics, metrics.relay_families(self))
            log.info("Relay on %s takes batches on %s, spools them in %s and sends each to %d of %s.",
                     self.name, cfg.listen, self.spool.root, self.fanout.copies, ", ".join(cfg.bucks))
            self.loop(pull)
        finally:
            self.drain(pull)
            pull.close(linger=0)
            if self.syslog is not None:
                self.syslog.close()  # what open connections sent, a last line without its newline too
            remove_ipc_file(cfg.listen)
            self.sync()
            self.spool.close()
            self.fanout.close(linger_ms=2000)
            self.resender.close()
            self.write_stats()
            if self.metrics is not None:
                self.metrics.close()
            log.info("Relay stopped: %d events in %d frames taken; spool fsynced.",
                     self.counts["events"], self.counts["frames"])

    def loop(self, pull: zmq.Socket) -> None:
        next_house = next_sync = next_stats = 0.0
        while not self.stopping.is_set():
            if self.syslog.poll(pull, 100) if self.syslog is not None else pull.poll(100, zmq.POLLIN):
                for _ in range(DRAIN):
                    try:
                        parts = self.receiver.recv()
                    except zmq.Again:
                        break
                    if parts is not None:
                        self.handle(parts)
            now = time.monotonic()
            if now >= next_house:
                self.counts["resent_buckets"] += self.resender.tick(self.sent, time.time())
                self.fanout.watch()
                if self.syslog is not None:
                    self.syslog.tick(now)
                next_house = now + HOUSEKEEPING_S
            if now >= next_sync:
                self.sync()
                next_sync = now + self.cfg.sync_interval
            if now >= next_stats:
                self.write_stats()
                next_stats = now + self.cfg.stats_interval

    def drain(self, pull: zmq.Socket, seconds: float = DRAIN_AT_STOP_S) -> None:
        """At a stop, take what already waits in the socket's queue: batches the
        applications count as delivered. Bounded, as applications may go on sending."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                parts = self.receiver.recv()
            except zmq.Again:
                return
            if parts is not None:
                self.handle(parts)

    def handle(self, parts: list[bytes]) -> None:
        """One message from an application: check each frame, spool the good
        ones, then send them live."""
        accepted = []
        for frame in parts:
            try:
                header = codec.check_frame(frame)
                if not layout.valid_environment(header.environment):
                    raise FrameError(f"environment name {header.environment!r} is not allowed")
            except FrameError as exc:
                self.reject(str(exc), len(frame))
                continue
            accepted.append((header, frame))
        if not accepted:
            return
        events = nbytes = 0
        for header, frame in accepted:
            try:
                self.spool.append(header.environment, frame)
                self.appended += len(frame) + RECORD_OVERHEAD
            except RecordError as exc:
                # Not kept: it still goes live below, but no re-send will cover it.
                self.counts["spool_errors"] += 1
                log.error("Relay could not spool a frame of %d events (it is sent live only, and lost "
                          "if no buck takes it): %s", header.count, exc)
            events += header.count
            nbytes += len(frame)
        self.counts["frames"] += len(accepted)
        self.counts["events"] += events
        self.counts["bytes"] += nbytes
        frames = [frame for _, frame in accepted]
        if self.fanout.send(frames, wait=self.cfg.live_wait):
            self.counts["events_sent"] += events
            self.counts["bytes_sent"] += nbytes

    def take_syslog(self, frame: bytes, events: int, nbytes: int, durable: bool) -> bool:
        """A frame of syslog messages: spooled, then sent live. False (and not
        sent) when the spool could not take it and ``durable`` says it must
        (TCP, TLS: the listener keeps it and stops reading); a UDP frame is
        then sent live only, as an application's frame is."""
        try:
            self.spool.append(self.cfg.syslog_environment, frame)
            self.appended += len(frame) + RECORD_OVERHEAD
        except RecordError as exc:
            if durable:
                log.error("Relay could not spool syslog messages (it stops reading its syslog connections "
                          "until it can): %s", exc)
                return False
            self.counts["spool_errors"] += 1
            log.error("Relay could not spool %d syslog messages from UDP (they are sent live only, and lost "
                      "if no buck takes them): %s", events, exc)
        if self.fanout.send([frame], wait=self.cfg.live_wait):
            self.counts["events_sent"] += events
            self.counts["bytes_sent"] += len(frame)
        return True

    def spool_full(self) -> bool:
        """Would more appends make the spool prune a bucket no buck has had?
        Then the syslog connections wait (``helios.syslognet.server``, which
        asks after every frame it spools). The size is the spool's listing
        (up to a second old) plus what was appended since; the margin covers
        the next read."""
        spool = self.spool
        buckets = spool.buckets()
        if buckets is not self._listing_seen:
            self._listing_seen, self.appended = buckets, 0
        total = sum(size for *_, size in buckets) + self.appended
        if total + min(spool.max_bytes // 8, 64 * 1024 * 1024) < spool.max_bytes:
            return False
        now = time.time()
        closed = [name for name, _, _ in buckets if name.end <= now]
        if not closed:
            return True   # nothing can be pruned yet
        return self.sent.get(closed[0].relpath(), 0) == 0  # what to_prune would take first

    def reject(self, why: str, size: int) -> None:
        reason = why.split(":")[0]
        self.bad[reason] += 1
        last, suppressed = self._bad_logged.get(reason, (0.0, 0))
        now = time.monotonic()
        if now - last >= 1.0:
            more = f" ({suppressed} more like it since the last report)" if suppressed else ""
            log.warning("Relay refused a %d-byte frame: %s%s.", size, why, more)
            self._bad_logged[reason] = (now, 0)
        else:
            self._bad_logged[reason] = (last, suppressed + 1)

    # --- state ---

    def sync(self) -> None:
        """Spool to disk, then what was re-sent (a re-send recorded before its
        bucket is durable could skip a bucket after a machine crash)."""
        try:
            self.spool.sync()
        except RecordError as exc:
            log.error("Relay could not fsync its spool: %s; a crash of the machine could lose "
                      "what it took since the last fsync.", exc)
            return
        if self.sent != self.saved_sent:
            try:
                write_atomic(self.resent_path, json.dumps({"version": RESENT_VERSION, "sent": self.sent}).encode())
                self.saved_sent = dict(self.sent)
            except OSError as exc:
                log.warning("Relay could not save %s: %s; after a restart some spool buckets may be "
                            "re-sent again (duplicates, removed downstream).", self.resent_path, exc)

    def stats(self) -> dict:
        return {
            "name": self.name,
            "pid": os.getpid(),
            "listen": self.cfg.listen,
            "state_dir": str(self.state),
            "started": self.started,
            "updated": time.time(),
            "metrics": self.metrics.address if self.metrics is not None else None,
            "bucks_connected": sum(self.fanout.connected.values()),
            "bad_frames": dict(self.bad),
            "refused_messages": dict(self.receiver.refused) if self.receiver is not None else {},
            **({"syslog": self.syslog.stats()} if self.syslog is not None else {}),
            **self.counts,
        }

    def write_stats(self) -> None:
        try:
            write_atomic(self.state / "stats.json", json.dumps(self.stats()).encode(), durable=False)
        except OSError as exc:
            log.warning("Relay could not write its stats file: %s.", exc)


def load_resent(path: Path) -> dict[str, int]:
    """How often each spool bucket was re-sent. A missing or unreadable file
    means none was: at worst a bucket goes once more (duplicates are removed
    downstream), never once less."""
    try:
        doc = json.loads(path.read_bytes())
        if doc.get("version") != RESENT_VERSION:
            raise ValueError(f"unknown version {doc.get('version')!r}")
        return {str(k): int(v) for k, v in doc["sent"].items()}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("Relay cannot read %s (%s); closed spool buckets will be re-sent again.", path, exc)
        return {}


def remove_ipc_file(endpoint: str) -> None:
    """The socket file of an ipc:// endpoint, removed once the relay no
    longer listens on it (ZeroMQ leaves it behind)."""
    if not endpoint.startswith("ipc://"):
        return
    path = Path(endpoint[len("ipc://"):])
    try:
        if path.is_socket():
            path.unlink()
    except OSError as exc:
        log.warning("Relay could not remove its socket file %s: %s", path, exc)


def make_ipc_dir(endpoint: str) -> None:
    """An ipc:// endpoint's directory must exist before the bind."""
    if not endpoint.startswith("ipc://"):
        return
    directory = Path(endpoint[len("ipc://"):]).parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ServiceError(f"cannot create {directory} for the relay's socket {endpoint}: {exc} "
                           "(set [relay] listen to a path the relay may write)") from None

