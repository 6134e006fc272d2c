"""Prove nothing was lost: merge the byte spans every buck holds, find gaps.

Every tailed event knows where it came from: its source key (file identity),
its byte offset, and its message. The bytes it covers are
``[offset, offset + len(message) + 1)``, the ``+ 1`` being its newline, except
for a piece without one: a piece of a split long line other than the last
(``fields["split"]`` without ``fields["last"]``) or a last line flushed without
its newline (``fields["unterminated"]``). Events of one source, from all
bucks and all copies, merged into spans, must leave no hole between the first
byte seen and the last: a hole is a range of the file that no buck holds.

A leading gap (the file was first read from its end) is not a loss and is not
reported. Journal entries are audited the same way with sequence numbers in place of
bytes (``helios.tail.journal``): a gap is a run of entries the tailer read
that no buck holds. Lines re-sent from the spool land in later buckets, so audit a range
that ends after the spool's re-send of its last window.

The bucks alone cannot show a file that was never read, or the tail of one
that was not: so the tailer also sends its inventory (``helios.tail.inventory``):
for every content it has seen, the largest size seen, the first byte read and
how reading ended. The latest record of each content is compared with what
the bucks hold: every byte of ``[first, size)`` that no buck holds is
reported, and so is every content whose reading ended short (deleted,
corrupt, permission denied, unreadable, skipped), with its reason. A run is
clean (exit 0) only with no gap and no such finding.

With one environment (``--env E``), the files audited are those with events
or inventory records in E; as a rule or a ``[[tailer.parse]]`` table may send
lines of one file to other environments (and the inventory travels in the
tailer's own), the spans and inventory records of THOSE files are then taken
from every other environment too (what the asker may read), so a file whose
lines went elsewhere is still accounted for byte by byte; each file says in
which environments its lines are held.

The bucket files come from buck data directories (read in place) or from
running bucks over the bucket query protocol (``helios.query``), or both; a
buck that does not answer is reported, and what the others hold is audited.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from helios import codec
from helios.errors import FrameError, QueryError
from helios.model import Event
from helios.store import layout
from helios.store.records import RecordReader
from helios.tail import inventory


def span(event: Event) -> tuple[int, int] | None:
    """The byte range of the source file an event covers, or None for events
    that do not come from a file."""
    if event.offset is None or not event.source:
        return None
    f = event.fields or {}
    if type(f.get("journal_after")) is int and event.source.startswith("journal"):
        # A journal entry: sequence numbers, not bytes (helios.tail.journal, "For helios audit").
        return f["journal_after"] + 1, event.offset + 1
    newline = 0 if f.get("unterminated") or (f.get("split") and not f.get("last")) else 1
    # A message shorter than its line (CRLF, a container record) carries the line's length.
    return event.offset, event.offset + f.get("line_bytes", len(event.message)) + newline


@dataclass
class Source:
    host: str
    path: str
    spans: list[tuple[int, int]] = field(default_factory=list)
    events: int = 0  # copies held: a line is stored about 3 times (two live copies, one spool re-send)
    environments: set[str] = field(default_factory=set)  # where its events are held

    @property
    def distinct(self) -> int:
        """Distinct lines held (by their offset in the content): each counted once."""
        return len({a for a, _ in self.spans})

    def merged(self) -> list[tuple[int, int]]:
        out: list[list[int]] = []
        for start, end in sorted(self.spans):
            if out and start <= out[-1][1]:
                out[-1][1] = max(out[-1][1], end)
            else:
                out.append([start, end])
        return [(s, e) for s, e in out]

    def gaps(self) -> list[tuple[int, int]]:
        m = self.merged()
        return [(m[i][1], m[i + 1][0]) for i in range(len(m) - 1)]


def collect(events: Iterable[Event], key_of, sources: dict[bytes, Source] | None = None) -> dict[bytes, Source]:
    """Group events by source identity (added to ``sources`` if given);
    ``key_of(event)`` gives the identity (the tailer's source key, carried in
    ``fields`` or derived)."""
    sources = {} if sources is None else sources
    for e in events:
        s = span(e)
        if s is None:
            continue
        key = key_of(e)
        src = sources.get(key)
        if src is None:
            src = sources[key] = Source(e.host, e.source)
        src.spans.append(s)
        src.events += 1
        src.environments.add(e.environment)
    return sources


@dataclass
class Report:
    sources: dict[bytes, Source]
    frames: int = 0
    events: int = 0
    bad_frames: int = 0
    damaged_files: list[str] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)  # bucks that did not answer, with why
    fetch_errors: list[str] = field(default_factory=list)  # buckets that could not be read whole

    inventory: dict[tuple[str, bytes], inventory.Record] = field(default_factory=dict)  # latest per host, identity
    bad_inventory: int = 0  # inventory events that are not valid records
    other_ids: set[bytes] = field(default_factory=set)  # ids of the events not read from a file (client events)
    inventory_events: int = 0  # copies of inventory records among ``events``
    environment: str | None = None  # the one asked for (None: all)
    inventory_order: dict = field(default_factory=dict)  # (host, identity) -> (time, seq) of the latest record
    elsewhere: int = 0  # with an environment: copies of its files' lines held in other environments
    answered: int = 0  # data directories read and bucks that answered: none, and nothing was audited

    @property
    def distinct(self) -> int:
        """Distinct events held (``events`` counts every stored copy): tailed
        lines by (content, offset), the others by id; inventory records aside."""
        return sum(s.distinct for s in self.sources.values()) + len(self.other_ids)

    @property
    def gaps(self) -> dict[bytes, list[tuple[int, int]]]:
        return {k: g for k, s in self.sources.items() if (g := s.gaps())}

    @property
    def findings(self) -> list["Finding"]:
        """What the inventory says existed and the bucks do not hold, or was
        not read to its end; one per (host, content)."""
        out = []
        for (host, key), rec in sorted(self.inventory.items(), key=lambda kv: (kv[0][0], kv[1].path)):
            src = self.sources.get(key)
            missing = _subtract((rec.start, rec.size), src.merged() if src else [])
            short = rec.end in inventory.SHORT_ENDS
            if missing or short:
                out.append(Finding(host, rec, missing, short))
        return out

    @property
    def ok(self) -> bool:
        # No buck answering proves nothing, though it shows no gap: that is a failure too.
        return self.answered > 0 and not self.gaps and not self.findings


@dataclass
class Finding:
    host: str
    record: inventory.Record
    missing: list[tuple[int, int]]   # byte ranges seen on disk that no buck holds
    short: bool                      # reading ended before the end (record.end says why)

    @property
    def missing_bytes(self) -> int:
        return sum(b - a for a, b in self.missing)


def _subtract(want: tuple[int, int], held: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of [a, b) not covered by the sorted, merged ranges ``held``."""
    a, b = want
    out = []
    for s, e in held:
        if e <= a:
            continue
        if s >= b:
            break
        if s > a:
            out.append((a, s))
        a = max(a, e)
        if a >= b:
            break
    if a < b:
        out.append((a, b))
    return out


