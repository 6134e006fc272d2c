"""The run of ``helios audit --index``: the porter's record, then per
environment the bucks' side, the index's side, the second ask of the bucks
(``bucks.catch_up``) and the comparison (``compare.Scratch``)."""

from __future__ import annotations

import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from helios.errors import HeliosError, QueryError
from helios.indexaudit import bucks as buck_side
from helios.indexaudit.compare import FOREVER, Scratch
from helios.indexaudit.examples import buck_examples, buck_rows, changed_example, index_event, index_example
from helios.indexaudit.results import (
    NS,
    SHOWN_WINDOWS,
    SKEW_S,
    Difference,
    EnvReport,
    IndexReport,
    loaded_elsewhere,
)
from helios.store.layout import BucketName, bucket_id
from helios.timespec import iso_s

PROGRESS_S = 2.0     # at most one progress line this often


def read_state(state_dir: str | Path) -> tuple[dict, set[BucketName]]:
    """The porter's windows (BucketName -> ``helios.porter.state.WindowState``)
    and every window it ever archived (the table ``archived`` outlives the
    windows the state forgets), read only: the audit may run where it cannot
    write the porter's state."""
    from helios.porter import state

    path = Path(state_dir) / "porter.db"
    if not path.is_file():
        raise HeliosError(f"no porter state at {path}: nothing was loaded there (give the porter's config with -c, "
                          "or --state-dir)")
    try:
        db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=30.0)
        try:
            # Read only, so an older state is not migrated: columns it lacks read as NULL (no index recorded).
            have = {r[1] for r in db.execute("PRAGMA table_info(windows)")}
            rows = db.execute(f"SELECT {', '.join(c if c in have else f'NULL AS {c}' for c in state._COLUMNS)} "
                              "FROM windows").fetchall()
            archived = db.execute("SELECT environment, start, width FROM archived").fetchall()
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise HeliosError(f"cannot read the porter state {path}: {exc}") from None
    return {ws.name: ws for ws in map(state._row, rows)}, {BucketName(*r) for r in archived}


class _Progress:
    def __init__(self, out: Callable[[str], None] | None) -> None:
        self.out = out
        self.at = time.monotonic()

    def __call__(self, text: str, force: bool = False) -> None:
        if self.out is None:
            return
        now = time.monotonic()
        if force or now - self.at >= PROGRESS_S:
            self.at = now
            self.out(text)


def _stderr(text: str) -> None:
    print(f"helios audit --index: {text}", file=sys.stderr, flush=True)


def audit_index(index: Any, state_dir: str | Path, bucks: Iterable[str], *, environment: str | None = None,
                ported: Iterable[str] = (), start: float | None = None, end: float | None = None, recent_days: int = 7,
                timeout: float = 5.0, now: float | None = None,
                progress: Callable[[str], None] | None = _stderr, work_dir: str | None = None,
                identity: str | None = None, porter_index: str | None = None, content: bool = False) -> IndexReport:
    """Compare ``index`` with what ``bucks`` (query endpoints, as the porter
    names them) hold, for the windows the porter's state at ``state_dir``
    says it loaded, of ``environment`` (None: all those of ``ported``, the
    porter's ``environments``, or every one when that is empty), windows
    overlapping [start, end] (seconds; None: unbounded). ``identity``: the
    index as the porter's state records one (``index_identity``; None: of
    ``index``); windows recorded as loaded into another are not checked, and
    said, with ``porter_index``, the index the porter's config names (None:
    not known). ``content``: compare each event's content too (the
    index's ``contents`` against its ``content_digests`` of the bucks'
    rows), reading every event of the index whole."""
    from helios.porter.jobs.base import first_day
    from helios.query.client import QueryClient

    now = time.time() if now is None else now
    bucks = list(bucks)
    windows, archived = read_state(state_dir)
    report = IndexReport(_describe(index), str(state_dir), bucks, identity=identity or identity_of(index),
                         porter_index=porter_index, content=content)
    say = _Progress(progress)
    cutoff = first_day(recent_days, now) * NS
    lo = None if start is None else int(start) - SKEW_S
    work = Path(tempfile.mkdtemp(prefix="helios-audit-index-", dir=work_dir))
    try:
        with QueryClient(timeout=timeout) as qc:
            listings, listed = buck_side.listed(qc, bucks, environment, None if lo is None else lo * NS)
            for ep, r in listings.items():
                if isinstance(r, QueryError):
                    report.unreachable.append(str(r))
                else:
                    report.answered += 1
            if not report.answered:
                return report
            wanted = {environment} if environment is not None else set(ported)
            envs = sorted(e for e in {n.environment for n, _ in listed} | {n.environment for n in windows}
                          | {n.environment for n in archived} | set(index.environments())
                          if not wanted or e in wanted)
            for env in envs:
                held = [(n, h) for n, h in listed if n.environment == env]
                mine = {n: ws for n, ws in windows.items() if n.environment == env}
                gone = {n for n in archived if n.environment == env}
                scratch = Scratch(work / f"{len(report.environments)}.db")
                try:
                    report.environments[env] = _audit_env(report, qc, index, scratch, env, held, mine, gone, start,
                                                          end, cutoff, say, None if lo is None else lo * NS)
                finally:
                    scratch.close()
                    for p in work.glob("*.db*"):
                        p.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report


