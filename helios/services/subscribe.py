"""``helios subscribe``: the live events of every buck, on standard output.

Composition only: a ``helios.live.feed.Feed`` (one connection per buck,
prefix subscriptions from the filter, dedup, drop accounting) and a writer
per output form:

- ``line``: ``TIME ENV HOST APP SEVERITY MESSAGE``, the message's bytes as
  read (the mesh never rewrites content; a terminal shows what it can);
- ``raw``: the message alone, as read: what ``tail -f`` of the file shows;
- ``json``: one JSON object per line, the JSON form of ``helios.eventform``
  (``id``, ``time``, ``time_ns``, ``received_ns``, ``environment``, ``host``,
  ``app``, ``severity``, ``severity_code``, ``source``, ``offset``,
  ``message``, ``fields``, ``source_id``); a message that is not UTF-8 is
  given with replacement characters in ``message`` and exactly in
  ``message_base64``, fields that are not plain JSON readably in ``fields``
  and exactly in ``fields_msgpack``;
- ``count``: every ``interval`` seconds, ``TIME events=N rate=R/s dropped=D``
  (D: events the bucks dropped because this subscriber fell behind; the
  other buck's copy may still have arrived).

Output is flushed after each read from the bucks, so a line shows within
milliseconds. A buck publishes a stored batch as one message per topic; what
arrives within ``reorder_delay`` of the first held event is put back in the
order it was read (receive time, file, offset) before it is printed; beyond
that, batches and bucks come in arrival order (best effort, not a sort). Ctrl-C or SIGTERM ends it cleanly (exit 0); a closed pipe (``|
head``) ends it quietly.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import BinaryIO

from helios.eventform import FORMATTERS
from helios.live.feed import Feed
from helios.model import Event
from helios.timespec import iso_ms

log = logging.getLogger(__name__)

OUTPUTS = ("line", "raw", "json", "count")


def read_order(e: Event) -> tuple:
    """Tailed lines in the order the tailer read them; client events by time."""
    return (e.received, e.source, -1 if e.offset is None else e.offset, e.time)


class Subscriber:
    def __init__(self, feed: Feed, output: str = "line", *, interval: float = 1.0,
                 limit: int | None = None, duration: float | None = None,
                 connect_timeout: float = 2.0, reorder_delay: float = 0.02,
                 out: BinaryIO | None = None) -> None:
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}")
        self.feed = feed
        self.output = output
        self.interval = interval
        self.limit = limit
        self.duration = duration
        self.connect_timeout = connect_timeout
        self.reorder_delay = reorder_delay
        self.out = out or sys.stdout.buffer
        self.stopping = threading.Event()
        self.shown = 0

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        feed = self.feed
        try:
            n = feed.wait_connected(self.connect_timeout)
            if n < len(feed.endpoints):
                log.warning("Connected to %d of %d bucks; still trying %s.", n, len(feed.endpoints),
                            ", ".join(feed.unreachable()))
            if self.output == "count":
                self._count()
            else:
                self._print()
        except BrokenPipeError:
            # The reader went away (| head): not an error. Keep Python from
            # complaining again when it flushes stdout at exit.
            try:
                sys.stdout = open("/dev/null", "w")  # noqa: SIM115
            except OSError:
                pass
        finally:
            log.info("Subscriber stopped: %d events shown; %d copies and %d late (re-sent) events "
                     "skipped; the bucks dropped %d for us.", self.shown, feed.counts["duplicates"],
                     feed.counts["late"], feed.dropped)
            feed.close()

    def _ends(self) -> float | None:
        return None if self.duration is None else time.monotonic() + self.duration

    def _print(self) -> None:
        fmt, out, ends, delay = FORMATTERS[self.output], self.out, self._ends(), self.reorder_delay
        held: list[Event] = []
        due = None
        while not self.stopping.is_set():
            now = time.monotonic()
            if ends is not None and now >= ends:
                break
            timeout = 0.2 if due is None else max(0.0, due - now)
            if ends is not None:
                timeout = min(timeout, ends - now)
            events = self.feed.poll(timeout)
            if events:
                held += events
                due = due or time.monotonic() + delay
            if not held or time.monotonic() < due:
                continue
            # A buck publishes a stored batch as one message per topic; put what
            # arrived within the reorder delay back in the order it was read.
            held.sort(key=read_order)
            if self.limit is not None:
                held = held[: self.limit - self.shown]
            out.write(b"".join(map(fmt, held)))
            out.flush()
            self.shown += len(held)
            held, due = [], None
            if self.limit is not None and self.shown >= self.limit:
                return

    def _count(self) -> None:
        out, ends = self.out, self._ends()
        start = time.monotonic()
        next_at = start + self.interval
        count, dropped_before = 0, self.feed.dropped
        while not self.stopping.is_set():
            now = time.monotonic()
            if ends is not None and now >= ends:
                break
            if now >= next_at:
                dropped = self.feed.dropped
                out.write(f"{iso_ms(time.time_ns())} events={count} rate={count / self.interval:.1f}/s "
                          f"dropped={dropped - dropped_before}\n".encode())
                out.flush()
                self.shown += count
                count, dropped_before = 0, dropped
                next_at += self.interval
                continue
            wait = next_at - now if ends is None else min(next_at, ends) - now
            count += len(self.feed.poll(max(0.0, wait)))
        self.shown += count