def audit_dirs(data_dirs: list[str], environment: str | None = None, start: float | None = None,
               end: float | None = None) -> Report:
    """Read the bucket files of every buck data directory and merge spans."""
    return audit(data_dirs, (), environment, start, end)


def audit(data_dirs: Iterable[str], bucks: Iterable[str], environment: str | None = None,
          start: float | None = None, end: float | None = None, timeout: float = 5.0) -> Report:
    """Merge the spans of every bucket in the data directories and of every
    bucket the bucks (query endpoints) hold, of ``environment`` (None: all),
    in windows overlapping [start, end] (seconds; None: unbounded)."""
    report = Report({}, environment=environment)
    lo = None if start is None else int(start)
    hi = None if end is None else int(end) + 1
    data_dirs, bucks = list(data_dirs), list(bucks)
    for d in data_dirs:
        if (Path(d) / "buckets").is_dir():
            report.answered += 1
        else:
            report.unreachable.append(f"{d}: no buckets/ folder in it (not a buck's data directory?)")

    def events(counts: Report, env: str | None, skip: str | None = None):
        for d in data_dirs:
            for name, path in layout.list_buckets(Path(d) / "buckets", env, lo, hi):
                if name.environment == skip:
                    continue
                reader = RecordReader(path)
                yield from _decoded(counts, reader)
                if reader.stats.corrupt_records or reader.stats.skipped_bytes and not reader.stats.torn_tail:
                    report.damaged_files.append(str(path))
        yield from _buck_events(counts, bucks, env, lo, hi, timeout, skip)

    def key_of(e: Event) -> bytes:
        return e.source_id or e.source.encode()

    report.sources = collect(_others(report, _inventory(report, events(report, environment))), key_of)
    if environment is not None:
        # The same files' lines and inventory in the other environments (a rule or
        # a table moved them; the inventory is in the tailer's environment).
        wanted = set(report.sources) | {identity for _, identity in report.inventory}
        if wanted:
            elsewhere = Report({})   # frames and events of the others are not this environment's counts
            related = _related(events(elsewhere, None, skip=environment), wanted, key_of)
            before = sum(src.events for src in report.sources.values())
            collect(_inventory(report, related, count=False), key_of, report.sources)
            report.elsewhere = sum(src.events for src in report.sources.values()) - before
            report.bad_frames += elsewhere.bad_frames
            report.unreachable += [w for w in elsewhere.unreachable if w not in report.unreachable]
            report.fetch_errors += elsewhere.fetch_errors
    return report


