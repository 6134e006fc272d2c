"""Events out of an index, for incident recovery: bucket files or NDJSON.

**Bucket files** (``BucketExport``): the buck's own layout under a
directory, ``DIR/buckets/ENV/YYYYMMDD/HHMMSS-<width>s.bkt`` (windows of the
events' times), each record a batch frame of up to ``per_frame`` events
(``helios.store.records`` and ``helios.codec``: the formats the bucks
write). A buck started with ``--data-dir DIR`` serves them like its own:
the porter indexes and archives them, and ``helios rebuild`` reads them.
Events keep every field: the same ids, times, bytes and fields.

**NDJSON**: one object per event, the JSON form of ``helios.eventform``
(``to_json`` / ``from_json``, inverses), the same as ``helios subscribe -o json``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from helios import codec
from helios.model import Event
from helios.store import layout
from helios.store.records import RecordWriter

__all__ = ["BucketExport"]

NS = 1_000_000_000
PER_FRAME = 1000
SENDER = "helios-export"


class BucketExport:
    """Writes events (in time order) as bucket files under ``root``; refuses
    to add to a bucket file that exists, so that an export never mixes with
    what a buck wrote."""

    def __init__(self, root: str | os.PathLike, width: int = 60, per_frame: int = PER_FRAME) -> None:
        self.root = layout.buckets_root(root)
        self.width = width
        self.per_frame = per_frame
        self.files: list[Path] = []
        self.events = 0
        self._writer: RecordWriter | None = None
        self._name: layout.BucketName | None = None
        self._pending: list[Event] = []

    def add(self, events: Iterable[Event]) -> None:
        for e in events:
            start = layout.window_start(e.time, self.width)
            if self._name is None or self._name.start != start or self._name.environment != e.environment:
                self._flush()
                self._open(layout.BucketName(e.environment, start, self.width))
            self._pending.append(e)
            if len(self._pending) >= self.per_frame:
                self._flush()

    def _open(self, name: layout.BucketName) -> None:
        if self._writer is not None:
            self._writer.close()
        path = self.root / name.relpath()
        if path in self.files:
            raise ValueError(f"events out of time order: window {layout.bucket_id(name)} came back")
        if path.exists():
            raise FileExistsError(f"{path} exists: export into a new directory (or one without these windows)")
        self._writer = RecordWriter(path)
        self._name = name
        self.files.append(path)

    def _flush(self) -> None:
        if self._pending:
            env = self._pending[0].environment
            self._writer.append(codec.encode_events(env, SENDER, self._pending))
            self.events += len(self._pending)
            self._pending = []

    def close(self) -> None:
        self._flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
