"""What a buck does when its data directory fills up.

A full disk is not a bad frame and not a crash: it is a state the buck is in
for a while, and leaves by itself when space returns (a porter prunes, an
operator deletes). While in it, the buck

- keeps everything it already stored or acknowledged: a failed append is
  truncated back (``helios.store.records``, crash-safety rule 5), so the
  bucket files hold only whole records;
- holds the ZeroMQ frames it had read but could not write, stops reading its
  ingest socket, and tries those frames again every ``full_retry`` seconds.
  Meanwhile new batches wait in ZeroMQ's queues and then in the senders'
  (a tailer's batch that no buck takes stays in its spool and is re-sent);
  nothing read off the wire is dropped;
- answers HTTP writes with 507 and ``Retry-After`` without reading them
  (``helios.client`` and well-behaved senders retry), and ``/healthz`` says
  ``full``; with no frame held, it looks at the free space every
  ``full_retry`` seconds and lets writes try again once there is some;
- counts what it refused and says so once per ``full_log_interval`` seconds,
  not once per frame: a full disk under load would otherwise fill the
  journal, which is often on the same disk.

``DiskFull`` is the state and its counts. An *episode* runs from the first
failed write to the first one that goes through again: one ERROR line when
it starts, one WARNING per interval with what was refused, one when it ends;
``full`` (writes are refused) may go off and on within it while the buck
tries. It is driven by the buck's loop thread; ``full`` is also read by the
HTTP thread (one attribute read).
"""

from __future__ import annotations

import errno
import logging
import shutil
import time
from typing import Any

from helios.errors import RecordError

log = logging.getLogger(__name__)

# "No space" as the kernel says it: the disk, the user's quota, or a file too big.
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
# Free bytes that make a buck with no frame held try writing again.
PROBE_FREE = 1024 * 1024


def is_full(exc: BaseException) -> bool:
    """Did this write fail because there is no space left?"""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in FULL_ERRNOS:
            return True
        if not isinstance(exc, RecordError):
            return False
        exc = exc.__cause__
    return False


class DiskFull:
    def __init__(self, name: str, where: str, retry: float, log_interval: float) -> None:
        self.name, self.where = name, where
        self.retry, self.log_interval = retry, log_interval
        self.full = False           # writes are refused (HTTP 507)
        self.episode = False        # from the first failed write to the next one that works
        self.since = 0.0            # time.time() it filled, for stats
        self.episodes = 0           # times it filled
        self.refused_frames = 0     # ZeroMQ frames that could not be written (then held)
        self.refused_events = 0     # events of those frames and of HTTP requests the loop could not write
        self.refused_requests = 0   # HTTP requests answered 507
        self._next_try = 0.0
        self._next_log = 0.0
        self._logged = (0, 0, 0)    # the counts at the last report

    def hit(self, frames: int, events: int, exc: RecordError) -> None:
        """A write of ``frames`` frames (``events`` events) failed for lack of space."""
        now = time.monotonic()
        self.refused_frames += frames
        self.refused_events += events
        self.full = True
        if not self.episode:
            self.episode, self.since = True, time.time()
            self.episodes += 1
            self._next_log = now + self.log_interval
            log.error("Buck %s: its data directory %s is full (%s). It keeps what it stored, holds what "
                      "it read, and refuses new writes (HTTP 507) until there is space again; it tries "
                      "every %g s.", self.name, self.where, exc.__cause__ or exc, self.retry)
        self._next_try = now + self.retry

    def refused_request(self) -> None:
        """HTTP thread: a request was answered 507 without being read."""
        self.refused_requests += 1

    def due(self, now: float | None = None) -> bool:
        """Time to try writing again?"""
        return self.full and (time.monotonic() if now is None else now) >= self._next_try

    def retried(self) -> None:
        """A try failed again (``hit`` was called): wait another interval."""
        self._next_try = time.monotonic() + self.retry

    def probe(self) -> None:
        """With nothing held to try: is there room again? Then let writes try
        (the first that goes through ends the episode, see ``wrote``)."""
        try:
            free = shutil.disk_usage(self.where).free
        except OSError:
            free = 0
        if free >= PROBE_FREE:
            self.full = False
        else:
            self.retried()

    def wrote(self) -> None:
        """A write went through: the episode is over."""
        if self.episode:
            self.full = self.episode = False
            log.warning("Buck %s: its data directory %s has space again after %.0f s; writing resumed "
                        "(refused meanwhile: %d frame(s), %d event(s) held or refused, %d HTTP request(s) "
                        "answered 507).", self.name, self.where, time.time() - self.since,
                        self.refused_frames, self.refused_events, self.refused_requests)

    def report(self, now: float | None = None) -> None:
        """Once per ``log_interval`` while full: what was refused since the last report."""
        now = time.monotonic() if now is None else now
        if not self.episode or now < self._next_log:
            return
        self._next_log = now + self.log_interval
        counts = (self.refused_frames, self.refused_events, self.refused_requests)
        if counts != self._logged:
            d = [a - b for a, b in zip(counts, self._logged)]
            self._logged = counts
            log.warning("Buck %s: its data directory %s is still full; in the last %g s it held %d "
                        "frame(s) (%d event(s) it could not write) and answered %d HTTP request(s) 507.",
                        self.name, self.where, self.log_interval, d[0], d[1], d[2])

    def stats(self) -> dict[str, Any]:
        return {"full": self.full, "episode": self.episode, "since": self.since if self.episode else None,
                "episodes": self.episodes,
                "refused_frames": self.refused_frames, "refused_events": self.refused_events,
                "refused_requests": self.refused_requests}