def _related(events: Iterable[Event], wanted: set[bytes], key_of) -> Iterator[Event]:
    """The events and inventory records of the contents in ``wanted``."""
    for e in events:
        if e.app == inventory.APP:
            try:
                if inventory.from_event(e).identity in wanted:
                    yield e
            except ValueError:
                pass
        elif span(e) is not None and key_of(e) in wanted:
            yield e


def _others(report: Report, events: Iterable[Event]) -> Iterator[Event]:
    """Note the ids of events not read from a file (they have no span), to count them once."""
    for e in events:
        if span(e) is None:
            report.other_ids.add(e.id)
        yield e


def _inventory(report: Report, events: Iterable[Event], count: bool = True) -> Iterator[Event]:
    """Take the inventory records out of the stream, keeping the latest of
    each (host, content) in ``report.inventory`` (with those already there);
    pass the other events on. ``count``: they are copies of the asked environment's."""
    order_of = report.inventory_order
    for e in events:
        if e.app != inventory.APP:
            yield e
            continue
        if count:
            report.inventory_events += 1
        try:
            rec = inventory.from_event(e)
        except ValueError:
            report.bad_inventory += 1
            continue
        k = (e.host, rec.identity)
        order = (e.time, rec.seq)
        if k not in order_of or order > order_of[k]:
            order_of[k] = order
            report.inventory[k] = rec


def _decoded(report: Report, frames: Iterable[bytes]) -> Iterator[Event]:
    for frame in frames:
        try:
            _, evs = codec.decode(frame)
        except FrameError:
            report.bad_frames += 1
            continue
        report.frames += 1
        report.events += len(evs)
        yield from evs


def _buck_events(report: Report, bucks: list[str], environment: str | None, lo: int | None, hi: int | None,
                 timeout: float, skip: str | None = None) -> Iterator[Event]:
    """The events of every bucket each buck lists (but those of environment ``skip``), fetched in chunks."""
    if not bucks:
        return
    from helios.query.client import QueryClient

    ns = 1_000_000_000
    with QueryClient(timeout=timeout) as qc:
        listings = qc.list_buckets(bucks, environment, None if lo is None else lo * ns,
                                   None if hi is None else hi * ns)
        for ep, entries in listings.items():
            if isinstance(entries, QueryError):
                report.unreachable.append(str(entries))
                continue
            report.answered += 1
            for entry in entries:
                if entry.environment == skip:
                    continue
                stream = qc.fetch_bucket(ep, entry.id)
                try:
                    yield from _decoded(report, stream)
                except QueryError as exc:
                    report.fetch_errors.append(f"{entry.id} from {ep}: {exc}")
                if stream.corrupt_records or stream.skipped_bytes and not stream.torn_tail:
                    report.damaged_files.append(f"{entry.id} on {ep}")


