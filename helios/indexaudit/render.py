"""The text and JSON of an index audit's report (``helios audit --index``): pure."""

from __future__ import annotations

import json

from helios.indexaudit.results import NS, IndexReport
from helios.timespec import iso_s


_SAY = {
    "missing": "  window {window}: {count:,} event(s) the bucks hold are not in the index",
    "extra": "  received in window {window}: {count:,} event(s) in the index that no buck holds",
    "moved": "  window {window}: {count:,} event(s) in the index at another time than the bucks hold them",
    "changed": "  window {window}: {count:,} event(s) in the index with another content than the bucks hold",
}


def _when(ns: int | None) -> str:
    return "-" if ns is None else (iso_s(ns / NS) or "-")


def elsewhere_line(into: str, windows: list[str], identity: str | None, porter_index: str | None) -> str:
    """Why windows loaded into another index (``into``) are not checked
    here, and what the porter does about it: it loads them again at its next
    start on this index, unless its config (``porter_index``) names another."""
    shown = ", ".join(windows[:5]) + (f" and {len(windows) - 5} more" if len(windows) > 5 else "")
    then = (f"the porter uses {porter_index}" if porter_index is not None and porter_index != identity
            else f"the porter loads them again at its next start on {identity}")
    return (f"  not checked: {len(windows)} window(s) were loaded into {into}, not this index ({identity}): "
            f"{then} ({shown})")


def render(report: IndexReport, as_json: bool = False) -> str:
    if as_json:
        return json.dumps({
            "index": report.index, "index_identity": report.identity, "porter_config_index": report.porter_index,
            "porter_state": report.state, "bucks": report.bucks, "content": report.content,
            "answered": report.answered, "unreachable": report.unreachable, "fetch_errors": report.fetch_errors,
            "pruned_while_read": report.vanished,
            "bad_frames": report.bad_frames,
            "environments": {env: {
                "windows_checked": e.windows_checked, "events_checked": e.events_checked,
                "index_events": e.index_events, "missing": e.missing_count, "extra": e.extra_count,
                "missing_windows": [vars(d) for d in e.missing], "extra_windows": [vars(d) for d in e.extra],
                "duplicates": e.duplicates, "duplicate_examples": e.duplicate_examples,
                "moved": e.moved_count, "moved_windows": [vars(d) for d in e.moved],
                "bucks_disagree": e.disagree,
                **({"content_checked": e.content_checked, "changed": e.changed_count,
                    "changed_windows": [vars(d) for d in e.changed], "bucks_disagree_content": e.content_disagree,
                    "content_skipped": e.content_skipped or None} if report.content else {}),
                "not_loaded": e.not_loaded, "pruned_windows": e.pruned, "too_old": e.too_old,
                "pending": e.pending, "set_aside": e.aside, "loaded_elsewhere": e.elsewhere,
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
                        + (f", {e.duplicates:,} DUPLICATED" if e.duplicates else "")
                        + (f", {e.moved_count:,} MOVED" if e.moved else "")
                        + (f", {e.changed_count:,} CHANGED" if e.changed else "")
                        + (", CONTENT NOT CHECKED" if e.content_skipped and e.windows_checked else "")))
        if report.content and not e.content_skipped and e.windows_checked:
            lines.append(f"  content compared for {e.content_checked:,} event(s)")
        for kind, diffs in (("missing", e.missing), ("extra", e.extra), ("moved", e.moved), ("changed", e.changed)):
            for d in diffs:
                lines.append(_SAY[kind].format(window=d.window, count=d.count))
                lines += [f"      {x}" for x in d.examples]
        if e.duplicates:
            lines.append(f"  {e.duplicates:,} id(s) held more than once in the index")
            lines += [f"      {x}" for x in e.duplicate_examples]
        nl = e.not_loaded
        if nl:
            shown = ", ".join(nl[:5]) + (f" and {len(nl) - 5} more" if len(nl) > 5 else "")
            lines.append(f"  not checked: {len(nl)} window(s) or copies not yet loaded by the porter: {shown}")
        for into, windows in sorted(e.elsewhere.items()):
            lines.append(elsewhere_line(into, windows, report.identity, report.porter_index))
        if e.pruned:
            lines.append(f"  not checked: {e.pruned} window(s) loaded and since pruned from every buck")
        if e.too_old:
            lines.append(f"  not checked: {e.too_old:,} event(s) older than the index keeps (recent_days)")
        if e.disagree:
            lines.append(f"  not checked for moves: {e.disagree:,} event(s) whose copies on the bucks differ in time "
                         "(a copy was altered)")
        if e.content_skipped:
            lines.append(f"  content not checked: {e.content_skipped}")
        if e.content_disagree:
            lines.append(f"  content not checked: {e.content_disagree:,} event(s) whose copies on the bucks differ in "
                         "content (a copy was altered)")
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
        lines.append("Nothing audited: no window is both loaded by the porter"
                     + (" into this index" if any(e.elsewhere for e in report.environments.values()) else "")
                     + " and still held by a buck.")
    elif report.ok:
        lines.append("No difference: every event of the windows loaded is in the index at its time"
                     + (", with the content the bucks hold" if report.content else "")
                     + ", and the index holds nothing the bucks do not.")
    else:
        bad = [e for e in report.environments.values() if not e.ok]
        lines.append(f"{sum(e.missing_count for e in bad):,} event(s) missing from the index and "
                     f"{sum(e.extra_count for e in bad):,} extra in it"
                     + (f", {moved:,} at another time" if (moved := sum(e.moved_count for e in bad)) else "")
                     + (f", {changed:,} with another content" if (changed := sum(e.changed_count for e in bad)) else "")
                     + ("; content not checked" if any(e.content_skipped for e in bad) else "")
                     + f", in {len(bad)} environment(s)"
                     + ("; and windows not read whole" if report.fetch_errors else "") + ".")
    return "\n".join(lines)

