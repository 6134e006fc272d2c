"""The tailer: follow files, parse lines in batches, spool them, send each batch to two bucks.

Data flows one way: the ``Watcher``'s readers hand out chunks of lines, the
chunks fill a ``Job`` (what one batch was), the job goes to the encoders
(``helios.tail.encoder``: parse into columns, zip into event rows, encode into
frames), and each job's frames come back in the order they were read: they
are appended to the local ``Spool``, the offsets they cover are committed,
and each frame goes to ``copies`` distinct bucks through the ``Fanout``.

What is never lost:
- An offset is committed only once its frame is in the spool (with the spool
  off: once a buck took it), and positions are saved (spool fsynced first)
  every ``positions_interval`` and at exit. A crash re-reads; ids are derived
  from identity and offset, so what is read twice is deduplicated downstream.
- A batch no buck takes live (all down, or busy longer than ``live_wait``)
  is in the spool; each closed spool bucket is re-sent whole to one random
  buck after its window (plus a jitter), retried until a buck takes it, and
  sent once more before the spool prunes it. Reading never stops for a buck.

Where the CPU goes: parsing and encoding, nine tenths of it, in ``encoders``
worker processes (2 by default), so that a backlog is read on every core of
a small host while this process only reads, spools and sends. Everything
per line happens in C or in one list comprehension per chunk. A job closes
when full or as soon as every file is at its end (a quiet file's line leaves
at once), ``batch_delay`` being only a backstop.

Signals (through ``stop``/``reload``): SIGTERM flushes, saves positions and
exits 0; SIGHUP reloads globs and bucks without losing any position.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import re
import socket
import threading
import time
from pathlib import Path
from typing import Callable

from helios import codec
from helios.errors import HeliosError
from helios.gctune import tune_gc
from helios.model import now_ns
from helios.parsing import containers
from helios.parsing.layouts import speedups_missing
from helios.parsing.profiles import Profiles
from helios.store.atomic import write_atomic
from helios.store.durable import make_dirs
from helios.store.dirlock import lock_dir
from helios.tail import inventory, notify
from helios.tail import positions as positions_file
from helios.tail.encoder import Job, Result, Settings, Workers
from helios.tail.files import Chunk
from helios.tail.resend import Resender
from helios.tail.spool import Spool
from helios.tail.watcher import Options, Watcher
from helios.wire.fanout import Fanout
from helios.wire.sockets import SocketFactory

log = logging.getLogger(__name__)

READ_LIMIT = 256 * 1024  # bytes read from one file per turn: fair to the others
NO_BUCK_S = 5.0  # seconds without any buck connected before the tailer says so
HOUSEKEEPING_S = 0.25
HOUSEKEEPING_IDLE_S = 1.0  # s between housekeeping turns while nothing is read (resends, parking, links)
CREATED_SETTLE_S = 0.2  # s from a file's creation (inotify) to the scan that follows it
IDLE_SAVE_S = 300.0  # s between looks at an idle tailer's positions and inventory (only "seen" times move)
PARKED_SLICE = 256  # parked files looked at per housekeeping turn in that look (~10 us each)
INVENTORY_EVERY = 10.0  # s between inventory records of a content whose size or offset alone moved
SAFETY_SLICE = 64       # open files looked at per safety slice with inotify (~1 ms)
INVENTORY_SLICE = 100   # inventory records made per loop turn (~5 ms); the rest at the next turns




_SAID: set[int] = set()
FD_RESERVE = 64  # descriptors kept for sockets, the spool, positions, inotify, encoders' pipes


def fd_cap(max_open: int) -> int:
    """The readers the descriptor limit allows open at once: the soft limit
    (``ulimit -n``) is raised toward the hard one if it is short of
    ``max_open`` (plus FD_RESERVE); if even that is short, fewer files are
    kept open (the others are parked, which costs nothing while they are
    idle, and new ones wait parked for a descriptor) and the tailer says so."""
    import resource

    need = max_open + FD_RESERVE
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < need:
            want = need if hard == resource.RLIM_INFINITY else min(need, hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
    except (ValueError, OSError):
        soft = resource.RLIM_INFINITY
    if soft == resource.RLIM_INFINITY:
        return 1 << 30
    fit = max(8, soft - FD_RESERVE)
    if fit < max_open and fit not in _SAID:
        _SAID.add(fit)
        log.warning("max_open_files is %d but the descriptor limit (ulimit -n) is %d: at most %d files are "
                    "kept open, the others parked.", max_open, soft, fit)
    return fit


class Tailer:
    def __init__(self, cfg, factory: SocketFactory | None = None,
                 reload: Callable[[], object] | None = None) -> None:
        self.cfg = cfg
        self.factory = factory or SocketFactory()
        self.reload_config = reload
        self.stopping = threading.Event()
        self.reload_asked = threading.Event()
        self.job = Job()
        self.workers: Workers | None = None
        self.counts = {"lines": 0, "batches": 0, "bytes": 0, "live_unsent": 0, "resent_buckets": 0,
                       "line_bytes": 0, "events_sent": 0, "bytes_sent": 0, "dropped": 0}
        self.configure(cfg)

    def configure(self, cfg) -> None:
        self.cfg = cfg
        self.host = cfg.host or socket.gethostname()
        self.settings = Settings(cfg.environment, self.host, cfg.format, cfg.app, cfg.timezone, cfg.batch_events,
                                 cfg.parse, self.container_roots(cfg))
        self.multiline = re.compile(cfg.multiline_start.encode()) if cfg.multiline_start else None
        self.ml_held: dict[bytes, tuple] = getattr(self, "ml_held", {})
        # Container logs (README: Containers and Kubernetes): records of a line not ended yet, per content.
        self.containers = containers.Sources(cfg.kubernetes_root, cfg.docker_root) if cfg.kubernetes else None
        self.ct_held: dict[bytes, tuple] = getattr(self, "ct_held", {})
        # Any other followed file is a container log if its first line is a record (or a
        # [[tailer.parse]] table says format = "docker"/"cri"): content key -> True/False, decided once.
        self.ct_profiles = Profiles(cfg.format, "", "", "UTC", cfg.parse)
        self.ct_kind: dict[bytes, bool] = {}

    @staticmethod
    def container_roots(cfg) -> tuple[str, ...]:
        """With kubernetes on, the container log roots (each ending in "/"): their files' frames say input "container"."""
        if not cfg.kubernetes:
            return ()
        roots = (cfg.kubernetes_root, cfg.docker_root)
        return tuple(os.path.join(os.path.abspath(r), "") for r in roots if r)

    def patterns(self, cfg) -> list[str]:
        """The globs followed: the configured ones, and the container roots' with kubernetes on."""
        out = list(cfg.paths)
        if cfg.kubernetes:
            out += [g for g in containers.Sources(cfg.kubernetes_root, cfg.docker_root).globs() if g not in out]
        return out

    def stop(self) -> None:
        """Finish cleanly; safe from a signal handler."""
        self.stopping.set()
        if getattr(self, "notifier", None) is not None:
            self.notifier.wake()

    def reload(self) -> None:
        """Re-read the config at the next turn; safe from a signal handler."""
        self.reload_asked.set()
        if getattr(self, "notifier", None) is not None:
            self.notifier.wake()

    # --- the loop ---

    def run(self) -> None:
        cfg = self.cfg
        state = Path(cfg.state_dir)
        try:
            make_dirs(state)  # 0750 whatever the umask
        except OSError as exc:
            raise HeliosError(f"cannot use the tailer's state directory {state}: {exc}") from None
        self.lock = lock_dir(state, "tailer")
        self.positions_path = state / "positions.json"
        self.positions = positions_file.load(self.positions_path)
        self.saved_snapshot = None
        self.saver = positions_file.Saver(self.positions_path)  # writes in its own thread
        self.inventory_sent: dict[str, tuple] = {}  # key hex -> the record last sent (all again after a start)
        self.inventory_seq = 0
        self.inventory_waiting: dict = {}  # key hex -> position whose record may have changed, not sent yet
        self.spool = Spool(state / "spool", cfg.spool_window, max_bytes=cfg.spool_max_bytes,
                           max_age=cfg.spool_max_age, jitter=cfg.resend_jitter) if cfg.spool else None
        self.watcher = Watcher(self.patterns(cfg), self.positions, self.options(cfg), scope=self.host)
        self.journal = self.open_journal(cfg)
        self.notifier = notify.open_notifier(cfg.watch)
        self.aliases: dict[str, str] = {}  # real path -> followed symlink (inotify)
        self.unsettled: dict[int, object] = {}  # id -> current reader not at its end or with a part line
        self.dir_of: dict[str, str] = {}        # followed path -> its directory (watch_dirs)
        self.link_targets: dict[str, str] = {}  # followed symlink -> its target (watch_dirs)
        self.parked_round: list[str] = []       # parked paths still to look at in this round (look_at_parked)
        self.safety_round: list = []            # open files still to look at in this safety round (safety_slice)
        self.inventory_more = False             # records wait for the next slice (send_inventory)
        self.fanout = Fanout(self.factory, list(cfg.bucks), cfg.copies, hwm=cfg.sndhwm, monitor=True)
        self.resender = Resender(self.factory, list(cfg.bucks), self.spool)
        next_scan = next_house = next_save = next_full = next_idle_save = 0.0
        next_new = float("inf")     # when the files inotify said were created are looked at
        self.created_todo: set[str] = set()
        self.saved_moved, last_moved = None, 0.0
        self.parked_todo: list = []     # parked files still to look at in this round (remember_parked)
        self.took = self.took_at_house = 0
        self.workers = Workers(self.settings, self.encoders(cfg))
        # Wait for the encoders to be up (an empty job each) before the first
        # scan: otherwise the first turn blocks on their start-up (a second on
        # a busy host), and a file rotated again and again meanwhile is seen late.
        for _ in self.workers.conns:
            self.deliver(self.workers.submit(Job()))
        self.deliver(self.workers.drain())
        # Said once the encoders are up (seconds on a loaded host): operators and
        # tests read it as "ready"; the first scan follows at once.
        log.info("Tailer on %s follows %s and sends each batch to %d of %s (spool %s).",
                 self.host, ", ".join(self.watcher.patterns) or "no files", self.fanout.copies, ", ".join(cfg.bucks),
                 "on in " + str(state / "spool") if self.spool else "off")
        missing = speedups_missing()
        if missing:
            log.warning("Tailer: %s.", missing)
        tune_gc()
        try:
            self.start_metrics()
            while not self.stopping.is_set():
                now = time.monotonic()
                if self.reload_asked.is_set():
                    self.apply_reload()
                    next_scan = now  # (and new globs' directories watched)
                readers = None  # every file
                overflow = False
                if self.notifier is not None:
                    # inotify (README: Many files): only files that changed, are being read,
                    # or wait for something, and a slice of the others (the safety pass).
                    changes = self.notifier.take()
                    overflow = changes.overflow
                    if overflow:
                        next_scan = now
                    elif changes.created:
                        # Not at once: a copy (copytruncate) caught half-written would not be
                        # known by its first bytes yet; as soon as polling would have seen it.
                        settle = now + min(self.cfg.rescan_interval, CREATED_SETTLE_S)
                        if changes.rescan or not changes.created_paths:
                            next_scan = min(next_scan, settle)
                        else:
                            # New files only: those are looked at, not every file of every glob.
                            self.created_todo |= changes.created_paths
                            next_new = min(next_new, settle)
                full_scan = now >= next_scan
                if not full_scan and self.created_todo and now >= next_new:
                    todo, self.created_todo, next_new = self.created_todo, set(), float("inf")
                    full_scan = not self.watcher.follow_new(todo)
                if full_scan:
                    self.created_todo, next_new = set(), float("inf")
                    # With inotify, parked files are not all looked at here (a stat each:
                    # 10,000 cost ~65 ms): events wake them, and look_at_parked goes round
                    # (all of them after lost events).
                    self.watcher.scan(unpark_all=self.notifier is None or overflow)
                    if self.notifier is not None and self.notifier.polled:
                        polled = self.notifier.polled
                        self.watcher.unpark({p for p in self.watcher.parked if os.path.dirname(p) in polled})
                    self.say_what_matches()
                    interval = self.cfg.rescan_interval
                    if self.notifier is not None:
                        if not (self.notifier.polled or self.notifier.missing):
                            # Creations wake a scan; this one is the safety net. (A glob's directory
                            # that does not exist yet has no watch: it is looked for every interval.)
                            interval *= 60
                        if self.watch_dirs():
                            interval = 0  # new directories: scan once more, for files made before their watch
                    next_scan = now + interval
                if self.notifier is not None:
                    # (Parked files that changed are reopened here; files the scan just
                    # opened are read now, not at the safety pass.)
                    readers = self.changed_readers(changes.paths)
                    if overflow or next_full == 0.0:
                        readers = None  # events were lost (or this is the first turn): every file
                        next_full = now + self.cfg.watch_safety_poll
                    elif now >= next_full:
                        # The safety pass, a slice at a time: every open file is looked
                        # at every watch_safety_poll, never all of them in one turn.
                        readers += self.safety_slice(readers)
                        next_full = now + self.safety_step()
                busy = self.pass_over_files(now, readers)
                if self.journal is not None:
                    busy = self.read_journal() or busy
                if not busy:
                    # Every file is at its end: nothing waits for more.
                    self.flush()
                    if self.notifier is None:
                        self.stopping.wait(self.cfg.poll_interval)
                    elif not self.stopping.is_set():
                        wake = min(next_full, next_scan, next_house, next_save, next_new)
                        if self.inventory_more:
                            wake = now  # (a look at the events, then the next slice)
                        if self.notifier.polled:
                            wake = min(wake, now + self.cfg.poll_interval)
                        # (journalctl's pipe wakes it too: new entries are read at once)
                        self.notifier.wait(wake - time.monotonic(),
                                           self.journal.fileno() if self.journal is not None else None)
                elif self.job.chunks and time.monotonic() - self.job.opened >= self.cfg.batch_delay:
                    self.dispatch()
                self.deliver(self.workers.ready())
                now = time.monotonic()
                if now >= next_house:
                    if self.ml_held:
                        self.release_multiline(self.cfg.partial_flush)
                    if self.ct_held:
                        self.release_containers(self.cfg.partial_flush)
                    self.resend_spool()
                    self.fanout.watch()
                    self.say_if_no_buck(now)
                    self.watcher.park_idle(now)
                    if self.watcher.behind:
                        self.watcher.unpark(set(self.watcher.behind))
                    if self.parked_todo:
                        self.remember_parked()
                    # Quiet (nothing read since the last turn, nothing held or behind):
                    # the next turn in a second, so an idle tailer wakes seldom.
                    quiet = (self.took == self.took_at_house and not self.ml_held and not self.ct_held
                             and not self.parked_todo and not self.watcher.behind)
                    self.took_at_house = self.took
                    step = HOUSEKEEPING_IDLE_S if quiet else HOUSEKEEPING_S
                    if self.notifier is not None and self.watcher.parked:
                        self.look_at_parked(step)
                    next_house = now + step
                if self.watcher.dirty:
                    # A new content or an end of reading: saved and sent at
                    # once, so a crash a moment later still knows it. (Parked files
                    # are not looked at: with thousands, that walk alone blocks the loop.)
                    self.save(parked=False)
                    self.send_inventory()
                elif self.inventory_more:
                    self.send_inventory()   # the next slice (thousands of records after a start)
                if now >= next_save:
                    # Idle (nothing read, sent, re-sent or found for longer than the
                    # inventory's own delay): the positions and the inventory cannot
                    # have moved; looked at again every IDLE_SAVE_S.
                    moved = self.moved()
                    if moved != self.saved_moved:
                        self.saved_moved, last_moved = moved, now
                    if now >= next_idle_save:
                        if next_idle_save == 0.0:
                            self.save()     # the first, at start, at once: every file was just met
                            # What the start made for every file (readers, entries) lives on: out
                            # of the collector's view, so no collection walks 10,000 files' worth.
                            gc.freeze()
                        else:
                            # The parked files too: a slice each housekeeping turn (remember_parked).
                            self.parked_todo = list(self.watcher.parked.values())
                            self.save(parked=False, full=True)
                        self.send_inventory()
                        next_idle_save = now + IDLE_SAVE_S
                    elif now - last_moved <= INVENTORY_EVERY + 2 * self.cfg.positions_interval:
                        self.save(parked=False)
                        self.send_inventory()
                    self.write_stats(later=True)
                    next_save = now + self.cfg.positions_interval
        finally:
            self.release_multiline(0)
            if self.ct_held:
                # Unfinished lines of files still followed wait for the next run (their
                # records are read again); those of files let go are sent now.
                self.release_containers(0, gone_only=True)
            self.flush(final=True)
            self.workers.close()
            if self.journal is not None:
                self.journal.close()
            self.save()
            self.send_inventory(final=True)
            # The last save is on disk before exit: positions are what a restart reads.
            self.saver.close()
            self.watcher.close()
            if self.notifier is not None:
                self.notifier.close()
            if self.spool:
                self.spool.close()
            self.fanout.close(linger_ms=2000)
            self.resender.close()
            self.write_stats()
            if self.metrics is not None:
                self.metrics.close()
            log.info("Tailer stopped: %s; positions saved to %s.", self.summary(), self.positions_path)

    def summary(self) -> str:
        """What was read and what reached a buck, told apart: lines left to
        the spool (no buck took them live) are not said to be sent."""
        c = self.counts
        text = f"read {c['lines']:,} lines in {c['batches']:,} batches, {c['events_sent']:,} events sent live to a buck"
        if c["live_unsent"] and self.spool is not None:
            text += (f"; {c['live_unsent']:,} batch(es) no buck took live are in the spool "
                     f"({Path(self.cfg.state_dir) / 'spool'}), sent when a buck answers")
        return text

    def say_what_matches(self) -> None:
        """Log, once and then at each change, the paths that match no file
        (a typo, a log not written yet, a directory that does not exist)."""
        hits = getattr(self.watcher, "pattern_hits", {})
        said = getattr(self, "_said_matches", {})
        for pattern, n in hits.items():
            state = "none" if n == 0 else "some"
            if said.get(pattern) == state:
                continue
            if state == "none":
                parent = os.path.dirname(pattern) or "."
                why = (f"the directory {parent} does not exist" if not any(c in parent for c in "*?[")
                       and not os.path.isdir(parent) else "no file matches it")
                log.warning("Nothing to follow at %s: %s (yet); looked for again every %g s.",
                            pattern, why, self.cfg.rescan_interval)
            elif pattern in said:
                log.info("%s now matches %d file(s).", pattern, n)
            said[pattern] = state
        self._said_matches = said

    def say_if_no_buck(self, now: float) -> None:
        """Log once when no buck has been connected for NO_BUCK_S seconds, and
        once when one answers again (each buck's losses are logged by the Fanout)."""
        up = sum(self.fanout.connected.values())
        since = getattr(self, "_no_buck_since", None)
        if up:
            if getattr(self, "_no_buck_said", False):
                log.info("A buck answers again (%d of %d connected): the spool's batches are re-sent to it.",
                         up, len(self.fanout.connected))
            self._no_buck_since, self._no_buck_said = None, False
            return
        if since is None:
            self._no_buck_since = now
        elif not getattr(self, "_no_buck_said", False) and now - since >= NO_BUCK_S:
            self._no_buck_said = True
            log.warning("No buck answers at %s (for %.0f s): %s", ", ".join(self.fanout.connected), now - since,
                        "lines read go to the spool and are sent when a buck answers." if self.spool is not None
                        else "with the spool off, reading waits for a buck.")

    @staticmethod
    def encoders(cfg) -> int:
        """Encoder processes: none when only the journal is read (it has its own: helios.tail.journal_reader)."""
        return cfg.encoders if cfg.paths or cfg.kubernetes else 0

    @staticmethod
    def options(cfg) -> Options:
        return Options(start_at_end=cfg.start_at == "end", max_line=cfg.max_line_bytes,
                       partial_flush=cfg.partial_flush, rotate_wait=cfg.rotate_wait,
                       max_open=min(cfg.max_open_files, fd_cap(cfg.max_open_files)),
                       fd_cap=fd_cap(cfg.max_open_files))

    def moved(self) -> tuple:
        """Changes whenever the positions or the inventory may have: chunks
        taken, batches delivered, spool buckets re-sent, contents or
        readers added or let go."""
        c, w = self.counts, self.watcher
        return (self.took, c["batches"], c["lines"], c["resent_buckets"], len(self.positions.files),
                len(self.positions.spool), len(w.current), len(w.draining), len(w.parked), len(self.ct_held))

    def changed_readers(self, paths: set[str]) -> list:
        """The readers to look at after inotify events on ``paths``: those,
        those not at their end, those with a part line or a wait running
        (rotated, compressed), and those in polled directories. Parked files
        that changed are reopened first."""
        w, polled = self.watcher, self.notifier.polled
        if paths and self.aliases:
            paths = paths | {self.aliases[p] for p in paths if p in self.aliases}
        if paths and w.parked:
            back = paths & w.parked.keys()
            if back:
                w.unpark(back)
        # Work in proportion to the events, not to the open files: the draining
        # readers (few), those the last passes left unsettled (not at their end,
        # a part line), those opened or reopened since, and those at ``paths``.
        unsettled, current = self.unsettled, w.current
        for f in current.take_added():
            unsettled[id(f)] = f
        out = list(w.draining)
        picked = {id(f) for f in out}
        for i, f in list(unsettled.items()):
            if current.get(f.path) is not f:
                del unsettled[i]    # let go of, parked, or renamed: found by other means
            elif i not in picked:
                picked.add(i)
                out.append(f)
        for path in paths:
            f = current.get(path)
            if f is not None and id(f) not in picked:
                picked.add(id(f))
                out.append(f)
        if polled:
            out += [f for f in current.values() if id(f) not in picked and os.path.dirname(f.path) in polled]
        return out

    def watch_dirs(self) -> int:
        """One inotify watch per directory of followed files, and on each
        level of the globs where new files or directories may appear; how many are new."""
        w, n = self.watcher, self.notifier
        # Each path's directory is worked out once (10,000 dirname calls cost ~13 ms),
        # and a watch already held costs a dict look-up: a rescan adds what is new.
        dir_of, paths = self.dir_of, [f.path for f in w.draining] + list(w.current) + list(w.parked)
        if len(dir_of) > 2 * len(paths) + 1000:
            dir_of.clear()
        for path in paths:
            if path not in dir_of:
                dir_of[path] = os.path.dirname(path) or "."
        dirs = {dir_of[p] for p in paths}
        # A followed symlink (/var/log/containers/*.log): its target's directory is
        # where the writes are seen; events there are mapped back to the link. (The
        # scan says which paths are links; each target is resolved once.)
        targets = self.link_targets
        for path in w.links.difference(targets):
            targets[path] = os.path.realpath(path)
        for path in set(targets).difference(w.links):
            del targets[path]
        self.aliases = {real: path for path, real in targets.items()}
        dirs.update(os.path.dirname(real) for real in targets.values())
        for pattern in w.patterns:
            dirs.update(notify.pattern_dirs(pattern))
        before = n.watches()
        for d in dirs:
            n.watch(d)
        return n.watches() - before

    def pass_over_files(self, now: float, readers: list | None = None) -> bool:
        """Read one turn from every file (or from ``readers``); True if any file had more to give."""
        busy = False
        unsettled = self.unsettled
        if readers is None:
            # Every file: what is unsettled, or was opened since, is known afresh.
            readers = self.watcher.readers()
            unsettled.clear()
            self.watcher.current.take_added()
        for f in readers:
            try:
                chunks = f.read(READ_LIMIT, now)
                for chunk in chunks:
                    self.take(chunk)
                if f.at_eof:
                    for chunk in self.watcher.at_end(f, now):
                        self.take(chunk)
                else:
                    busy = True
            except OSError as exc:
                log.warning("Cannot read %s: %s; it will be looked at again.", f.path, exc)
            if f.fd is not None and (not f.at_eof or f.pending):
                unsettled[id(f)] = f    # read again at the next turn whatever inotify says
            else:
                unsettled.pop(id(f), None)
        return busy

    # --- lines to rows ---

    def take(self, chunk: Chunk, grouped: bool = False) -> None:
        """Add a chunk to the job at hand; a full job goes to be encoded."""
        if not grouped:
            meta = self.container_meta(chunk)
            if meta is not None:
                # No record to join in this chunk nor held from the last: passed on as it
                # is, the parser unwraps each record (the same events, at plain lines'
                # speed), with the container's fields for every line.
                if (chunk.messages is not None or chunk.key in self.ct_held
                        or not containers.nothing_to_join(chunk.data)):
                    chunk = self.join_container(chunk, meta)
                    if chunk is None:
                        return
                elif meta:
                    chunk = Chunk(chunk.path, chunk.key, chunk.offset, chunk.end, chunk.data, fields=[meta])
                grouped = True
        if self.multiline is not None and chunk.messages is None and not grouped:
            chunk = self.group_multiline(chunk)
            if chunk is None:
                return
        self.took += 1
        received, opened = now_ns(), time.monotonic()
        container = self.ct_kind.get(chunk.key, False)   # found a container log (container_meta): input "container"
        while chunk is not None:    # a job is cut at batch_events lines: one full frame
            chunk = self.job.add(chunk, received, opened, self.cfg.batch_events - self.job.lines, container)
            if self.job.lines >= self.cfg.batch_events or self.job.nbytes >= self.cfg.batch_bytes:
                self.dispatch()

    def group_multiline(self, chunk: Chunk) -> Chunk | None:
        """Join continuation lines to the line that starts their event. The
        last event of a chunk may go on in the next one, so it is held until
        a start line follows or it has waited ``partial_flush`` seconds; its
        offset is not committed before it is handed out."""
        start = self.multiline.match
        held = self.ml_held.pop(chunk.key, None)
        items: list[tuple[int, bytes, None]] = [held[0]] if held else []
        off = chunk.offset
        for line in chunk.data[:-1].split(b"\n"):
            if items and not start(line):
                o, m, _ = items[-1]
                items[-1] = (o, m + b"\n" + line, None)
            else:
                items.append((off, line, None))
            off += len(line) + 1
        last = items.pop()
        self.ml_held[chunk.key] = (last, chunk.path, time.monotonic())
        return Chunk.events(chunk.path, chunk.key, last[0], items) if items else None

    def container_meta(self, chunk: Chunk) -> dict | None:
        """The fields of a container log's events (those its path gives under
        the --kubernetes roots, else none), or None if ``chunk``'s file is not
        one. Elsewhere a file is one if its first line is a Docker json-file or
        CRI record (README: Containers anywhere), decided once per content."""
        if self.containers is not None:
            meta = self.containers.fields(chunk.path)
            if meta is not None:
                return meta
        kind = self.ct_kind.get(chunk.key)
        if kind is None:
            mode = self.ct_profiles.container_format(chunk.path)
            kind = mode == "join" or (mode == "auto" and containers.looks_like(self.first_line(chunk)))
            if len(self.ct_kind) > 100_000:
                self.ct_kind.clear()
            self.ct_kind[chunk.key] = kind
            if kind:
                log.info("%s holds container records: split lines are joined.", chunk.path)
        return {} if kind else None

    @staticmethod
    def first_line(chunk: Chunk) -> bytes:
        """The first line of ``chunk``'s file: read from the file when the
        chunk starts further on (after a restart), so that the same file is
        always judged by the same line; the chunk's own first line if the
        file cannot be read (or has no newline in its first 64 KiB)."""
        own = chunk.messages[0] if chunk.messages is not None else chunk.data.split(b"\n", 1)[0]
        if chunk.offset == 0:
            return own
        try:
            with open(chunk.path, "rb") as f:
                head = f.read(64 * 1024)
        except OSError:
            return own
        return head.split(b"\n", 1)[0] if b"\n" in head else own

    def join_container(self, chunk: Chunk, meta: dict) -> Chunk | None:
        """Container records to events: partial records (CRI ``P``, Docker
        ``log`` without its newline) joined with the rest of their line, each
        event under the offset of its first record, with the container's
        fields. Records of a line not ended yet are held, and the chunk
        commits only up to the first of them: a restart reads them again and
        joins them the same way (lines of the other stream after them are read
        again too, under the same ids: deduplicated downstream)."""
        held = self.ct_held.pop(chunk.key, None)
        pending = held[0] if held else []
        if chunk.messages is None:
            lines, off, marks = [], chunk.offset, {}
            for line in chunk.data[:-1].split(b"\n"):
                lines.append((off, line))
                off += len(line) + 1
        else:
            lines = list(zip(chunk.offsets, chunk.messages))
            marks = {o: f for o, f in zip(chunk.offsets, chunk.fields) if f}
        joined, pending = containers.join_lines(pending, lines)
        if pending:
            since = held[2] if held and held[0] and held[0][0] == pending[0] else time.monotonic()
            self.ct_held[chunk.key] = (pending, chunk.path, since, chunk.end)
        return self.container_chunk(chunk.path, chunk.key, pending[0][0] if pending else chunk.end,
                                    joined, meta, marks)

    @staticmethod
    def container_chunk(path: str, key: bytes, end: int, joined: list, meta: dict,
                        marks: dict | None = None) -> Chunk | None:
        if not joined:
            return None
        fields = [{**meta, **j.fields, **(marks.get(j.offset) or {} if marks else {})} for j in joined]
        return Chunk(path, key, joined[0].offset, end, b"".join(j.head.replace(b"\n", b" ") + b"\n" for j in joined),
                     [j.message for j in joined], [j.offset for j in joined], fields)

    def release_containers(self, older_than: float, gone_only: bool = False) -> None:
        """Records of a line whose end never came within ``older_than``
        seconds: handed out as one event per stream, marked partial (with
        ``gone_only``, only those of files no longer followed)."""
        now = time.monotonic()
        w = self.watcher
        followed = {f.key for f in w.readers() + list(w.parked.values())} if gone_only else set()
        for key, (pending, path, since, end) in list(self.ct_held.items()):
            if now - since >= older_than and key not in followed:
                del self.ct_held[key]
                meta = self.containers.fields(path) if self.containers else None
                chunk = self.container_chunk(path, key, end, containers.flush_pending(pending), meta or {})
                if chunk is not None:
                    self.take(chunk, grouped=True)

    def release_multiline(self, older_than: float) -> None:
        """Hand out held multiline events that waited long enough (all with 0)."""
        now = time.monotonic()
        for key, (item, path, since) in list(self.ml_held.items()):
            if now - since >= older_than:
                del self.ml_held[key]
                end = item[0] + len(item[1]) + 1
                self.take(Chunk.events(path, key, end, [item]), grouped=True)

    # --- batches out ---

    def dispatch(self) -> None:
        """Hand the job at hand to the encoders; deliver what they finished."""
        if self.job.chunks:
            job, self.job = self.job, Job()
            self.deliver(self.workers.submit(job))

    def flush(self, final: bool = False) -> None:
        """Dispatch the job at hand and deliver everything still being encoded."""
        self.dispatch()
        self.deliver(self.workers.drain(), final)

    def deliver(self, done: list[tuple[Job, Result]], final: bool = False) -> None:
        """Encoded jobs, in the order they were read: spool, commit, send."""
        counts = self.counts
        for job, result in done:
            # Each frame has its environment (a [[tailer.parse]] table's, or a rule's, or the tailer's).
            sizes = result.sizes
            if self.spool is not None:
                for frame, env in zip(result.frames, result.envs):
                    self.spool.append(env, frame)
                self.commit(job)
                for frame, n in zip(result.frames, sizes):
                    if self.fanout.send(frame, wait=0 if final else self.cfg.live_wait):
                        counts["events_sent"] += n
                        counts["bytes_sent"] += len(frame)
                    else:
                        counts["live_unsent"] += 1
            else:
                # Nowhere else to keep it: wait for a buck (bounded at shutdown).
                sent = 0
                for frame, n in zip(result.frames, sizes):
                    if not self.fanout.send_until(frame, None if final else self.stopping, 5.0 if final else None):
                        break
                    sent += 1
                    counts["events_sent"] += n
                    counts["bytes_sent"] += len(frame)
                if sent == len(result.frames):
                    self.commit(job)
                else:
                    log.error("Tailer lost %d batch(es) of %d lines: no buck took them before shutdown "
                              "(turn the spool on to keep such batches).", len(result.frames) - sent, result.lines)
            counts["lines"] += result.lines
            counts["line_bytes"] += result.line_bytes
            counts["dropped"] += result.dropped     # lines a [[tailer.parse]] drop matched
            counts["batches"] += len(result.frames)
            counts["bytes"] += sum(map(len, result.frames))

    # --- the systemd journal (helios.tail.journal_reader) ---

    def open_journal(self, cfg):
        if not (cfg.journal or cfg.journal_dir):
            return None
        from helios.tail.journal import Filter
        from helios.tail.journal_reader import JournalWorker, source_name

        filt = Filter(tuple(cfg.journal_include_units), tuple(cfg.journal_include_identifiers),
                      tuple(cfg.journal_exclude_units), tuple(cfg.journal_exclude_identifiers))
        # Parsed and encoded in a worker process: this loop takes frames (helios.tail.journal_reader).
        reader = JournalWorker(cfg.journal_dir, self.positions.journal.get(source_name(cfg.journal_dir), {}),
                               cfg.journal_start_at or cfg.start_at, filt, self.host, cfg.app,
                               max_value=cfg.max_line_bytes, environment=cfg.environment,
                               batch_events=cfg.batch_events)
        log.info("Tailer reads %s with %s.", cfg.journal_dir or "the local journal", " ".join(reader.command()))
        return reader

    @staticmethod
    def journal_keys(cfg) -> tuple:
        return (cfg.journal, cfg.journal_dir, cfg.journal_include_units, cfg.journal_include_identifiers,
                cfg.journal_exclude_units, cfg.journal_exclude_identifiers, cfg.host, cfg.app,
                cfg.environment, cfg.batch_events, cfg.max_line_bytes)   # (the last three: its worker encodes)

    def reload_journal(self, cfg) -> None:
        """A reload that changes the journal keys starts journalctl again from
        the committed cursor (what was read is spooled already: nothing waits)."""
        if self.journal is not None:
            self.journal.close()
            self.journal = None
        try:
            self.journal = self.open_journal(cfg)
        except HeliosError as exc:
            log.error("The journal is not read after the reload: %s", exc)

    def read_journal(self) -> bool:
        """Read one turn of journal entries; spool them, then commit their
        cursor, then send them (as ``deliver`` does for lines). True if more waits."""
        j = self.journal
        frames, sizes, cursor, more = j.read_frames(now_ns())
        position = j.position()   # taken with the frames: what is committed once they are spooled
        self.counts.update({"journal_" + k: v for k, v in j.counts.items()})
        if not frames and cursor == self.positions.journal.get(j.source, {}).get("cursor", ""):
            return more
        env, counts = self.cfg.environment, self.counts
        if self.spool is not None:
            for frame in frames:
                self.spool.append(env, frame)
            self.positions.journal[j.source] = position
            for frame, k in zip(frames, sizes):
                if self.fanout.send(frame, wait=self.cfg.live_wait):
                    counts["events_sent"] += k
                    counts["bytes_sent"] += len(frame)
                else:
                    counts["live_unsent"] += 1
        else:
            for frame, k in zip(frames, sizes):
                if not self.fanout.send_until(frame, self.stopping):
                    # Stopping: the cursor stays before these entries; they are read again at the next start.
                    return False
                counts["events_sent"] += k
                counts["bytes_sent"] += len(frame)
            self.positions.journal[j.source] = position
        counts["batches"] += len(frames)
        counts["bytes"] += sum(map(len, frames))
        return more

    def commit(self, job: Job) -> None:
        for key, end in job.commits.items():
            self.watcher.commit(key, end)

    def resend_spool(self) -> None:
        """Queue each closed spool bucket for one re-send after its window, and
        once more before the spool prunes it; send a slice of the queue."""
        if self.spool is not None:
            # What was re-sent is kept in the positions file, saved after the spool.
            self.counts["resent_buckets"] += self.resender.tick(self.positions.spool, time.time())

    def start_metrics(self) -> None:
        """Serve the Prometheus endpoint when [tailer] metrics is set (read at
        scrape time from the counts: nothing is added to the read loop)."""
        self.metrics = None
        self.started = time.time()
        if self.cfg.metrics:
            from helios import metrics  # only when used: it costs start-up time

            self.metrics = metrics.Endpoint.start("tailer", self.host, self.cfg.metrics,
                                                  metrics.tailer_families(self))
        self.write_stats()

    def stats(self) -> dict:
        w = self.watcher
        return {"host": self.host, "pid": os.getpid(), "started": self.started, "updated": time.time(),
                "state_dir": self.cfg.state_dir, "metrics": self.metrics.address if self.metrics else None,
                "files": len(w.current) + len(w.draining) + len(w.parked),
                "bucks_connected": sum(self.fanout.connected.values()), **self.counts}

    def write_stats(self, later: bool = False) -> None:
        """STATE_DIR/stats.json, for the operator tools (not durable: a guide, not state).
        ``later``: written by the positions' saver thread (its rename can wait
        behind the positions' fsync, the loop does not)."""
        if getattr(self, "started", None) is None:
            return  # stopped before it started
        if later:
            self.saver.write_later(Path(self.cfg.state_dir) / "stats.json", json.dumps(self.stats()).encode())
            return
        try:
            write_atomic(Path(self.cfg.state_dir) / "stats.json", json.dumps(self.stats()).encode(),
                         durable=False)
        except OSError as exc:
            log.warning("Cannot write the tailer's stats file: %s.", exc)

    def send_inventory(self, final: bool = False) -> None:
        """Send the inventory records that changed (every one after a start),
        spooled and sent like events: at once when a content is new, seen at
        another path or ended; when only its size or offset moved, at most
        every ``INVENTORY_EVERY`` seconds (and at exit)."""
        records = []
        now = time.monotonic()
        self.inventory_more = False
        journal = self.journal.inventory(self.positions.journal.get(self.journal.source, {})) if self.journal else []
        # Only the contents whose record may have changed since the last look
        # (every one after a start); those held back by INVENTORY_EVERY wait.
        touched = self.inventory_waiting
        touched.update(self.positions.take_inventory_touched())
        files = self.positions.files
        for key, p in list(touched.items()) + journal:
            if len(records) >= INVENTORY_SLICE and not final:
                # The rest stay in ``touched``: the loop sends the next slice at its next
                # turn, after a look at the files (10,000 records cost ~0.5 s at once).
                self.inventory_more = True
                break
            if key in touched and files.get(key) is not p:
                del touched[key]    # let go of
                continue
            major = (tuple(p.paths), p.first, p.end, p.detail)
            minor = (p.size, p.offset)
            sent = self.inventory_sent.get(key)
            if sent is not None:
                if sent[0] == major and sent[1] == minor:
                    touched.pop(key, None)
                    continue
                if sent[0] == major and now - sent[2] < INVENTORY_EVERY and not final:
                    continue        # (stays in touched: looked at again next time)
            touched.pop(key, None)
            self.inventory_sent[key] = (major, minor, now)
            self.inventory_seq += 1
            records.append(inventory.Record(bytes.fromhex(key), tuple(p.paths), p.size, p.offset, p.first,
                                            p.end, p.detail, self.inventory_seq))
        if not records:
            return
        wall = now_ns()
        env = self.cfg.environment
        for i in range(0, len(records), 500):
            frame = codec.encode_events(env, self.host, [inventory.to_event(r, self.host, wall, env)
                                                         for r in records[i:i + 500]], input="inventory")
            if self.spool is not None:
                # Never waits (not even for the bucks to connect): the spool re-sends it.
                self.spool.append(env, frame)
                self.fanout.try_send(frame)
            elif not self.fanout.send(frame, wait=self.cfg.live_wait):
                log.warning("No buck took %d inventory record(s); they are sent again after a restart.",
                            len(records[i:i + 500]))

    def save(self, parked: bool = True, force: bool = False, full: bool | None = None) -> None:
        """Spool first, then positions: an offset never runs ahead of its data.
        Skipped when nothing moved (unless ``force``), so an idle tailer does
        not fsync. Parked files are looked at with ``parked`` only (their
        "seen" time alone moves), open ones that did not move with ``full``
        only (by default: with ``parked``). Neither fsync happens here: the saver's
        thread fsyncs the spool files written so far, then writes the
        snapshot (helios.tail.positions.Saver)."""
        if self.saver.sync_error is not None:
            self.submit_positions()     # (raises it)
            return
        self.watcher.dirty = False
        self.watcher.remember(time.time(), parked, full)
        fingerprint = self.positions.fingerprint()
        if fingerprint == self.saved_snapshot and not self.saver.failed and not force:
            return
        self.submit_positions(fingerprint)

    def submit_positions(self, fingerprint: tuple | None = None) -> None:
        """Hand the positions that changed, and the spool files written
        since the last time, to the saver's thread."""
        err = self.saver.sync_error
        if err is not None:
            if not getattr(self, "_sync_raised", False):
                self._sync_raised = True
                raise err   # the spool cannot be made durable: stop, as an fsync on the loop did
            return
        before = None
        if self.spool is not None:
            if self.saver.failed:
                self.spool.dirty = True     # (hand every open spool file out again)
            before = self.spool.unsynced()
        if self.saver.need_full:
            self.saver.need_full = False
            self.positions.touch_all()
        # Taken after the frames it covers were appended to the spool; the
        # saver fsyncs those files (``before``) and then writes it, never earlier.
        self.saver.submit(self.positions.snapshot(), before)
        self.saved_snapshot = self.positions.fingerprint() if fingerprint is None else fingerprint

    def safety_slice(self, taken: list) -> list:
        """The next ``SAFETY_SLICE`` open files of the safety pass's round (not
        already in ``taken``)."""
        todo, current = self.safety_round, self.watcher.current
        if not todo:
            todo[:] = list(current.values())
        some = todo[-SAFETY_SLICE:]
        del todo[-SAFETY_SLICE:]
        picked = {id(f) for f in taken}
        return [f for f in some if current.get(f.path) is f and id(f) not in picked]

    def safety_step(self) -> float:
        """Seconds between safety slices: a round of every open file each watch_safety_poll."""
        slices = max(1, -(-len(self.watcher.current) // SAFETY_SLICE))
        return self.cfg.watch_safety_poll / slices

    def look_at_parked(self, step: float) -> None:
        """With inotify, the safety net for parked files (no descriptor, woken
        by their directory's events): a slice of them a housekeeping turn,
        reopened if they grew or finished from a sibling if they were rotated,
        so that every one is looked at once a rescan period (``rescan_interval``
        x 60), as the full rescan did, but never all at once."""
        w, todo = self.watcher, self.parked_round
        if not todo:
            todo[:] = list(w.parked)
        period = max(self.cfg.rescan_interval * 60, step)
        n = max(1, min(PARKED_SLICE, int(len(w.parked) * step / period) + 1))
        some = set(todo[-n:])
        del todo[-n:]
        w.unpark(some)

    def remember_parked(self) -> None:
        """One slice of the periodic look at the parked files (their "seen"
        time): ``PARKED_SLICE`` of them a housekeeping turn, each slice's
        entries handed to the saver, so that 10,000 parked files never stop
        the loop for the walk (~10 us a file) or its snapshot; one write at the end."""
        todo, w = self.parked_todo, self.watcher
        files = [f for f in todo[-PARKED_SLICE:] if w.parked.get(f.path) is f]
        del todo[-PARKED_SLICE:]
        w.remember_files(files, time.time())
        if todo:
            # Copied now (a slice's worth), written with the next snapshot. Offsets it
            # took along are still only those spooled: the next save hands the spool first.
            self.saver.stage(self.positions.snapshot())
        else:
            self.submit_positions()
            self.send_inventory()

    def apply_reload(self) -> None:
        self.reload_asked.clear()
        if self.reload_config is None:
            return
        try:
            cfg = self.reload_config()
        except HeliosError as exc:
            log.error("Reload refused, the running configuration stays: %s", exc)
            return
        self.flush()
        if tuple(cfg.bucks) != tuple(self.cfg.bucks) or cfg.copies != self.cfg.copies:
            self.fanout.close(linger_ms=2000)
            self.fanout = Fanout(self.factory, list(cfg.bucks), cfg.copies, hwm=cfg.sndhwm, monitor=True)
            self.resender.close()
            self.resender = Resender(self.factory, list(cfg.bucks), self.spool)
        self.watcher.patterns = self.patterns(cfg)
        self.watcher.opts = self.options(cfg)
        journal_changed = self.journal_keys(cfg) != self.journal_keys(self.cfg)
        old = self.settings
        self.configure(cfg)
        if journal_changed:
            self.reload_journal(cfg)
        if self.settings != old or self.encoders(cfg) != len(self.workers.conns):
            self.workers.close()
            self.workers = Workers(self.settings, self.encoders(cfg))
        self.watcher.scan()
        log.info("Configuration reloaded: following %s, sending to %s.", ", ".join(cfg.paths), ", ".join(cfg.bucks))
