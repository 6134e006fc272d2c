"""Prove the recent index holds what the bucks hold: ``helios audit --index``.

``helios audit`` proves that every byte a tailer read is held by a buck;
this proves the next step, buck -> porter -> index. Per environment:

- **missing**: every event of every window the porter says it loaded (its
  state, ``STATE_DIR/porter.db``: the window is marked indexed, from the
  bucks in ``index_sources``) that those bucks' copies hold must be in the
  index, once. Only searchable events count (``helios.index.base.searchable``:
  the tailers' inventory records are left out of the index by design), and
  only events the index still keeps (times on or after the first day of
  ``recent_days``: older ones were left out at load or dropped by retention);
  events the porter sets aside (``codec.decode_rows``'s storage checks: its
  quarantine) are not expected either.
- **extra**: every event of the index must be held by a buck, in any window
  (loaded or not: the porter also loads open windows early). This is checked
  for the events received after the oldest window the bucks still hold (and
  after every window the porter pruned, plus ``SKEW_S`` for clocks):
  before that, the bucks no longer hold what the index was loaded from.
- **duplicates**: an id held twice in the index.

What cannot be checked is said, never counted as a pass: windows not yet
loaded (open, not yet due, or a buck's copy the porter has not fetched
yet), windows loaded and since pruned from every buck, events too old for
the index, index events received before the bucks' oldest window, and
bucks that did not answer (then the extras are not checked at all: the
events only that buck holds would look extra). An event held both by a
loaded window and by one not yet loaded (a spool re-send the porter's
ledger gave to the later window, helios.porter.seen) is checked once that
one is loaded too.

It may run while the mesh works: windows open when they were read, or
opened since, are read again once the index has been read (``_catch_up``),
as copies not loaded, so what the porter loaded from them meanwhile is held
and not called extra; closed windows do not change.

Memory stays bounded whatever the windows' size: the ids are streamed into
a scratch SQLite database (a temporary file; dropped at the end), the
buck side frame by frame and the index side a page at a time
(``Index.keys``), and the differences are SQL queries over it.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import xxhash

from helios import codec
from helios.errors import FrameError, HeliosError, QueryError
from helios.model import INVENTORY_APP
from helios.store.layout import BucketName, bucket_id
from helios.timespec import iso_s

NS = 1_000_000_000
SKEW_S = 60          # clocks of hosts and bucks may disagree this much
EXAMPLES = 3         # example lines per window
SHOWN_WINDOWS = 20   # windows listed with their examples (the rest: counted)
PROGRESS_S = 2.0     # at most one progress line this often

# A copy the porter loaded: the event must be in the index, the first window
# loaded that holds it says where (but see ``pending``).
_HELD = ("INSERT INTO held VALUES (?, ?, ?, 0) ON CONFLICT(id) DO UPDATE SET "
         "w = coalesce(held.w, excluded.w)")
# A copy not loaded (yet): its event need not be in the index, and one a
# loaded copy of ANOTHER window holds too may be the ledger's for this one
# (helios.porter.seen): ``pending``, looked for once this one is loaded.
_NOT_LOADED = ("INSERT INTO held VALUES (?, ?, NULL, 1) ON CONFLICT(id) DO UPDATE SET "
               "pending = CASE WHEN held.w IS ? THEN held.pending ELSE 1 END")
_IDX = "INSERT INTO idx VALUES (?, ?, ?, 1) ON CONFLICT(id) DO UPDATE SET n = n + 1"


# --------------------------------------------------------------------------- results

@dataclass
class Difference:
    """Events of one window missing from the index (or extra in it)."""

    window: str
    count: int
    examples: list[str] = field(default_factory=list)


@dataclass
class EnvReport:
    environment: str
    windows_checked: int = 0
    events_checked: int = 0          # distinct events expected in the index (and so looked for)
    index_events: int = 0            # distinct ids the index holds of the environment
    missing: list[Difference] = field(default_factory=list)
    extra: list[Difference] = field(default_factory=list)
    duplicates: int = 0              # ids held more than once in the index
    duplicate_examples: list[str] = field(default_factory=list)
    not_loaded: list[str] = field(default_factory=list)    # windows (or copies) the porter has not loaded yet
    pruned: int = 0                  # windows loaded, since pruned from every buck
    too_old: int = 0                 # events of checked windows older than the index keeps
    pending: int = 0                 # events of checked windows also in a window not yet loaded
    aside: int = 0                   # events the porter sets aside (quarantine)
    extras_from: int | None = None   # ns: index events received from here on were checked for extras
    extras_to: int | None = None
    extras_unchecked: int = 0        # index events received outside that range
    extras_skipped: str = ""         # why the extras were not checked at all

    @property
    def missing_count(self) -> int:
        return sum(d.count for d in self.missing)

    @property
    def extra_count(self) -> int:
        return sum(d.count for d in self.extra)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.extra and not self.duplicates


@dataclass
class IndexReport:
    index: str
    state: str
    bucks: list[str]
    environments: dict[str, EnvReport] = field(default_factory=dict)
    unreachable: list[str] = field(default_factory=list)
    fetch_errors: list[str] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)    # copies pruned while they were read
    bad_frames: int = 0
    answered: int = 0

    @property
    def checked(self) -> int:
        return sum(e.windows_checked for e in self.environments.values())

    @property
    def ok(self) -> bool:
        # Nothing checked proves nothing: a failure too, as no buck answering is for ``helios audit``.
        return (self.answered > 0 and self.checked > 0 and not self.fetch_errors
                and all(e.ok for e in self.environments.values()))


# --------------------------------------------------------------------------- the porter's record

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
            rows = db.execute(state._SELECT).fetchall()
            archived = db.execute("SELECT environment, start, width FROM archived").fetchall()
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise HeliosError(f"cannot read the porter state {path}: {exc}") from None
    return {ws.name: ws for ws in map(state._row, rows)}, {BucketName(*r) for r in archived}


# --------------------------------------------------------------------------- the audit

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
                progress: Callable[[str], None] | None = _stderr, work_dir: str | None = None) -> IndexReport:
    """Compare ``index`` with what ``bucks`` (query endpoints, as the porter
    names them) hold, for the windows the porter's state at ``state_dir``
    says it loaded, of ``environment`` (None: all those of ``ported``, the
    porter's ``environments``, or every one when that is empty), windows
    overlapping [start, end] (seconds; None: unbounded)."""
    from helios.porter.jobs.base import first_day
    from helios.porter.report import parse_listed
    from helios.query.client import QueryClient, holders

    now = time.time() if now is None else now
    bucks = list(bucks)
    windows, archived = read_state(state_dir)
    report = IndexReport(_describe(index), str(state_dir), bucks)
    say = _Progress(progress)
    cutoff = first_day(recent_days, now) * NS
    lo = None if start is None else int(start) - SKEW_S
    work = Path(tempfile.mkdtemp(prefix="helios-audit-index-", dir=work_dir))
    try:
        with QueryClient(timeout=timeout) as qc:
            listings = qc.list_buckets(bucks, environment, None if lo is None else lo * NS, None)
            for ep, r in listings.items():
                if isinstance(r, QueryError):
                    report.unreachable.append(str(r))
                else:
                    report.answered += 1
            if not report.answered:
                return report
            listed = parse_listed(holders(listings))
            wanted = {environment} if environment is not None else set(ported)
            envs = sorted(e for e in {n.environment for n, _ in listed} | {n.environment for n in windows}
                          | {n.environment for n in archived} | set(index.environments())
                          if not wanted or e in wanted)
            for env in envs:
                held = [(n, h) for n, h in listed if n.environment == env]
                mine = {n: ws for n, ws in windows.items() if n.environment == env}
                gone = {n for n in archived if n.environment == env}
                db = _scratch(work / f"{len(report.environments)}.db")
                try:
                    report.environments[env] = _audit_env(report, qc, index, db, env, held, mine, gone, start,
                                                          end, cutoff, say, None if lo is None else lo * NS)
                finally:
                    db.close()
                    for p in work.glob("*.db*"):
                        p.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report


def _describe(index: Any) -> str:
    where = getattr(index, "root", None) or getattr(index, "url", "")
    return f"{index.kind} {where} ({index.name})"


def _scratch(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-65536")   # 64 MiB at most, whatever the windows' size
    db.execute("CREATE TABLE held (id BLOB PRIMARY KEY, t INTEGER NOT NULL, w INTEGER, pending INTEGER NOT NULL) "
               "WITHOUT ROWID")
    db.execute("CREATE TABLE idx (id BLOB PRIMARY KEY, t INTEGER NOT NULL, received INTEGER NOT NULL, "
               "n INTEGER NOT NULL) WITHOUT ROWID")
    return db


def _in_range(name: BucketName, start: float | None, end: float | None) -> bool:
    return (start is None or name.start + name.width > start) and (end is None or name.start <= end)


def _audit_env(report: IndexReport, qc: Any, index: Any, db: sqlite3.Connection, env: str, held: list,
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
    # The bucks' side, window by window: each copy's events into ``held``.
    for i, (name, copies) in enumerate(held):
        ws = mine.get(name)
        wid = bucket_id(name)
        is_open = any(e.open for e in copies.values())
        loaded = ws is not None and ws.indexed and not is_open
        wanted = _in_range(name, start, end)
        w = None
        if wanted and loaded and any(ep in ws.index_sources for ep in copies):
            w = len(checked)
            checked.append((name, [ep for ep in copies if ep in ws.index_sources]))
        if wanted:
            if not loaded:
                er.not_loaded.append(f"{wid} ({'open' if is_open else 'not yet loaded'})")
            else:
                for ep in copies:
                    if ep not in ws.index_sources:
                        # Named apart: with no copy the porter names, the bucks may be named otherwise here.
                        note = "" if w is not None else (f"; the porter loaded it from "
                                                         f"{', '.join(sorted(ws.index_sources)) or 'none'}")
                        er.not_loaded.append(f"{wid} (the copy on {ep}, not yet loaded from it{note})")
        db.execute("BEGIN")
        # The loaded copies first; a frame already taken in this window is
        # the same events (a tailer sends one frame to two bucks; the spool
        # re-sends the frames as sent), so it is skipped, as the porter does.
        taken: set[bytes] = set()
        for ep, entry in sorted(copies.items(), key=lambda c: not (loaded and c[0] in ws.index_sources)):
            if loaded and ep in ws.index_sources:
                for rows in _rows(report, qc, ep, entry, env, taken, er if w is not None else None):
                    db.executemany(_HELD, ((r[0], r[1], w) for r in rows))
                    events += len(rows)
            else:
                for rows in _rows(report, qc, ep, entry, env, taken, None):
                    db.executemany(_NOT_LOADED, ((r[0], r[1], w) for r in rows))
                    events += len(rows)
        db.execute("COMMIT")
        say(f"{env}: window {i + 1} of {len(held)} read from the bucks ({events:,} events)")
    er.windows_checked = len(checked)
    # The index's side, a day at a time.
    days = index.days(env)
    for k, day in enumerate(days):
        db.execute("BEGIN")
        for page in index.keys(env, day):
            db.executemany(_IDX, page)
            er.index_events += len(page)
            say(f"{env}: index day {day} ({k + 1} of {len(days)}), {er.index_events:,} ids read")
        db.execute("COMMIT")
    events += _catch_up(report, qc, db, env, held, {name: w for w, (name, _) in enumerate(checked)}, lo_ns, er)
    size = db.execute("PRAGMA page_count").fetchone()[0] * db.execute("PRAGMA page_size").fetchone()[0]
    say(f"{env}: {events:,} events from the bucks, {er.index_events:,} ids in the index (scratch file "
        f"{size / 2**20:,.0f} MiB); comparing", force=bool(held))
    er.index_events = db.execute("SELECT count(*) FROM idx").fetchone()[0]
    # Missing: in a window loaded, held by a copy loaded, kept by the index, and not there.
    er.events_checked = db.execute("SELECT count(*) FROM held WHERE w IS NOT NULL AND pending = 0 AND t >= ?",
                                   (cutoff,)).fetchone()[0]
    er.too_old = db.execute("SELECT count(*) FROM held WHERE w IS NOT NULL AND t < ?", (cutoff,)).fetchone()[0]
    er.pending = db.execute("SELECT count(*) FROM held WHERE w IS NOT NULL AND pending = 1 AND t >= ?",
                            (cutoff,)).fetchone()[0]
    per_w: dict[int, list] = {}
    for w, id_ in db.execute("SELECT w, id FROM held WHERE w IS NOT NULL AND pending = 0 AND t >= ? AND "
                             "NOT EXISTS (SELECT 1 FROM idx WHERE idx.id = held.id) ORDER BY w, t, id", (cutoff,)):
        d = per_w.setdefault(w, [0, []])
        d[0] += 1
        if len(d[1]) < EXAMPLES:
            d[1].append(id_)
    for n, (w, (count, ids)) in enumerate(sorted(per_w.items())):
        name, eps = checked[w]
        examples = _buck_examples(qc, name, eps, ids) if n < SHOWN_WINDOWS else []
        er.missing.append(Difference(bucket_id(name), count, examples))
    # Extra: in the index, received where the bucks still hold every window, held by none.
    dup = db.execute("SELECT count(*) FROM idx WHERE n > 1").fetchone()[0]
    if dup:
        er.duplicates = dup
        er.duplicate_examples = [_index_example(index, env, t, id_) for id_, t in db.execute(
            f"SELECT id, t FROM idx WHERE n > 1 ORDER BY t, id LIMIT {EXAMPLES}")]
    if report.unreachable:
        er.extras_skipped = "a buck did not answer (the events only it holds would look extra)"
    elif len(report.fetch_errors) + len(report.vanished) > fetch_errors_before:
        er.extras_skipped = "a window could not be read whole from a buck"
    elif not held:
        er.extras_skipped = "the bucks hold no window of it"
    if er.extras_skipped:   # (or the bucks asked again after the index was read: _catch_up)
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
    hi = er.extras_to if er.extras_to is not None else 2**63 - 1
    er.extras_unchecked = db.execute("SELECT count(*) FROM idx WHERE received < ? OR received >= ?",
                                     (er.extras_from, hi)).fetchone()[0]
    width = held[-1][0].width
    per_r: dict[int, list] = {}
    for id_, t, received in db.execute(
            "SELECT id, t, received FROM idx WHERE received >= ? AND received < ? AND "
            "NOT EXISTS (SELECT 1 FROM held WHERE held.id = idx.id) ORDER BY received, id", (er.extras_from, hi)):
        ws_start = received // NS // width * width
        d = per_r.setdefault(ws_start, [0, []])
        d[0] += 1
        if len(d[1]) < EXAMPLES:
            d[1].append((t, id_))
    for n, (ws_start, (count, ids)) in enumerate(sorted(per_r.items())):
        try:
            wid = bucket_id(BucketName(env, ws_start, width))
        except ValueError:
            wid = f"{env}/{iso_s(ws_start)}"
        examples = [_index_example(index, env, t, id_) for t, id_ in ids] if n < SHOWN_WINDOWS else []
        er.extra.append(Difference(wid, count, examples))
    return er


def _catch_up(report: IndexReport, qc: Any, db: sqlite3.Connection, env: str, held: list, w_of: dict,
              lo_ns: int | None, er: EnvReport) -> int:
    """After the index was read: the copies the bucks hold now that were
    open or not there when they were first read (a mesh at work appends to
    its open windows and opens new ones, and the porter loads them early),
    as copies not loaded, so that what the index took from them meanwhile
    is not called extra. Closed copies do not change."""
    done = {(name, ep) for name, copies in held for ep, e in copies.items() if not e.open}
    listings = qc.list_buckets(report.bucks, env, lo_ns, None)
    if any(isinstance(r, QueryError) for r in listings.values()):
        er.extras_skipped = "a buck did not answer when asked again, after the index was read"
    from helios.porter.report import parse_listed
    from helios.query.client import holders

    events = 0
    for name, copies in parse_listed(holders(listings)):
        fresh = [(ep, entry) for ep, entry in copies.items() if (name, ep) not in done]
        if not fresh:
            continue
        db.execute("BEGIN")
        for ep, entry in fresh:
            for rows in _rows(report, qc, ep, entry, env, set(), None):
                db.executemany(_NOT_LOADED, ((r[0], r[1], w_of.get(name)) for r in rows))
                events += len(rows)
        db.execute("COMMIT")
    return events


def _rows(report: IndexReport, qc: Any, ep: str, entry: Any, env: str, taken: set[bytes],
          er: EnvReport | None) -> Iterable[list]:
    """The searchable rows (id, time, ...) of one buck's copy of a window,
    a frame at a time, as the porter decodes them, but those of frames
    whose digest is in ``taken`` (added to it); ``er``: count what the
    porter sets aside."""
    stream = qc.fetch_bucket(ep, entry.id)
    try:
        for frame in stream:
            digest = xxhash.xxh3_128_digest(frame)
            if digest in taken:
                continue
            taken.add(digest)
            aside: list = []
            try:
                header, rows = codec.decode_rows(frame, set_aside=aside)
            except FrameError:
                report.bad_frames += 1
                continue
            if header.environment != env:
                report.bad_frames += 1      # the porter sets such a frame aside too
                continue
            if er is not None:
                er.aside += len(aside)
            yield [r for r in rows if r[4] != INVENTORY_APP]
    except QueryError as exc:
        if _pruned_meanwhile(qc, ep, entry):
            report.vanished.append(f"{entry.id} on {ep}")
        else:
            report.fetch_errors.append(f"{entry.id} from {ep}: {exc}")


def _pruned_meanwhile(qc: Any, ep: str, entry: Any) -> bool:
    """Did the buck stop holding the window while it was read (the porter pruned it)?"""
    listing = qc.list_buckets([ep], entry.environment, entry.start, entry.end).get(ep)
    return not isinstance(listing, QueryError) and listing is not None and all(e.id != entry.id for e in listing)


def _line(t: int, id_: bytes, host: str, app: str, message: bytes) -> str:
    text = message[:160].decode("utf-8", "replace").replace("\n", "\\n")
    return f"{id_.hex()[:16]} {iso_s(t / NS)} {host} {app}: {text}"


def _buck_examples(qc: Any, name: BucketName, eps: list[str], ids: list[bytes]) -> list[str]:
    """The lines of ``ids`` as a buck holds them (read once more: only for windows with a difference)."""
    found: dict[bytes, str] = {}
    want = set(ids)
    for ep in eps:
        try:
            for frame in qc.fetch_bucket(ep, bucket_id(name)):
                try:
                    _, rows = codec.decode_rows(frame)
                except FrameError:
                    continue
                for r in rows:
                    if r[0] in want and r[0] not in found:
                        found[r[0]] = _line(r[1], r[0], r[3], r[4], r[8])
                if len(found) == len(ids):
                    break
        except QueryError:
            continue
        if len(found) == len(ids):
            break
    return [found.get(i, f"{i.hex()[:16]} (not read again)") for i in ids]


def _index_example(index: Any, env: str, t: int, id_: bytes) -> str:
    try:
        _, e, _ = index.context(env, t, id_, 0, 0)
    except HeliosError:
        e = None
    if e is None:
        return f"{id_.hex()[:16]} {iso_s(t / NS)}"
    return _line(e.time, e.id, e.host, e.app, e.message)


# --------------------------------------------------------------------------- output

def _when(ns: int | None) -> str:
    return "-" if ns is None else (iso_s(ns / NS) or "-")


def render(report: IndexReport, as_json: bool = False) -> str:
    if as_json:
        return json.dumps({
            "index": report.index, "porter_state": report.state, "bucks": report.bucks,
            "answered": report.answered, "unreachable": report.unreachable, "fetch_errors": report.fetch_errors,
            "pruned_while_read": report.vanished,
            "bad_frames": report.bad_frames,
            "environments": {env: {
                "windows_checked": e.windows_checked, "events_checked": e.events_checked,
                "index_events": e.index_events, "missing": e.missing_count, "extra": e.extra_count,
                "missing_windows": [vars(d) for d in e.missing], "extra_windows": [vars(d) for d in e.extra],
                "duplicates": e.duplicates, "duplicate_examples": e.duplicate_examples,
                "not_loaded": e.not_loaded, "pruned_windows": e.pruned, "too_old": e.too_old,
                "pending": e.pending, "set_aside": e.aside,
                "extras_checked_from": _when(e.extras_from) if e.extras_from is not None else None,
                "extras_checked_to": _when(e.extras_to) if e.extras_to is not None else None,
                "extras_unchecked": e.extras_unchecked, "extras_skipped": e.extras_skipped or None,
                "ok": e.ok} for env, e in report.environments.items()},
            "ok": report.ok,
        }, indent=2)
    lines = [f"Index {report.index} against {report.answered} of {len(report.bucks)} buck(s), "
             f"as the porter's record ({report.state}) says it was loaded."]
    for why in report.unreachable:
        lines.append(f"not audited: {why}")
    if not report.answered:
        lines.append("Nothing audited: no buck answered.")
        return "\n".join(lines)
    for why in report.fetch_errors:
        lines.append(f"not read whole: {why}")
    for what in report.vanished:
        lines.append(f"not read whole: {what}, pruned while it was read")
    if report.bad_frames:
        lines.append(f"{report.bad_frames} frame(s) could not be decoded (the porter sets them aside too).")
    for env, e in report.environments.items():
        lines.append(f"environment {env}: {e.windows_checked} window(s) loaded and checked, {e.events_checked:,} "
                     f"event(s) looked for; the index holds {e.index_events:,} event(s) of it: "
                     + ("OK" if e.ok else f"{e.missing_count:,} MISSING, {e.extra_count:,} EXTRA"
                        + (f", {e.duplicates:,} DUPLICATED" if e.duplicates else "")))
        for d in e.missing:
            lines.append(f"  window {d.window}: {d.count:,} event(s) the bucks hold are not in the index")
            lines += [f"      {x}" for x in d.examples]
        for d in e.extra:
            lines.append(f"  received in window {d.window}: {d.count:,} event(s) in the index that no buck holds")
            lines += [f"      {x}" for x in d.examples]
        if e.duplicates:
            lines.append(f"  {e.duplicates:,} id(s) held more than once in the index")
            lines += [f"      {x}" for x in e.duplicate_examples]
        nl = e.not_loaded
        if nl:
            shown = ", ".join(nl[:5]) + (f" and {len(nl) - 5} more" if len(nl) > 5 else "")
            lines.append(f"  not checked: {len(nl)} window(s) or copies not yet loaded by the porter: {shown}")
        if e.pruned:
            lines.append(f"  not checked: {e.pruned} window(s) loaded and since pruned from every buck")
        if e.too_old:
            lines.append(f"  not checked: {e.too_old:,} event(s) older than the index keeps (recent_days)")
        if e.pending:
            lines.append(f"  not checked yet: {e.pending:,} event(s) also held in a window not yet loaded")
        if e.aside:
            lines.append(f"  not checked: {e.aside:,} event(s) the porter sets aside (`helios porter quarantine`)")
        if e.extras_skipped:
            lines.append(f"  extras not checked: {e.extras_skipped}")
        elif e.extras_unchecked:
            outside = ([f"before {_when(e.extras_from)}"] if e.extras_from else []) + (
                [f"from {_when(e.extras_to)} on"] if e.extras_to is not None else [])
            lines.append(f"  extras not checked: {e.extras_unchecked:,} index event(s) received "
                         f"{' or '.join(outside)} (the bucks no longer hold, or were not asked for, what they "
                         "were loaded from)")
    if not report.checked:
        lines.append("Nothing audited: no window is both loaded by the porter and still held by a buck.")
    elif report.ok:
        lines.append("No difference: every event of the windows loaded is in the index, and the index holds "
                     "nothing the bucks do not.")
    else:
        bad = [e for e in report.environments.values() if not e.ok]
        lines.append(f"{sum(e.missing_count for e in bad):,} event(s) missing from the index and "
                     f"{sum(e.extra_count for e in bad):,} extra in it, in {len(bad)} environment(s)"
                     + ("; and windows not read whole" if report.fetch_errors else "") + ".")
    return "\n".join(lines)

