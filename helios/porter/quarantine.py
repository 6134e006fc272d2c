"""The porter's quarantine: what it fetched but cannot index or archive.

One bad event must never block a window: a frame that does not decode (a
buck of an older version stored it, or it was damaged) and an event that
decodes but that no index or archive can hold (a time or an offset beyond
int64, a wrong type, fields of msgpack extension types: ``codec``'s
``_storage_problem``) are set aside here, and the rest of the
window goes on (``helios.porter.merge.Merger.set_aside``). Nothing is
dropped: the frame that held them is kept exactly as the buck stored it,
before the window is marked (so before the bucks may prune it).

On disk, under ``STATE_DIR/quarantine/``:

- ``buckets/ENV/YYYYMMDD/HHMMSS-<width>s.bkt``: a bucket file per window
  (``helios.store``'s record format and layout, so ``helios buck
  --data-dir STATE_DIR/quarantine`` serves them to ``helios buckets get``
  and ``helios audit --data-dir`` reads them), each record one frame as
  the bucks held it (its good events are in the index too);
  ``helios porter quarantine`` prints what was set aside, event by event,
  with why;
- ``quarantine.jsonl``: one JSON line per frame set aside: window, xxh3-128
  digest of the frame, events set aside (null: the frame does not decode),
  the first reasons, and when. It is what ``helios porter status`` and
  ``helios status`` count, and how a frame is kept once (a window is
  fetched for the index and again for the archive).

Both are appended and fsynced, the bucket file first: a crash between the
two writes at most keeps a frame twice. Once looked into, the directory may
be moved away (``mv STATE_DIR/quarantine STATE_DIR/quarantine-DATE``): the
porter starts a new one, and stops reporting the old one within a minute.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Iterator

import xxhash

from helios.store import layout
from helios.store.layout import BucketName
from helios.store.records import RecordWriter

log = logging.getLogger(__name__)

__all__ = ["Quarantine", "entries", "problem_line", "read_log", "summarize"]

LOG = "quarantine.jsonl"


class Quarantine:
    """The quarantine of one porter state directory (see the module docstring).

    Two porters may share a state directory, and one's index job and the
    other's archive job of a window may set aside the same frame at once:
    ``put`` holds an exclusive ``flock`` on ``quarantine/lock`` and reads
    what the log gained since it last looked, so a frame is kept once and no
    writer truncates another's record."""

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.dir = Path(state_dir) / "quarantine"
        self.root = self.dir / layout.BUCKETS_DIR
        self._known: set[str] = set()
        self._read_to = 0          # bytes of the log read into _known
        self._log_id: tuple[int, int] | None = None

    def _catch_up(self) -> None:
        """Add the log's new lines to ``_known`` (all of it when the log is
        another file than before: an operator moved the quarantine away)."""
        try:
            with open(self.dir / LOG, "rb") as f:
                st = os.fstat(f.fileno())
                if (st.st_dev, st.st_ino) != self._log_id or st.st_size < self._read_to:
                    self._known, self._read_to, self._log_id = set(), 0, (st.st_dev, st.st_ino)
                f.seek(self._read_to)
                tail = f.read()
        except FileNotFoundError:
            self._known, self._read_to, self._log_id = set(), 0, None
            return
        end = tail.rfind(b"\n") + 1      # a torn last line is read again once whole
        for entry in _entries(tail[:end].decode("utf-8", "replace")):
            self._known.add(entry["frame"])
        self._read_to += end

    def put(self, name: BucketName, items: list[tuple[bytes, int | None, list[str]]]) -> int:
        """Keep the frames ``items`` (frame, events set aside or None for a
        frame that does not decode, reasons) of window ``name``, each once;
        returns how many were new. ``OSError`` or ``RecordError`` when they
        cannot be written: the caller leaves the window for later."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._catch_up()
            new = [(xxhash.xxh3_128_hexdigest(frame), frame, n, why) for frame, n, why in items]
            new = [item for item in new if item[0] not in self._known]
            if not new:
                return 0
            path = layout.bucket_path(self.root, name.environment, name.start, name.width)
            path.parent.mkdir(parents=True, exist_ok=True)
            with RecordWriter(path, fsync=True) as w:
                w.append_many([frame for _, frame, _, _ in new])
                w.fsync()
            now = time.time()
            lines = "".join(json.dumps({"window": layout.bucket_id(name), "frame": digest, "events": n,
                                        "reasons": why[:3], "at": now}) + "\n" for digest, _, n, why in new)
            fd = os.open(self.dir / LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, lines.encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            self._catch_up()
            return len(new)


def _entries(text: str) -> Iterator[dict[str, Any]]:
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("frame"), str):
            yield entry


def read_log(directory: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The entries of ``quarantine.jsonl`` (a torn last line is skipped)."""
    try:
        text = (Path(directory) / LOG).read_text(errors="replace")
    except OSError:
        return []  # none yet (or unreadable: writing to it says so, loudly)
    return list(_entries(text))


