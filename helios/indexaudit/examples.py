"""Example lines of the events an index audit names: read again, from a
buck or from the index, only for the windows with a difference."""

from __future__ import annotations

from typing import Any

from helios import codec
from helios.errors import FrameError, HeliosError, QueryError
from helios.indexaudit.results import NS
from helios.model import ROW_FIELDS, Event, severity_name
from helios.store.layout import BucketName, bucket_id
from helios.timespec import iso_s


def line(t: int, id_: bytes, host: str, app: str, message: bytes) -> str:
    text = message[:160].decode("utf-8", "replace").replace("\n", "\\n")
    return f"{id_.hex()[:16]} {iso_s(t / NS)} {host} {app}: {text}"


def buck_rows(qc: Any, name: BucketName, eps: list[str], ids: list[bytes]) -> dict[bytes, Any]:
    """The rows of ``ids`` as a buck holds them (read once more: only for windows with a difference)."""
    found: dict[bytes, Any] = {}
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
                        found[r[0]] = r
                if len(found) == len(ids):
                    break
        except QueryError:
            continue
        if len(found) == len(ids):
            break
    return found


def buck_examples(qc: Any, name: BucketName, eps: list[str], ids: list[bytes]) -> list[str]:
    """The lines of ``ids`` as a buck holds them (read once more: only for windows with a difference)."""
    found = buck_rows(qc, name, eps, ids)
    return [line(r[1], r[0], r[3], r[4], r[8]) if (r := found.get(i)) is not None else f"{i.hex()[:16]} (not read again)"
            for i in ids]


# What a changed event is shown by: its parts (Event fields) but the id and time, which are compared apart.
_PARTS = ("received", "host", "app", "severity", "source", "offset", "message", "fields", "source_id")


def _shown(v: Any) -> str:
    if isinstance(v, bytes):
        text = repr(v[:80].decode("utf-8", "replace")) + ("..." if len(v) > 80 else "")
    elif isinstance(v, int) and not isinstance(v, bool) and v > 10**17:     # a time in ns
        text = iso_s(v / NS) or str(v)
    else:
        text = repr(v)
        text = text[:80] + ("..." if len(text) > 80 else "")
    return text.replace("\n", "\\n")


def _part(e: Event, p: str) -> Any:
    v = getattr(e, p)
    return severity_name(v) if p == "severity" and v is not None else v


def changed_example(row: Any, indexed: Event | None, id_: bytes, t: int) -> str:
    """One line: the event (as the bucks hold it), then each part the index holds otherwise, both ways."""
    if row is None:
        return f"{id_.hex()[:16]} {iso_s(t / NS)} (not read again from the bucks)"
    held = Event(*row[:ROW_FIELDS])
    head = line(held.time, held.id, held.host, held.app, held.message)
    if indexed is None:
        return f"{head} (not read again from the index)"
    diffs = [f"{p}: the bucks hold {_shown(_part(held, p))}, the index {_shown(_part(indexed, p))}"
             for p in _PARTS if getattr(held, p) != getattr(indexed, p)]
    return f"{head} | " + ("; ".join(diffs) or "the index stores it otherwise, in a part not read back as the event "
                           "(Elasticsearch/OpenSearch: fields or fields_kv, altered, or a day indexed before "
                           "fields_kv existed)")


def index_event(index: Any, env: str, t: int, id_: bytes) -> Event | None:
    try:
        _, e, _ = index.context(env, t, id_, 0, 0)
    except HeliosError:
        return None
    return e


def index_example(index: Any, env: str, t: int, id_: bytes) -> str:
    try:
        _, e, _ = index.context(env, t, id_, 0, 0)
    except HeliosError:
        e = None
    if e is None:
        return f"{id_.hex()[:16]} {iso_s(t / NS)}"
    return line(e.time, e.id, e.host, e.app, e.message)
