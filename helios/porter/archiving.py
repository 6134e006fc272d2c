"""The porter's archive job: one window's events into one archive object.

``archive_window`` packs the events (``helios.archive.format``: dedup by
id, canonical order, zstd), stores them under the window's key
(``helios.archive.store.key_for``) and returns what was stored, once the
backend has read it back intact (``put`` verifies size and SHA-256). Two
porters packing the same events write the same bytes, so a second put of a
key is harmless.

An object already stored under the key (a window archived again because
a buck that was down at the time turned up with a copy, or archived by
another porter) is read back and its events merged with the new ones, so a
rewrite never loses what was archived before.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from helios.archive import format as fmt
from helios.archive.store import Archive, FolderArchive, S3Archive, key_for
from helios.errors import ArchiveError
from helios.model import Event
from helios.timespec import iso_s

if TYPE_CHECKING:
    from helios.config import Porter as PorterConfig

__all__ = ["archive_spec", "archive_window", "open_archive"]

NS = 1_000_000_000


def archive_spec(cfg: PorterConfig) -> dict[str, Any]:
    """The plain-data description of ``[porter]``'s archive (crosses to workers).
    The sealing key files are checked here, at start (``ServiceError`` naming
    the file), not first in a worker."""
    from helios.archive.seal import load_sealer

    load_sealer(cfg.archive_public_key, cfg.archive_secret_key)
    return {"archive": cfg.archive, "archive_dir": cfg.archive_dir, "s3_bucket": cfg.s3_bucket,
            "s3_prefix": cfg.s3_prefix, "s3_endpoint": cfg.s3_endpoint, "archive_level": cfg.archive_level,
            "archive_public_key": cfg.archive_public_key, "archive_secret_key": cfg.archive_secret_key,
            "state_dir": cfg.state_dir}


def open_archive(spec: dict[str, Any]) -> Archive:
    """The archive's backend; sealed (``helios.archive.seal.SealedArchive``)
    when an archive key is set, so that what is put is sealed and what is
    got is unsealed and checked."""
    from helios.archive.seal import SealedArchive, load_sealer

    backend: Archive
    if spec["archive"] == "folder":
        backend = FolderArchive(spec["archive_dir"])
    elif spec["archive"] == "s3":
        backend = S3Archive(spec["s3_bucket"], spec["s3_prefix"], endpoint_url=spec["s3_endpoint"] or None)
    else:
        raise ArchiveError(f"unknown archive kind {spec['archive']!r}: use folder or s3")
    sealer = load_sealer(spec.get("archive_public_key", ""), spec.get("archive_secret_key", ""))
    archive = backend if sealer is None else SealedArchive(backend, sealer)
    records = Path(spec.get("state_dir") or "") / "porter.db"
    return Recorded(archive, records) if spec.get("state_dir") and records.exists() else archive


class Recorded:
    """An archive whose reads are checked against the porter's records
    (``STATE_DIR/porter.db``): an object holding fewer events than the
    porter recorded for its window is an older copy put back (a rollback:
    whoever can write to the store can put back any object it saw, and an
    older sealed copy passes its seal), and is refused. A window is only
    ever rewritten with more events (the old object's merged with new
    ones), so its event count orders its versions. A window the records
    do not know (archived by another state directory, or before these
    records were kept) is not checked. Everything else is the wrapped archive's."""

    def __init__(self, archive: Archive, records: Path) -> None:
        self.archive = archive
        self.records = records

    def __getattr__(self, name: str) -> Any:
        return getattr(self.archive, name)

    def __repr__(self) -> str:
        return f"Recorded({self.archive!r}, {str(self.records)!r})"

    def recorded(self, key: str) -> tuple[int, float] | None:
        """(events, when) the porter recorded for ``key``'s window, or None."""
        import sqlite3

        from helios.archive.store import window_of

        try:
            w = window_of(key)
        except ArchiveError:
            return None
        try:
            db = sqlite3.connect(f"file:{self.records}?mode=ro", uri=True, timeout=30.0)
            try:
                row = db.execute("SELECT archive_events, archived_at FROM archived WHERE environment=? AND "
                                 "start=? AND width=? AND archive_key=?",
                                 (w.environment, w.start_ns // NS, w.width_s, key)).fetchone()
            finally:
                db.close()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return None  # records of a porter from before the table: nothing to check against
            raise ArchiveError(f"cannot read the porter's records {self.records} to check archive object {key}: "
                               f"{exc}", key=key) from None
        except sqlite3.Error as exc:
            raise ArchiveError(f"cannot read the porter's records {self.records} to check archive object {key}: "
                               f"{exc}", key=key) from None
        return None if row is None or row[0] is None else (row[0], row[1])

    def get(self, key: str) -> bytes:
        data = self.archive.get(key)
        rec = self.recorded(key)
        if rec is not None:
            try:
                count = fmt.describe(data).count
            except ArchiveError:
                return data  # not an object at all: the reader's unpack says so
            if count < rec[0]:
                when = iso_s(rec[1] or 0)
                raise ArchiveError(f"archive object {key} holds {count} event(s), fewer than the {rec[0]} the "
                                   f"porter recorded when it archived the window at {when}: it is an older copy put "
                                   "back (rolled back); refused, nothing of it loaded. Put back the latest copy, or "
                                   "archive the window again from the bucks.", key=key)
        return data


def describe_location(spec: dict[str, Any]) -> str:
    if spec["archive"] == "s3":
        where = f"s3://{spec['s3_bucket']}/{spec['s3_prefix'].strip('/')}".rstrip("/")
        return where + (f" at {spec['s3_endpoint']}" if spec["s3_endpoint"] else "")
    return str(spec["archive_dir"])


def archive_window(archive: Archive, args: dict[str, Any], events: Sequence[Event]) -> list[Any]:
    """Store the window ``args`` (environment, start s, width s, level)
    holding ``events``; returns [key, size, sha256, events]."""
    env = args["environment"]
    key = key_for(env, args["start"] * NS, args["width"])
    if archive.head(key) is not None:
        # Unreadable (ArchiveError): left alone and reported, never overwritten.
        events = fmt.unpack(archive.get(key)) + list(events)
    data = fmt.pack(events, environment=env, level=args.get("level", fmt.DEFAULT_LEVEL))
    stored = archive.put(key, data)
    return [stored.key, stored.size, stored.sha256, fmt.describe(data).count]