def _describe(index: Any) -> str:
    where = getattr(index, "root", None) or getattr(index, "url", "")
    return f"{index.kind} {where} ({index.name})"


def identity_of(index: Any) -> str | None:
    """``index`` as the porter's state records the index it loads into
    (``helios.porter.state.index_identity``); None when it cannot say."""
    from helios.porter.state import index_identity

    location = getattr(index, "location", None) if index.kind == "sqlite" else getattr(index, "url", None)
    if location is None:
        return None
    try:
        return index_identity(index.kind, str(location), index.name)
    except ValueError:
        return None


def _in_range(name: BucketName, start: float | None, end: float | None) -> bool:
    return (start is None or name.start + name.width > start) and (end is None or name.start <= end)


def _audit_env(report: IndexReport, qc: Any, index: Any, scratch: Scratch, env: str, held: list,
               mine: dict, gone: set[BucketName], start: float | None, end: float | None, cutoff: int, say: _Progress,
               lo_ns: int | None) -> EnvReport:
    er = EnvReport(env)
    checked: list[tuple[BucketName, list[str]]] = []     # w -> (window, the copies loaded)
    held_names = {n for n, _ in held}
    # Loaded, or archived (which a prune waits for; the state forgets windows done with long ago,
    # its record of what was archived stays), and held by no buck now.
    done = {n for n, ws in mine.items() if ws.indexed} | gone
    er.pruned = sum(1 for n in done - held_names if _in_range(n, start, end))
    fetch_errors_before = len(report.fetch_errors) + len(report.vanished)
    events = 0
    # --content: the backend's own digests of what it stores; one that cannot give them is said, not passed.
    digests = contents = None
    if report.content:
        digests, contents = getattr(index, "content_digests", None), getattr(index, "contents", None)
        if digests is None or contents is None:
            digests = contents = None
            er.content_skipped = f"the {index.kind} index cannot give its events' content"
    # The bucks' side, window by window: each copy's events into the scratch.
    for i, (name, copies) in enumerate(held):
        ws = mine.get(name)
        wid = bucket_id(name)
        is_open = any(e.open for e in copies.values())
        # Loaded into another index (the porter was moved, or this is not its index): not expected here.
        into = None if ws is None else loaded_elsewhere(ws.index_into, ws.indexed, report.identity)
        loaded = ws is not None and ws.indexed and into is None and not is_open
        wanted = _in_range(name, start, end)
        w = None
        if wanted and loaded and any(ep in ws.index_sources for ep in copies):
            w = len(checked)
            checked.append((name, [ep for ep in copies if ep in ws.index_sources]))
        if wanted:
            if into is not None:
                er.elsewhere.setdefault(into, []).append(wid)
            elif not loaded:
                er.not_loaded.append(f"{wid} ({'open' if is_open else 'not yet loaded'})")
            else:
                for ep in copies:
                    if ep not in ws.index_sources:
                        # Named apart: with no copy the porter names, the bucks may be named otherwise here.
                        note = "" if w is not None else (f"; the porter loaded it from "
                                                         f"{', '.join(sorted(ws.index_sources)) or 'none'}")
                        er.not_loaded.append(f"{wid} (the copy on {ep}, not yet loaded from it{note})")
        with scratch.batch():
            # The loaded copies first; a frame already taken in this window is
            # the same events (a tailer sends one frame to two bucks; the spool
            # re-sends the frames as sent), so it is skipped, as the porter does.
            taken: set[bytes] = set()
            for ep, entry in sorted(copies.items(), key=lambda c: not (loaded and c[0] in ws.index_sources)):
                if loaded and ep in ws.index_sources:
                    for page in buck_side.rows(report, qc, ep, entry, env, taken, er if w is not None else None):
                        scratch.loaded(page, w, digests(env, page) if digests is not None and w is not None else None)
                        events += len(page)
                else:
                    for page in buck_side.rows(report, qc, ep, entry, env, taken, None):
                        scratch.not_loaded(page, w)
                        events += len(page)
        say(f"{env}: window {i + 1} of {len(held)} read from the bucks ({events:,} events)")
    er.windows_checked = len(checked)
    # The index's side, a day at a time.
    days = index.days(env)
    for k, day in enumerate(days):
        with scratch.batch():
            for page in (contents or index.keys)(env, day):
                scratch.indexed(page)
                er.index_events += len(page)
                say(f"{env}: index day {day} ({k + 1} of {len(days)}), {er.index_events:,} ids read")
    # The bucks again: what the porter loaded early while the index was read is held, not extra.
    events += buck_side.catch_up(report, qc, scratch, env, held, {name: w for w, (name, _) in enumerate(checked)},
                                 lo_ns, er)
    say(f"{env}: {events:,} events from the bucks, {er.index_events:,} ids in the index (scratch file "
        f"{scratch.size() / 2**20:,.0f} MiB); comparing", force=bool(held))
    er.index_events = scratch.index_events()
    # Missing: in a window loaded, held by a copy loaded, kept by the index, and not there.
    er.events_checked = scratch.looked_for(cutoff)
    er.too_old = scratch.too_old(cutoff)
    er.pending = scratch.pending(cutoff)
    for n, (w, count, ids) in enumerate(scratch.missing(cutoff)):
        name, eps = checked[w]
        examples = buck_examples(qc, name, eps, ids) if n < SHOWN_WINDOWS else []
        er.missing.append(Difference(bucket_id(name), count, examples))
    # Moved: held once by the index, at another time than the bucks' copies (all agreeing) hold it.
    for n, (w, count, moved) in enumerate(scratch.moved(cutoff)):
        name, eps = checked[w]
        examples = buck_examples(qc, name, eps, [i for i, _, _ in moved]) if n < SHOWN_WINDOWS else []
        er.moved.append(Difference(bucket_id(name), count, [
            f"{x} (the index has it at {iso_s(it / NS)})" for x, (_, _, it) in zip(examples, moved)]))
    er.disagree = scratch.disagreeing(cutoff)
    if contents is not None:
        # Changed: held once by the index, with another content than the bucks' copies (all agreeing) have.
        er.content_checked = scratch.content_checked(cutoff)
        er.content_disagree = scratch.content_disagreeing(cutoff)
        for n, (w, count, changed) in enumerate(scratch.changed(cutoff)):
            name, eps = checked[w]
            examples = []
            if n < SHOWN_WINDOWS:
                held_rows = buck_rows(qc, name, eps, [i for i, _, _ in changed])
                examples = [changed_example(held_rows.get(i), index_event(index, env, it, i), i, t)
                            for i, t, it in changed]
            er.changed.append(Difference(bucket_id(name), count, examples))
    er.duplicates, dups = scratch.duplicates()
    er.duplicate_examples = [index_example(index, env, t, id_) for id_, t in dups]
    # Extra: in the index, received where the bucks still hold every window, held by none.
    # A buck the porter loaded a window from, not asked here, may hold what the others do not.
    asked = set(report.bucks)
    unasked = [n for n in held_names if n in mine and mine[n].indexed and not set(mine[n].index_sources) <= asked
               and loaded_elsewhere(mine[n].index_into, True, report.identity) is None]
    if report.unreachable:
        er.extras_skipped = "a buck did not answer (the events only it holds would look extra)"
    elif len(report.fetch_errors) + len(report.vanished) > fetch_errors_before:
        er.extras_skipped = "a window could not be read whole from a buck"
    elif not held:
        er.extras_skipped = "the bucks hold no window of it"
    elif unasked:
        er.extras_skipped = (f"the porter loaded {len(unasked)} window(s) from buck(s) not asked "
                             f"({', '.join(sorted({ep for n in unasked for ep in mine[n].index_sources} - asked))}): "
                             "the events only those hold would look extra")
    if er.extras_skipped:   # (or the bucks asked again after the index was read: catch_up)
        er.extras_unchecked = er.index_events
        return er
    # The index may hold events of windows no buck holds any more (pruned,
    # or rebuilt from the archive): those received after the last of them
    # (and the clocks' skew) came in windows the bucks still hold. Windows
    # are listed from ``start`` - SKEW_S, so an event received from
    # ``start`` on is in one listed.
    gone_end = max((n.start + n.width for n in done | {n for n, ws in mine.items() if ws.pruned_from}
                    if n not in held_names), default=None)
    lo_s = max(0 if gone_end is None else gone_end + SKEW_S, 0 if start is None else int(start))
    er.extras_from = lo_s * NS
    er.extras_to = None if end is None else int(end) * NS
    hi = er.extras_to if er.extras_to is not None else FOREVER
    er.extras_unchecked = scratch.unchecked(er.extras_from, hi)
    width = held[-1][0].width
    for n, (ws_start, count, ids) in enumerate(scratch.extras(er.extras_from, hi, width)):
        try:
            wid = bucket_id(BucketName(env, ws_start, width))
        except ValueError:
            wid = f"{env}/{iso_s(ws_start)}"
        examples = [index_example(index, env, t, id_) for t, id_ in ids] if n < SHOWN_WINDOWS else []
        er.extra.append(Difference(wid, count, examples))
    return er
