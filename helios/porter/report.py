"""What the porter has done and what is behind, per environment: the data
of ``status.json`` and of ``helios porter status``. Pure: it reads a
listing of the bucks and the state's windows, and takes ``now``.

A window is *behind* for a job when the bucks still hold it and the job
should have run:

- index: closed on every buck that lists it, ``grace`` past its end, and
  not loaded from every buck that holds it;
- archive: ``archive_age`` past its end, not archived (nor blacklisted),
  or held by a buck whose copy the archive does not include yet;
- prune: past the buck retention age (``max(prune_age, archive_age)``),
  still held by a buck. Those of them not yet indexed or archived are
  *waiting*: they are pruned only once both jobs succeeded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from helios.porter import windows as win
from helios.porter.state import WindowState
from helios.query.protocol import BucketEntry
from helios.store import layout
from helios.store.layout import BucketName
from helios.timespec import iso_s

__all__ = ["Listed", "iso", "render", "summarize"]

Listed = list[tuple[BucketName, dict[str, BucketEntry]]]


def iso(start: int | float | None) -> str | None:
    if start is None:
        return None
    return iso_s(start)


def index_todo(name: BucketName, held: Mapping[str, BucketEntry], ws: WindowState | None, now: float,
               grace: float) -> dict[str, BucketEntry]:
    """The bucks whose copy of ``name`` the index still needs ({} when none,
    or when the window is not ready)."""
    if any(e.open for e in held.values()) or not win.due(name, now, grace):
        return {}
    if ws is None or not ws.indexed:
        return dict(held)
    return {ep: e for ep, e in held.items() if ep not in ws.index_sources}


def archive_todo(name: BucketName, held: Mapping[str, BucketEntry], ws: WindowState | None, now: float,
                 archive_age: float) -> dict[str, BucketEntry]:
    """The bucks whose copy of ``name`` the archive still needs."""
    if any(e.open for e in held.values()) or not win.older_than(name, now, archive_age):
        return {}
    if ws is not None and ws.skipped is not None:
        return {}
    if ws is None or ws.archived_at is None:
        return dict(held)
    return {ep: e for ep, e in held.items() if ep not in ws.archive_sources}


def prune_targets(held: Mapping[str, BucketEntry], ws: WindowState | None) -> list[str]:
    """The bucks that may delete this window now: those whose copy is in
    the index and in the archive (or the index alone, for a blacklisted
    window). The window must also be past the retention age (the caller's)."""
    if ws is None or not ws.indexed or not ws.archived:
        return []
    allowed = ws.index_sources if ws.archived_at is None else ws.index_sources & ws.archive_sources
    return [ep for ep, e in held.items() if ep in allowed and not e.open]


def summarize(listed: Listed | None, states: Iterable[WindowState], now: float, *, grace: float,
              archive_age: float, prune_age: float, environments: Iterable[str] = (),
              left_out: Mapping[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Per environment: the last window indexed, archived and pruned (from the
    state), the events left out of the index as too old (``State.left_out``)
    and, when ``listed`` (the bucks' holdings) is known, what is behind."""
    wanted = set(environments)
    states = list(states)
    by_name = {ws.name: ws for ws in states}
    out: dict[str, dict[str, Any]] = {}

    def env(e: str) -> dict[str, Any]:
        return out.setdefault(e, {"last_indexed": None, "last_archived": None, "last_pruned": None,
                                  "indexed_to": None, "archived_to": None, "pruned_to": None,
                                  "windows_indexed": 0, "events_indexed": 0, "inventory_records": 0,
                                  "windows_archived": 0,
                                  "archive_bytes": 0, "windows_skipped": 0, "windows_pruned": 0})

    for ws in states:
        if wanted and ws.name.environment not in wanted:
            continue
        d = env(ws.name.environment)
        start = ws.name.start
        if ws.indexed:
            d["windows_indexed"] += 1
            d["events_indexed"] += ws.index_events or 0   # as a search counts them
            d["inventory_records"] += ws.index_inventory or 0   # the tailers', left out of the index
            d["last_indexed"] = max(d["last_indexed"] or start, start)
            d["indexed_to"] = max(d["indexed_to"] or ws.name.end, ws.name.end)
        if ws.archived_at is not None:
            d["windows_archived"] += 1
            d["archive_bytes"] += ws.archive_size or 0
            d["last_archived"] = max(d["last_archived"] or start, start)
            d["archived_to"] = max(d["archived_to"] or ws.name.end, ws.name.end)
        if ws.skipped is not None:
            d["windows_skipped"] += 1
        if ws.pruned_from:
            d["windows_pruned"] += 1
            d["last_pruned"] = max(d["last_pruned"] or start, start)
            d["pruned_to"] = max(d["pruned_to"] or ws.name.end, ws.name.end)
    if listed is not None:
        prune_at = max(prune_age, archive_age)
        for name, held in listed:
            if wanted and name.environment not in wanted:
                continue
            d = env(name.environment)
            for k in ("held", "open", "index_behind", "archive_behind", "prune_behind", "prune_waiting"):
                d.setdefault(k, 0)
            d["held"] += 1
            if any(e.open for e in held.values()):
                d["open"] += 1
            known = by_name.get(name)
            behind = False
            if index_todo(name, held, known, now, grace):
                d["index_behind"] += 1
                behind = True
            if archive_todo(name, held, known, now, archive_age):
                d["archive_behind"] += 1
                behind = True
            if win.older_than(name, now, prune_at) and not any(e.open for e in held.values()):
                d["prune_behind"] += 1
                behind = True
                if not prune_targets(held, known):
                    d["prune_waiting"] += 1
            if behind:
                first = d.get("oldest_behind")
                d["oldest_behind"] = name.start if first is None else min(first, name.start)
    for e, lo in (left_out or {}).items():
        if not wanted or e in wanted:
            env(e)["too_old"] = {"events": lo["events"], "windows": lo["windows"],
                                 "oldest": iso(lo["oldest"] / 1e9), "newest": iso(lo["newest"] / 1e9),
                                 "last_at": iso(lo["last_at"])}
    for d in out.values():
        if listed is not None:
            for k in ("held", "open", "index_behind", "archive_behind", "prune_behind", "prune_waiting"):
                d.setdefault(k, 0)
        for k in ("last_indexed", "last_archived", "last_pruned", "indexed_to", "archived_to", "pruned_to",
                  "oldest_behind"):
            if d.get(k) is not None:
                d[k] = iso(d[k])
    return dict(sorted(out.items()))


def render(status: dict[str, Any]) -> str:
    """``helios porter status`` as text (``status`` as ``--json`` prints it)."""
    lines = []
    running = status.get("running")
    if running:
        lines.append(f"porter: running (pid {running['pid']}, status written {running['age']:.0f} s ago)")
        if running.get("doing"):
            since = f" (for {running['doing_for']:.0f} s)" if running.get("doing_for") is not None else ""
            lines.append(f"  now: {running['doing']}{since}")
    else:
        lines.append("porter: not running (no fresh status.json)" if status.get("status_file") else
                     "porter: has not run with this state directory yet")
    for job in ("index", "archive"):
        j = status.get(job)
        if j and j.get("state") == "down":
            lines.append(f"{job}: DOWN since {iso(j['since'])} ({j['failures']} failure(s)), retry in "
                         f"{j['retry_in']:.0f} s: {j['error']}. Nothing is pruned until it succeeds.")
        elif j:
            lines.append(f"{job}: ok ({j.get('where', '')})")
    moved = status.get("index_moved")
    if moved:
        lines.append(f"index changed from {moved['from']} to {moved['to']}: {moved['windows']} windows the bucks "
                     f"still hold will be loaded again (seen {iso(moved['at'])}; those not loaded yet show as "
                     "index behind)")
    configured = status.get("index_configured")
    if configured:
        more = (f": {configured['to_load_again']} windows the bucks still hold will be loaded again"
                if configured.get("to_load_again") is not None else "")
        lines.append(f"index changed from {configured['recorded']} to {configured['configured']} in the config; "
                     f"the porter loads into it once restarted{more}")
    bucks = status.get("bucks") or {}
    for ep, state in bucks.items():
        lines.append(f"buck {ep}: {'ok' if state == 'ok' else 'DOWN: ' + str(state)}")
    envs = status.get("environments") or {}
    if not envs:
        lines.append("no windows seen yet")
    for name, d in envs.items():
        lines.append(f"environment {name}:")
        # "to": the end of the last window done, as `helios status` shows it.
        inventory = (f"; and {d['inventory_records']} tailer inventory records, for the audit, not indexed"
                     if d.get("inventory_records") else "")
        lines.append(f"  indexed to     {d.get('indexed_to') or '-'}  ({d['windows_indexed']} windows, "
                     f"{d['events_indexed']} events{inventory})")
        lines.append(f"  archived to    {d.get('archived_to') or '-'}  ({d['windows_archived']} windows, "
                     f"{d['archive_bytes']} bytes; {d['windows_skipped']} blacklisted)")
        lines.append(f"  pruned to      {d.get('pruned_to') or '-'}  ({d['windows_pruned']} windows)")
        if d.get("too_old"):
            t = d["too_old"]
            lines.append(f"  too old        {t['events']} events left out of the index in {t['windows']} windows "
                         f"(times {t['oldest']} .. {t['newest']}, before the first day it keeps; last "
                         f"{t['last_at']})")
        if "held" in d:
            lines.append(f"  behind: index {d['index_behind']}, archive {d['archive_behind']}, prune "
                         f"{d['prune_behind']} (of which {d['prune_waiting']} wait for the index or the "
                         f"archive); oldest {d.get('oldest_behind') or '-'}; the bucks hold {d['held']} windows "
                         f"({d['open']} still open)")
        else:
            lines.append("  behind: unknown (no buck answered)")
    q = status.get("quarantine") or {}
    for name, d in sorted((q.get("environments") or {}).items()):
        lines.append(f"quarantine {name}: {d['events']} event(s) and {d['undecodable_frames']} undecodable "
                     f"frame(s) in {d['frames']} frame(s) of {d['windows']} window(s), last {iso(d['last_at'])}: "
                     f"{d['last_reason']}")
    if q.get("environments"):
        lines.append(f"  kept in {q['dir']} (bucket files; quarantine.jsonl says why)")
    return "\n".join(lines)


def parse_listed(holdings: Mapping[str, Mapping[str, BucketEntry]]) -> Listed:
    """``helios.query.client.holders`` output as (BucketName, {endpoint: entry}),
    skipping ids that are not bucket ids."""
    out: Listed = []
    for bucket_id, held in holdings.items():
        try:
            name = layout.parse_bucket_id(bucket_id)
        except ValueError:
            continue
        out.append((name, dict(held)))
    return out
