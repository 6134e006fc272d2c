"""The bucks' side of ``helios audit --index``: what their copies of a
window hold, decoded and deduplicated as the porter does (one copy of that
logic: ``helios.porter.merge.Merger`` for frames, ``helios.index.base.searchable``
for what an index takes), a frame at a time; and the second ask, once the
index was read (``catch_up``)."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from helios.errors import QueryError
from helios.index.base import searchable
from helios.indexaudit.compare import Scratch
from helios.indexaudit.results import EnvReport, IndexReport
from helios.porter.merge import Merger


def listed(qc: Any, bucks: list[str], env: str | None, lo_ns: int | None) -> tuple[dict, list]:
    """The bucks' listings (endpoint -> entries or QueryError) of windows
    from ``lo_ns`` on, and the windows they hold: [(BucketName, {endpoint:
    entry})], as the porter reads them."""
    from helios.porter.report import parse_listed
    from helios.query.client import holders

    listings = qc.list_buckets(bucks, env, lo_ns, None)
    return listings, parse_listed(holders(listings))


def rows(report: IndexReport, qc: Any, ep: str, entry: Any, env: str, taken: set[bytes],
         er: EnvReport | None) -> Iterable[Sequence]:
    """The searchable rows (id, time, ...) of one buck's copy of a window,
    a frame at a time, as the porter decodes them, but those of frames
    whose digest is in ``taken`` (added to it); ``er``: count what the
    porter sets aside."""
    stream = qc.fetch_bucket(ep, entry.id)
    try:
        for frame in stream:
            # A Merger a frame: the porter's own dedup and decoding, with memory of one frame.
            m = Merger(env, taken=taken)
            m.add_frame(frame)
            taken |= m.digests
            report.bad_frames += m.bad_frames      # undecodable, or of another environment: set aside too
            if not m.frames:
                continue
            if er is not None:
                er.aside += m.events_aside
            yield searchable(m.rows())
    except QueryError as exc:
        if pruned_meanwhile(qc, ep, entry):
            report.vanished.append(f"{entry.id} on {ep}")
        else:
            report.fetch_errors.append(f"{entry.id} from {ep}: {exc}")


def pruned_meanwhile(qc: Any, ep: str, entry: Any) -> bool:
    """Did the buck stop holding the window while it was read (the porter pruned it)?"""
    listing = qc.list_buckets([ep], entry.environment, entry.start, entry.end).get(ep)
    return not isinstance(listing, QueryError) and listing is not None and all(e.id != entry.id for e in listing)


def catch_up(report: IndexReport, qc: Any, scratch: Scratch, env: str, held: list, w_of: dict,
             lo_ns: int | None, er: EnvReport) -> int:
    """After the index was read: the copies the bucks hold now that were
    open or not there when they were first read (a mesh at work appends to
    its open windows and opens new ones, and the porter loads them early),
    as copies not loaded, so that what the index took from them meanwhile
    is not called extra. Closed copies do not change. Returns the events read.

    Why once is enough: every event the index was read with was loaded
    before it was read, so before this ask, from a copy a buck held then;
    a copy is pruned only once archived and ``prune_age`` old, so this ask
    finds it (a porter pruning at once, ``prune_age`` 0, may beat it: those
    events would look extra). What the porter loads after the index was
    read is not in what was read."""
    done = {(name, ep) for name, copies in held for ep, e in copies.items() if not e.open}
    listings, now_held = listed(qc, report.bucks, env, lo_ns)
    if any(isinstance(r, QueryError) for r in listings.values()):
        er.extras_skipped = "a buck did not answer when asked again, after the index was read"
    events = 0
    for name, copies in now_held:
        fresh = [(ep, entry) for ep, entry in copies.items() if (name, ep) not in done]
        if not fresh:
            continue
        with scratch.batch():
            for ep, entry in fresh:
                for page in rows(report, qc, ep, entry, env, set(), None):
                    scratch.not_loaded(page, w_of.get(name))
                    events += len(page)
    return events