def summarize(state_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """What the quarantine holds, per environment: frames, events set aside
    (frames that do not decode count as frames only), windows, the last
    entry's time and first reason; and where it is."""
    directory = Path(state_dir) / "quarantine"
    envs: dict[str, dict[str, Any]] = {}
    windows: dict[str, set[str]] = {}
    for e in read_log(directory):
        env = str(e.get("window", "?")).split("/", 1)[0]
        d = envs.setdefault(env, {"frames": 0, "events": 0, "undecodable_frames": 0, "windows": 0,
                                  "last_at": None, "last_reason": None})
        d["frames"] += 1
        if isinstance(e.get("events"), int):
            d["events"] += e["events"]
        else:
            d["undecodable_frames"] += 1
        windows.setdefault(env, set()).add(str(e.get("window")))
        d["windows"] = len(windows[env])
        if d["last_at"] is None or (e.get("at") or 0) >= d["last_at"]:
            d["last_at"] = e.get("at")
            d["last_reason"] = (e.get("reasons") or [None])[0]
    return {"dir": str(directory), "environments": envs}


def entries(state_dir: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """What the quarantine holds, as JSON-ready dicts: each event set aside
    (as sent: its fields by name, message and ids as text, with the
    problem), and each frame that does not decode (its size and why),
    window by window (``helios porter quarantine``)."""
    from helios import codec
    from helios.errors import FrameError
    from helios.model import Event
    from helios.store.records import read_records

    root = Path(state_dir) / "quarantine" / layout.BUCKETS_DIR
    for name, path in layout.list_buckets(root):
        window = layout.bucket_id(name)
        for frame in read_records(path):
            aside: list[tuple[int, Any, str]] = []   # (position, row as sent, problem)
            try:
                codec.decode_rows(frame, set_aside=aside)
            except FrameError as exc:
                yield {"window": window, "frame_bytes": len(frame), "problem": str(exc)}
                continue
            for i, row, why in aside:
                event = dict(zip(Event._fields, row)) if type(row) is list else {"row": row}
                yield {"window": window, "event": i, "problem": why, **{k: _plain(v) for k, v in event.items()}}


def _plain(value: Any) -> Any:
    """A value as sent, for JSON: bytes as text (ids as hex), the rest as is
    when JSON has it, else its repr."""
    if isinstance(value, bytes):
        return value.hex() if len(value) == 16 else value.decode("utf-8", "replace")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return repr(value)


def problem_line(summary: dict[str, Any]) -> str | None:
    """One sentence for ``helios status`` when the quarantine holds anything."""
    envs = summary.get("environments") or {}
    frames = sum(d["frames"] for d in envs.values())
    if not frames:
        return None
    events = sum(d["events"] for d in envs.values())
    undecodable = sum(d["undecodable_frames"] for d in envs.values())
    return (f"{events} event(s) and {undecodable} undecodable frame(s) could not be indexed or archived and are "
            f"kept in quarantine ({summary['dir']}; see helios porter status)")