def render(report: Report, as_json: bool = False) -> str:
    gaps = report.gaps
    if as_json:
        return json.dumps({
            "frames": report.frames, "events": report.events, "stored_copies": report.events,
            "copies_in_other_environments": report.elsewhere,
            "distinct_events": report.distinct, "inventory_records": report.inventory_events,
            "bad_frames": report.bad_frames,
            "damaged_files": report.damaged_files, "unreachable": report.unreachable, "answered": report.answered,
            "fetch_errors": report.fetch_errors,
            "sources": [{"identity": k.hex(), "host": s.host, "path": s.path, "events": s.events,
                         "distinct": s.distinct,
                         "first": (m := s.merged())[0][0], "last": m[-1][1],
                         "environments": sorted(s.environments),
                         "gaps": [{"start": a, "end": b, "bytes": b - a} for a, b in s.gaps()]}
                        for k, s in sorted(report.sources.items(), key=lambda kv: (kv[1].host, kv[1].path))],
            "inventory": [{"host": f.host, "identity": f.record.identity.hex(), "paths": list(f.record.paths),
                           "size": f.record.size, "read": f.record.read, "end": f.record.end,
                           "detail": f.record.detail,
                           "missing": [{"start": a, "end": b, "bytes": b - a} for a, b in f.missing]}
                          for f in report.findings],
            "files_seen": len(report.inventory), "bad_inventory": report.bad_inventory,
            "ok": report.ok,
        }, indent=2)
    inv = f" (and {report.inventory_events:,} of inventory records)" if report.inventory_events else ""
    copies = report.events - report.inventory_events + report.elsewhere
    other = (f", {report.elsewhere:,} of them in other environments (lines of these files a rule or a table "
             "sent there)") if report.elsewhere else ""
    lines = [f"{report.distinct:,} distinct events held as {copies:,} stored "
             f"copies{inv} in {report.frames:,} frames from {len(report.sources)} files{other} (two live copies of "
             "each batch and one re-send of each closed spool window: about 3 copies of an event)."]
    for k, s in sorted(report.sources.items(), key=lambda kv: (kv[1].host, kv[1].path)):
        m = s.merged()
        g = s.gaps()
        state = "OK" if not g else f"{len(g)} GAP(S)"
        unit = "entries" if s.path.startswith("journal") else "bytes"   # a journal's spans are seqnums
        # Said when its lines are not all where they were asked for (or, asked for all, in more than one).
        apart = len(s.environments) > 1 if report.environment is None else s.environments != {report.environment}
        held = f", held in {', '.join(sorted(s.environments))}" if apart else ""
        lines.append(f"{s.host} {s.path} [{k.hex()[:12]}]: {unit} {m[0][0]:,}..{m[-1][1]:,}, "
                     f"{s.distinct:,} {'entries' if unit == 'entries' else 'lines'} ({s.events:,} copies{held}): "
                     f"{state}")
        for a, b in g:
            lines.append(f"    missing {unit} {a:,}..{b:,} ({b - a:,} {unit})")
    if report.bad_frames:
        lines.append(f"{report.bad_frames} frame(s) could not be decoded.")
    for path in report.damaged_files:
        lines.append(f"damaged bucket file (records skipped): {path}")
    for why in report.unreachable:
        lines.append(f"not audited: {why}")
    if not report.answered:
        lines.append("Nothing audited: no buck answered.")
    for why in report.fetch_errors:
        lines.append(f"not read whole: {why}")
    findings = report.findings
    if report.inventory:
        lines.append(f"Inventory: {len(report.inventory)} file(s) seen by the tailers.")
    for f in findings:
        r = f.record
        where = f"{f.host} {r.path} [{r.identity.hex()[:12]}]"
        for a, b in f.missing:
            if r.path.startswith("journal"):
                lines.append(f"{where}: entries {a:,}..{b:,} read, held by no buck ({b - a:,} entries)")
            else:
                lines.append(f"{where}: bytes {a:,}..{b:,} seen on disk, held by no buck ({b - a:,} bytes)")
        if f.short:
            lines.append(f"{where}: not read to its end ({r.read:,} of {r.size:,} bytes): {r.end}"
                         + (f": {r.detail}" if r.detail else ""))
        elif not r.end and r.path.startswith("journal"):
            lines.append(f"{where}: being read (the tailer had sent up to entry {r.read:,})")
        elif not r.end:
            lines.append(f"{where}: still being read (the tailer was at byte {r.read:,} of {r.size:,})")
    if report.bad_inventory:
        lines.append(f"{report.bad_inventory} inventory record(s) could not be read.")
    if not gaps and not findings:
        lines.append("No gaps: every byte range read is held by a buck, and every file seen was read to its end.")
    else:
        lines.append(f"{sum(len(v) for v in gaps.values())} gap(s) in {len(gaps)} file(s); "
                     f"{len(findings)} file(s) seen with bytes no buck holds or not read to their end.")
    return "\n".join(lines)
