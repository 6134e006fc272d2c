"""Example lines of the events an index audit names: read again, from a
buck or from the index, only for the windows with a difference."""

from __future__ import annotations

from typing import Any

from helios import codec
from helios.errors import FrameError, HeliosError, QueryError
from helios.indexaudit.results import NS
from helios.store.layout import BucketName, bucket_id
from helios.timespec import iso_s


def line(t: int, id_: bytes, host: str, app: str, message: bytes) -> str:
    text = message[:160].decode("utf-8", "replace").replace("\n", "\\n")
    return f"{id_.hex()[:16]} {iso_s(t / NS)} {host} {app}: {text}"


def buck_examples(qc: Any, name: BucketName, eps: list[str], ids: list[bytes]) -> list[str]:
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
                        found[r[0]] = line(r[1], r[0], r[3], r[4], r[8])
                if len(found) == len(ids):
                    break
        except QueryError:
            continue
        if len(found) == len(ids):
            break
    return [found.get(i, f"{i.hex()[:16]} (not read again)") for i in ids]


def index_example(index: Any, env: str, t: int, id_: bytes) -> str:
    try:
        _, e, _ = index.context(env, t, id_, 0, 0)
    except HeliosError:
        e = None
    if e is None:
        return f"{id_.hex()[:16]} {iso_s(t / NS)}"
    return line(e.time, e.id, e.host, e.app, e.message)
