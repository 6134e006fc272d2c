"""The archive: old events, packed per (environment, window) and kept cheaply.

- ``format``: the object format (``pack``, ``unpack``, ``describe``), pure.
- ``store``: where objects rest (``FolderArchive``, ``S3Archive``,
  ``open_archive``) and their deterministic keys (``key_for``, ``window_of``).
- ``save`` and ``load`` below are the one place where an object's bytes pass
  between the two. Sealing at rest (PyNaCl) goes here: a sealer turns the
  packed bytes into what is stored and back, so neither the format nor the
  backends change, and a tampered object fails before anything is unpacked.

The porter's loop (what to archive when) is not here: this package is the
format and the storage it drives.
"""

from __future__ import annotations

from typing import Iterable, Protocol

from helios.archive.format import ArchiveInfo, canonical, describe, pack, unpack
from helios.archive.store import (Archive, FolderArchive, S3Archive, Stored, Window, key_for, open_archive,
                                  window_of)
from helios.errors import ArchiveError
from helios.model import Event

__all__ = [
    "Archive", "ArchiveInfo", "FolderArchive", "PLAIN", "S3Archive", "Sealer", "Stored", "Window",
    "canonical", "describe", "key_for", "load", "open_archive", "pack", "save", "unpack", "window_of",
]


class Sealer(Protocol):
    """Turns packed bytes into stored bytes and back. ``unseal`` raises
    ``ArchiveError`` for bytes it cannot trust."""

    def seal(self, key: str, data: bytes) -> bytes: ...
    def unseal(self, key: str, data: bytes) -> bytes: ...


class _Plain:
    """Objects stored as ``pack`` wrote them (the default)."""

    def seal(self, key: str, data: bytes) -> bytes:
        return data

    def unseal(self, key: str, data: bytes) -> bytes:
        return data


PLAIN: Sealer = _Plain()


def save(archive: Archive, key: str, events: Iterable[Event], *, environment: str | None = None,
         sealer: Sealer = PLAIN, **pack_opts) -> tuple[Stored, ArchiveInfo]:
    """Pack ``events`` and put them under ``key``; returns what was stored
    (verified by the backend) and the object's header."""
    data = pack(events, environment=environment, **pack_opts)
    info = describe(data)
    return archive.put(key, sealer.seal(key, data)), info


def load(archive: Archive, key: str, *, sealer: Sealer = PLAIN) -> list[Event]:
    """The events stored under ``key``; ``ArchiveError`` naming the key if
    the object is missing, corrupt or of an unknown format."""
    data = sealer.unseal(key, archive.get(key))
    try:
        return unpack(data)
    except ArchiveError as exc:
        raise ArchiveError(f"archive object {key}: {exc}", key=key) from None
