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

from typing import Any

from helios.archive import format as fmt
from helios.archive.store import FolderArchive, S3Archive, key_for
from helios.errors import ArchiveError
from helios.model import Event

__all__ = ["archive_spec", "archive_window", "open_archive"]

NS = 1_000_000_000


def archive_spec(cfg) -> dict:
    """The plain-data description of ``[porter]``'s archive (crosses to workers).
    The sealing key files are checked here, at start (``ServiceError`` naming
    the file), not first in a worker."""
    from helios.archive.seal import load_sealer

    load_sealer(cfg.archive_public_key, cfg.archive_secret_key)
    return {"archive": cfg.archive, "archive_dir": cfg.archive_dir, "s3_bucket": cfg.s3_bucket,
            "s3_prefix": cfg.s3_prefix, "s3_endpoint": cfg.s3_endpoint, "archive_level": cfg.archive_level,
            "archive_public_key": cfg.archive_public_key, "archive_secret_key": cfg.archive_secret_key}


def open_archive(spec: dict):
    """The archive's backend; sealed (``helios.archive.seal.SealedArchive``)
    when an archive key is set, so that what is put is sealed and what is
    got is unsealed and checked."""
    from helios.archive.seal import SealedArchive, load_sealer

    if spec["archive"] == "folder":
        backend = FolderArchive(spec["archive_dir"])
    elif spec["archive"] == "s3":
        backend = S3Archive(spec["s3_bucket"], spec["s3_prefix"], endpoint_url=spec["s3_endpoint"] or None)
    else:
        raise ArchiveError(f"unknown archive kind {spec['archive']!r}: use folder or s3")
    sealer = load_sealer(spec.get("archive_public_key", ""), spec.get("archive_secret_key", ""))
    return backend if sealer is None else SealedArchive(backend, sealer)


def describe_location(spec: dict) -> str:
    if spec["archive"] == "s3":
        where = f"s3://{spec['s3_bucket']}/{spec['s3_prefix'].strip('/')}".rstrip("/")
        return where + (f" at {spec['s3_endpoint']}" if spec["s3_endpoint"] else "")
    return spec["archive_dir"]


def archive_window(archive, args: dict, events: list[Event]) -> list[Any]:
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
