"""What the porter's jobs share: the context of one porter (its config,
state, ledger, query client, counts, backoffs), one pass's look at the
bucks (``Pass``) and the small interface every job has (``PassJob``)."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol

from helios.porter import report
from helios.porter.archiving import archive_spec, describe_location
from helios.porter.merge import FrameOwners
from helios.porter.quarantine import Quarantine
from helios.porter.quarantine import summarize as quarantine_summary
from helios.porter.state import Moved, index_identity
from helios.porter.windows import Blacklist
from helios.store.layout import BucketName, bucket_id

if TYPE_CHECKING:   # imported where they are made: a porter's parts, built by Porter.run
    from helios.config import Porter as PorterConfig
    from helios.metrics import Endpoint
    from helios.porter.early import Early
    from helios.porter.seen import Seen
    from helios.porter.state import State
    from helios.porter.workers import Resources
    from helios.query.client import QueryClient, Result
    from helios.query.protocol import BucketEntry

log = logging.getLogger("helios.services.porter")   # the porter's one log, as before the split

NS = 1_000_000_000
LEASE_S = 900.0          # a job's hold on a window against a second porter; it expires if we die


class Backoff:
    """Retry timing of one failing dependency (the index, the archive)."""

    def __init__(self, what: str, lo: float, hi: float, where: str = "") -> None:
        self.what, self.lo, self.hi, self.where = what, lo, hi, where
        self.failures = 0
        self.retry_at = 0.0
        self.since: float | None = None
        self.error: str | None = None

    def ready(self, now: float) -> bool:
        return now >= self.retry_at

    def failed(self, error: str, now: float) -> float:
        self.failures += 1
        delay = min(self.hi, self.lo * 2.0 ** min(self.failures - 1, 30))
        self.retry_at = now + delay
        self.since = self.since or now
        self.error = error
        return delay

    def succeeded(self) -> bool:
        """Reset; True if it had been failing."""
        was = self.failures > 0
        self.failures, self.retry_at, self.since, self.error = 0, 0.0, None, None
        return was

    def status(self, now: float, where: str | None = None) -> dict[str, Any]:
        where = self.where if where is None else where
        if not self.failures:
            return {"state": "ok", "where": where}
        return {"state": "down", "where": where, "error": self.error, "since": self.since,
                "failures": self.failures, "retry_in": max(0.0, self.retry_at - now)}


def index_spec(cfg: PorterConfig) -> dict[str, Any]:
    sqlite = cfg.index == "sqlite"
    return {"index": cfg.index, "index_location": cfg.index_dir if sqlite else cfg.index_url,
            "index_name": cfg.index_name,
            # The sqlite index spreads a load over its own loader processes.
            "index_options": {"workers": max(1, cfg.workers)} if sqlite else {}}


def window_id(name: BucketName) -> str:
    return bucket_id(name)


def first_day(recent_days: int, now: float | None = None) -> int:
    """The first day (seconds since the epoch) the index keeps."""
    today = int(time.time() if now is None else now) // 86400 * 86400
    return today - recent_days * 86400


@dataclass
class Pass:
    """One look at the bucks: what each answered (``listings``: endpoint ->
    listing or QueryError) and the windows of the wanted environments."""

    listings: dict[str, Result[list[BucketEntry]]]
    listed: report.Listed


class PassJob(Protocol):
    """A porter job: one round over a pass's windows; True if it did work."""

    def run_pass(self, p: Pass) -> bool: ...


class Context:
    """One porter's shared parts. The state, ledger, query client and index
    resources are opened by ``Porter.run`` (or a test) and set here."""

    # Set by ``Porter.run`` (or a test) before any job runs.
    state: State
    seen: Seen
    qc: QueryClient
    res: Resources

    def __init__(self, cfg: PorterConfig, state_dir: Path, *, once: bool = False) -> None:
        self.cfg = cfg
        self.once = once
        self.state_dir = state_dir
        self.stopping = threading.Event()
        self.counts: Counter[str] = Counter()
        self.started = time.time()
        self.spec = {**index_spec(cfg), **archive_spec(cfg)}
        self.index_backoff = Backoff("index", cfg.backoff_min, cfg.backoff_max,
                                     f"{cfg.index} {self.spec['index_location']} ({cfg.index_name})")
        self.archive_backoff = Backoff("archive", cfg.backoff_min, cfg.backoff_max,
                                       f"{cfg.archive} {describe_location(self.spec)}")
        self.blacklist = Blacklist(cfg.archive_blacklist)
        self.quarantine = Quarantine(state_dir)
        self.quarantine_failed = False   # for ``once``: a window was left because its quarantine could not be written
        self.ledger_failed = False       # for ``once``: a window was left because the dedup ledger could not be written
        self.quarantine_summary = quarantine_summary(state_dir)
        self.quarantine_at = time.monotonic()
        self.frame_owners = FrameOwners()
        self.early: dict[BucketName, Early] = {}   # window -> what was loaded of it while open
        self.bucks: dict[str, str] = {}        # endpoint -> "ok" or why it is down
        self.listed: report.Listed | None = None
        self.listed_at: float | None = None     # when the bucks were last asked
        self.source = f"porter@{os.uname().nodename}:{state_dir.resolve()}"  # this porter's name at the bucks
        self.metrics: Endpoint | None = None
        self.progressed: Callable[[], None] = lambda: None   # after a window's job finished (the status is rewritten)
        # What the porter is busy with, for its status (a big window's fetch or load can take minutes).
        self.doing: str | None = None
        self.doing_since: float | None = None
        # The index loaded into, as the state records it (helios.porter.state.index_identity), the last
        # change of index (helios.porter.state.Moved), and the windows (as seen.window_key) loaded into
        # another index that no buck holds any more: their events, held again in a later window, are loaded
        # with that one (the ledger gives them to a window the new index never gets).
        loc = self.spec["index_location"]
        self.index_identity = index_identity(cfg.index, loc, cfg.index_name)
        self.index_moved: Moved | None = None
        self.loaded_elsewhere: set[int] = set()

    def claim_for_index(self, name: BucketName, rows: list[Any]) -> tuple[list[Any], int]:
        """``Seen.claim`` for a load into the index: events owned by a window
        in ``loaded_elsewhere`` are kept."""
        elsewhere = self.loaded_elsewhere
        return self.seen.claim(name, rows, keep=elsewhere.__contains__ if elsewhere else None)

    def busy_with(self, doing: str | None) -> None:
        """Say what the porter is doing now (None: between jobs) and let
        the status show it (rewritten at most once a second)."""
        if doing != self.doing:
            self.doing, self.doing_since = doing, None if doing is None else time.time()
        self.progressed()

    def failed(self, backoff: Backoff, error: str, now: float, doing: str) -> None:
        first = not backoff.failures
        delay = backoff.failed(error, now)
        self.counts[f"{backoff.what}_failures"] += 1
        (log.error if first else log.warning)(
            "The %s (%s) failed on %s: %s. Retrying in %.0f s; nothing is pruned until it succeeds.",
            backoff.what, backoff.where, doing, error, delay)
