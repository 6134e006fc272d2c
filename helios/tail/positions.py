"""The tailer's positions file: how far each file's events are safe.

An entry is keyed by the file's identity (its source key: device, inode,
first line, generation), never by path, so a renamed file keeps its place and
a new file at an old path does not inherit it. The offset saved is the
*committed* offset: the first byte whose event is not yet in the spool (or,
with the spool off, not yet taken by a buck). An offset never runs ahead of
data that is safe on disk, so a crash at any line re-reads, never skips.

The file is JSON with a version, replaced with ``write_atomic`` (temporary
file, fsync, rename, fsync of the directory). A file that cannot be read as
this format is never silently reset: ``load`` moves it aside and reports it,
and the tailer then reads every file from its beginning (ids are derived from
identity and offset, so what is read twice is deduplicated downstream).
"""

from __future__ import annotations

import base64
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from helios.store.atomic import write_atomic

log = logging.getLogger(__name__)

VERSION = 1


@dataclass
class Position:
    path: str          # where the file was last seen
    dev: int
    ino: int
    fingerprint: bytes  # the first line (up to FINGERPRINT_BYTES)
    generation: int    # bumped each time the file is truncated in place
    offset: int        # committed: every event before it is safe
    seen: float        # wall time the file was last read (s)
    done: bool = False  # rotated away and read to its end: nothing left to finish


@dataclass
class Positions:
    files: dict[str, Position] = field(default_factory=dict)   # key hex -> position
    spool: dict[str, int] = field(default_factory=dict)        # spool bucket relpath -> times sent
    saved_at: float = 0.0
    recovered: bool = False  # the file was corrupt and moved aside: read everything again

    def fingerprint(self) -> tuple:
        """What changes when there is something new to save (offsets, files,
        spool state), cheaply."""
        return (sum(p.offset for p in self.files.values()), len(self.files),
                sum(p.done for p in self.files.values()), tuple(sorted(self.spool.items())))

    def to_bytes(self) -> bytes:
        files = {}
        for key, p in self.files.items():
            d = asdict(p)
            d["fingerprint"] = base64.b64encode(p.fingerprint).decode()
            files[key] = d
        return json.dumps({"version": VERSION, "saved_at": time.time(), "files": files,
                           "spool": self.spool}, indent=0, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> "Positions":
        doc = json.loads(data)
        if not isinstance(doc, dict) or doc.get("version") != VERSION:
            raise ValueError(f"unknown positions format version {doc.get('version') if isinstance(doc, dict) else None!r}")
        files = {}
        for key, d in doc["files"].items():
            d = dict(d)
            d["fingerprint"] = base64.b64decode(d["fingerprint"])
            files[key] = Position(**d)
        spool = {str(k): int(v) for k, v in doc.get("spool", {}).items()}
        return cls(files, spool, float(doc.get("saved_at", 0.0)))


def load(path: Path) -> Positions:
    """Read the positions file; a missing one is empty, a corrupt one is moved
    aside (reported at ERROR) and marked ``recovered``."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Positions()
    try:
        return Positions.from_bytes(data)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
        path.rename(aside)
        log.error("The positions file %s is corrupt (%s); it was moved to %s, and every followed file "
                  "will be read again from its beginning (duplicates are removed downstream by id).",
                  path, exc, aside)
        return Positions(recovered=True)


def save(path: Path, positions: Positions) -> None:
    write_atomic(path, positions.to_bytes())
