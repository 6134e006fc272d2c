"""Where the porter's costly work runs: index loads and archive packing.

The porter's own thread fetches, merges and dedups each window, one after
the other (that order is what the dedup ledger needs, see ``seen``). What
costs most happens elsewhere, so that it overlaps with the next fetch and
spreads over the cores:

- **Index loads** run on one ``IndexLoader`` thread, a window at a time,
  with the next window queued behind it. The sqlite index spreads each load
  over its own loader processes (``[porter] workers``; it shards every day
  by event id, so two processes write two files at once), and the HTTP
  backends spend their time waiting on the server: either way this thread
  mostly waits, and the porter's thread merges meanwhile.
- **Archive objects** are packed (zstd -19 is the slowest step of the
  porter) and stored by ``Pool`` processes, a window each.

A job comes back as ``("ok", value)`` or ``("error", reason)``. A job that
failed has changed nothing the porter relies on: it marks a window only on
"ok", and every job is idempotent (see ``helios.porter.state``).

Archive workers are started fresh ("spawn"). Each asks the kernel to kill
it if the porter dies (so a ``kill -9`` of the porter never leaves a worker
writing behind a restarted one), and on SIGTERM finishes the job at hand,
sends its result and exits. With ``workers = 0`` archive jobs run in the porter's process
(``InlinePool``).
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait as wait_connections
from typing import TYPE_CHECKING, Any, Sequence, cast

import msgpack

from helios.index.batches import TOGETHER, gather
from helios.model import Event
from helios.porter.merge import Record

if TYPE_CHECKING:
    from helios.archive.store import Archive
    from helios.index.base import Index

log = logging.getLogger(__name__)

__all__ = ["IndexLoader", "InlinePool", "Job", "Pool", "Resources", "make_pool", "run_job"]

_PR_SET_PDEATHSIG = 1


@dataclass
class Job:
    """What a worker does for one window: ``kind`` is "index" or "archive"."""

    kind: str
    args: dict[str, Any]
    events: Sequence[Record]   # Events, or rows as decoded (an index load takes either; an archive job Events)
    meta: dict[str, Any] = field(default_factory=dict)  # the porter's own bookkeeping, never sent
    started: float = 0.0


class Resources:
    """The index and the archive a worker writes to, opened on first use
    from ``spec`` (plain data, so that it crosses a fork or a pipe)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self._index: Index | None = None
        self._archive: Archive | None = None

    @property
    def index(self) -> Index:
        if self._index is None:
            from helios.index.base import open_index

            s = self.spec
            self._index = open_index(s["index"], s["index_location"], s["index_name"], **s.get("index_options", {}))
        return self._index

    @property
    def archive(self) -> Archive:
        if self._archive is None:
            from helios.porter.archiving import open_archive

            self._archive = open_archive(self.spec)
        return self._archive

    def close(self) -> None:
        for thing in (self._index, self._archive):
            close = getattr(thing, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:  # closing is best effort; the process is ending
                    log.debug("Closing %r failed.", thing, exc_info=True)
        self._index = self._archive = None


def run_job(job: Job, res: Resources) -> Any:
    """Do one job; its value, or an exception for the caller to report."""
    if job.kind == "index":
        # Index.load takes rows as decoded too (its docstring), though its annotation names Events only.
        return res.index.load(job.args["environment"], cast("Sequence[Event]", job.events))
    if job.kind == "archive":
        from helios.porter.archiving import archive_window

        if job.events and type(job.events[0]) is not Event:
            raise ValueError("an archive job takes Events (Merger.events), not rows as decoded")
        return archive_window(res.archive, job.args, cast("Sequence[Event]", job.events))
    raise ValueError(f"unknown job kind {job.kind!r}")


def _events_in(job: Job) -> int:
    return len(job.events)


def _error_text(exc: BaseException) -> str:
    """Our own errors say what happened in a sentence; others need their type."""
    from helios.errors import HeliosError

    return str(exc) if isinstance(exc, HeliosError) else f"{type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------- in-process

class InlinePool:
    """Runs each job at once in this process; the same calls as ``Pool``."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.res = Resources(spec)
        self._done: list[tuple[Job, tuple[str, Any]]] = []
        self.size = 1

    def free(self) -> int:
        return 0 if self._done else 1

    @property
    def busy(self) -> int:
        return len(self._done)

    def submit(self, job: Job) -> None:
        job.started = time.monotonic()
        try:
            result = ("ok", run_job(job, self.res))
        except Exception as exc:  # reported to the porter, which retries with backoff
            log.debug("Job %s failed.", job.kind, exc_info=True)
            result = ("error", _error_text(exc))
        self._done.append((job, result))

    def wait(self, timeout: float | None = None) -> list[tuple[Job, tuple[str, Any]]]:
        done, self._done = self._done, []
        return done

    def close(self) -> None:
        self.res.close()


# --------------------------------------------------------------------------- processes

def _encode(job: Job) -> bytes:
    data: bytes = msgpack.packb([job.kind, job.args, job.events], use_bin_type=True)
    return data


def _decode(data: bytes) -> Job:
    kind, args, rows = msgpack.unpackb(data, raw=False, strict_map_key=False)
    make = Event._make
    return Job(kind, args, [make(r) for r in rows])


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the worker ends when its pipe closes instead


def _worker_main(conn: Connection, spec: dict[str, Any], parent: int) -> None:
    _die_with_parent()
    if os.getppid() != parent:  # the porter died before the line above took effect
        os._exit(0)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the porter, which stops us
    res = Resources(spec)
    try:
        while not stopping.is_set():
            try:
                if not conn.poll(0.2):
                    continue
                data = conn.recv_bytes()
            except (EOFError, OSError):
                break  # the porter is gone
            if not data:
                break  # asked to stop
            try:
                job = _decode(data)
                result = ["ok", run_job(job, res)]
            except Exception as exc:
                result = ["error", _error_text(exc)]
            try:
                conn.send_bytes(msgpack.packb(result, use_bin_type=True))
            except (OSError, ValueError):
                break
    finally:
        res.close()
        conn.close()


class Pool:
    """``size`` worker processes; a job at a time each. A worker that dies
    (killed, out of memory) fails its job and is replaced."""

    def __init__(self, size: int, spec: dict[str, Any]) -> None:
        # "spawn": a fresh interpreter inherits no ZeroMQ context, thread or
        # lock of the porter, so a worker can be started (or replaced) any time.
        self._ctx = multiprocessing.get_context("spawn")
        self.size = size
        self.spec = spec
        self._workers: list[tuple[Any, Connection]] = [self._start(i) for i in range(size)]
        self._jobs: dict[Connection, Job] = {}

    def _start(self, i: int) -> tuple[Any, Connection]:
        ours, theirs = self._ctx.Pipe()
        p = self._ctx.Process(target=_worker_main, args=(theirs, self.spec, os.getpid()),
                              name=f"porter-worker-{i}", daemon=True)
        p.start()
        theirs.close()
        return p, ours

    def _replace(self, conn: Connection) -> None:
        for i, (p, c) in enumerate(self._workers):
            if c is conn:
                c.close()
                if p.is_alive():
                    p.kill()
                p.join()
                self._workers[i] = self._start(i)
                log.warning("An archive worker process died; started another.")
                return

    def free(self) -> int:
        return sum(1 for _, c in self._workers if c not in self._jobs)

    @property
    def busy(self) -> int:
        return len(self._jobs)

    def submit(self, job: Job) -> None:
        conn = next(c for _, c in self._workers if c not in self._jobs)
        job.started = time.monotonic()
        data = _encode(job)
        # The worker has its own copy now: do not hold a window twice.
        job.meta["events"] = len(job.events)
        job.events = []
        try:
            conn.send_bytes(data)
        except (OSError, ValueError):  # the worker died while idle
            self._replace(conn)
            conn = next(c for _, c in self._workers if c not in self._jobs)
            conn.send_bytes(data)
        self._jobs[conn] = job

    def wait(self, timeout: float | None = None) -> list[tuple[Job, tuple[str, Any]]]:
        """Results of the jobs that finished within ``timeout`` (None: at
        least one, if any is running)."""
        if not self._jobs:
            return []
        out = []
        for ready in wait_connections(list(self._jobs), timeout):
            conn = cast(Connection, ready)   # it waits on what it is given: our pipes
            job = self._jobs.pop(conn)
            try:
                status, value = msgpack.unpackb(conn.recv_bytes(), raw=False)
            except (EOFError, OSError) as exc:
                status, value = "error", f"the worker process died ({exc or 'pipe closed'})"
                self._replace(conn)
            out.append((job, (status, value)))
        return out

    def close(self, timeout: float = 60.0) -> None:
        """Let running jobs finish (their results are dropped: call ``wait``
        first to keep them), then stop the workers."""
        for p, conn in self._workers:
            try:
                conn.send_bytes(b"")
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + timeout
        for p, conn in self._workers:
            p.join(max(0.1, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join()
            conn.close()
        self._workers.clear()
        self._jobs.clear()


def make_pool(workers: int, spec: dict[str, Any]) -> Pool | InlinePool:
    return Pool(workers, spec) if workers > 0 else InlinePool(spec)



# --------------------------------------------------------------------------- the index thread

class IndexLoader:
    """Loads windows into the index on a thread of its own: one loading, at
    most ``depth - 1`` queued. ``submit`` when ``free()``; results come from
    ``wait`` in the order the loads finished.

    Windows of one environment queued behind a load go in with it, in one
    call (``helios.index.batches``): a porter that is behind makes bigger
    transactions, one that keeps up loads each window as soon as it is
    merged. The windows of a combined load succeed or fail together, and
    each gets the count of new events of the whole load."""

    def __init__(self, res: Resources, depth: int = 3, together: int = TOGETHER) -> None:
        self.res = res
        self.depth = depth
        self.together = together
        self._todo: queue.Queue[Job | None] = queue.Queue()
        self._done: queue.Queue[tuple[Job, tuple[str, Any]]] = queue.Queue()
        self._pending = 0
        self._thread = threading.Thread(target=self._run, name="porter-index", daemon=True)
        self._thread.start()

    def free(self) -> int:
        return max(0, self.depth - self._pending)

    @property
    def busy(self) -> int:
        return self._pending

    def submit(self, job: Job) -> None:
        self._pending += 1
        job.started = time.monotonic()
        self._todo.put(job)

    def wait(self, timeout: float | None = None) -> list[tuple[Job, tuple[str, Any]]]:
        """Results ready within ``timeout`` (None: at least one, if any job is pending)."""
        out = []
        if self._pending:
            try:
                out.append(self._done.get(timeout=timeout))
            except queue.Empty:
                return []
        while True:
            try:
                out.append(self._done.get_nowait())
            except queue.Empty:
                break
        self._pending -= len(out)
        return out

    def _run(self) -> None:
        job = self._todo.get()
        while job is not None:
            env = job.args

            def ends(j: Job | None) -> bool:    # closing, or another environment: not part of this load
                return j is None or j.args != env

            jobs = gather(job, self._todo, _events_in, limit=self.together, last=ends)
            # The last one taken when it ends the load (None: closing): the next to run, not a part.
            taken = len(jobs) > 1 and ends(jobs[-1])
            after = jobs.pop() if taken else None
            self._run_jobs(jobs)
            job = after if taken else self._todo.get()

    def _run_jobs(self, jobs: list[Job]) -> None:
        together = jobs[0] if len(jobs) == 1 else Job("index", jobs[0].args,
                                                      [e for j in jobs for e in j.events])
        try:
            result = ("ok", run_job(together, self.res))
        except Exception as exc:  # reported to the porter, which retries with backoff
            log.debug("Index load failed.", exc_info=True)
            result = ("error", _error_text(exc))
        for job in jobs:
            if len(jobs) > 1:
                job.meta["loaded_with"] = len(jobs) - 1
            self._done.put((job, result))

    def close(self, timeout: float = 300.0) -> None:
        """Finish what was submitted (call ``wait`` first to keep the results)."""
        self._todo.put(None)
        self._thread.join(timeout)
