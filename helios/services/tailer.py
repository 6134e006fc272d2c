"""The tailer: follow files, parse lines in batches, send each batch to two bucks.

Data flows one way: ``Watcher`` hands out chunks of complete lines,
``Parser`` turns a chunk into columns, the columns are zipped into event rows,
rows fill a batch, and ``Fanout`` sends each closed batch to ``copies``
distinct bucks.

Where the CPU goes: everything per line happens in C or in one list
comprehension per chunk (parse by ``findall``, ids by xxhash, rows by
``zip``); nothing walks a line through layers of calls.

A batch closes when it is full (``batch_events`` or ``batch_bytes``) or as
soon as the reader has reached the end of what was written in every file: a
quiet file's line leaves within milliseconds of its append, a busy file's
batches fill up. ``batch_delay`` is only a backstop.

First cut: positions live in memory, and a batch no buck takes is held (the
tailer stops reading until a buck is back). The spool and the positions file
of the tailer issue make it survive restarts.
"""

from __future__ import annotations

import datetime
import itertools
import logging
import socket
import threading
import time
import zoneinfo

import xxhash

from helios import codec
from helios.model import now_ns
from helios.parse import Parser
from helios.tail.files import Chunk, Watcher
from helios.wire.fanout import Fanout
from helios.wire.sockets import SocketFactory

log = logging.getLogger(__name__)

READ_LIMIT = 256 * 1024  # bytes read from one file per turn: fair to the others


def tzinfo(name: str) -> datetime.tzinfo:
    if name == "local":
        return datetime.datetime.now().astimezone().tzinfo or datetime.timezone.utc
    if name == "UTC":
        return datetime.timezone.utc
    return zoneinfo.ZoneInfo(name)


class Batch:
    """Rows waiting to be sent, with what the frame header needs."""

    def __init__(self) -> None:
        self.rows: list = []
        self.nbytes = 0
        self.first = self.last = 0
        self.opened = 0.0

    def add(self, rows: list, times: list[int], nbytes: int) -> None:
        if not self.rows:
            self.opened = time.monotonic()
            self.first, self.last = min(times), max(times)
        else:
            self.first, self.last = min(self.first, min(times)), max(self.last, max(times))
        self.rows.extend(rows)
        self.nbytes += nbytes


class Tailer:
    def __init__(self, cfg, factory: SocketFactory | None = None) -> None:
        self.cfg = cfg
        self.host = cfg.host or socket.gethostname()
        self.parser = Parser(cfg.format, default_host=self.host, default_app=cfg.app, tz=tzinfo(cfg.timezone))
        self.watcher = Watcher(list(cfg.paths), start_at_end=cfg.start_at == "end")
        self.factory = factory or SocketFactory()
        self.stopping = threading.Event()
        self.batch = Batch()
        self.counts = {"lines": 0, "batches": 0, "bytes": 0}

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        cfg = self.cfg
        self.fanout = Fanout(self.factory, list(cfg.bucks), cfg.copies, hwm=cfg.sndhwm)
        log.info("Tailer on %s follows %s and sends each batch to %d of %s.",
                 self.host, ", ".join(cfg.paths), self.fanout.copies, ", ".join(cfg.bucks))
        next_scan = 0.0
        try:
            while not self.stopping.is_set():
                now = time.monotonic()
                if now >= next_scan:
                    self.watcher.scan()
                    next_scan = now + cfg.rescan_interval
                if not self.pass_over_files():
                    # Every file is at its end: nothing waits for more.
                    self.flush()
                    self.stopping.wait(cfg.poll_interval)
                elif self.batch.rows and time.monotonic() - self.batch.opened >= cfg.batch_delay:
                    self.flush()
        finally:
            # Deliver what was read; a bounded wait so that SIGTERM always ends us.
            self.flush(timeout=5.0)
            self.watcher.close()
            self.fanout.close(linger_ms=2000)
            log.info("Tailer stopped: %d lines in %d batches.", self.counts["lines"], self.counts["batches"])

    def pass_over_files(self) -> bool:
        """Read one turn from every file; True if any file had more to give."""
        busy = False
        for f in list(self.watcher.files.values()):
            try:
                chunk = f.read(READ_LIMIT)
            except OSError as exc:
                log.warning("Cannot read %s: %s; it will be looked at again.", f.path, exc)
                continue
            if chunk is not None:
                self.take(chunk)
            if f.at_eof:
                last = self.watcher.check_rotation(f)
                if last is not None:
                    self.take(last)
            else:
                busy = True
        return busy

    def take(self, chunk: Chunk) -> None:
        """Parse a chunk into rows and add them to the batch, sending full batches."""
        received = now_ns()
        cols = self.parser.parse_chunk(chunk.data, received)
        lines = cols.lines
        offsets = list(itertools.accumulate((len(ln) + 1 for ln in lines), initial=chunk.offset))
        offsets.pop()
        digest, key = xxhash.xxh3_128_digest, chunk.key
        ids = [digest(key + o.to_bytes(8, "big")) for o in offsets]
        rows = list(zip(ids, cols.times, itertools.repeat(received), cols.hosts, cols.apps,
                        cols.severities, itertools.repeat(chunk.path), offsets, lines, itertools.repeat(None)))
        self.counts["lines"] += len(rows)
        cfg = self.cfg
        # Fill the batch in slices so a big chunk still makes batches of the configured size.
        i = 0
        while i < len(rows):
            room = cfg.batch_events - len(self.batch.rows)
            if room <= 0:  # a flush was refused because we are stopping: keep everything
                room = len(rows) - i
            part, times = rows[i:i + room], cols.times[i:i + room]
            self.batch.add(part, times, sum(map(len, lines[i:i + room])))
            i += room
            if len(self.batch.rows) >= cfg.batch_events or self.batch.nbytes >= cfg.batch_bytes:
                self.flush()

    def flush(self, timeout: float | None = None) -> None:
        b = self.batch
        if not b.rows:
            return
        frame = codec.encode_rows(self.cfg.environment, self.host, b.rows, b.first, b.last)
        sent = self.fanout.send(frame, None if timeout is not None else self.stopping, timeout)
        if sent == 0:
            if timeout is None and self.stopping.is_set():
                # Shutting down while no buck takes it: one last bounded try in run()'s finally.
                return
            log.error("Tailer lost a batch of %d lines: no buck took it before shutdown.", len(b.rows))
        self.counts["batches"] += 1
        self.counts["bytes"] += len(frame)
        self.batch = Batch()
