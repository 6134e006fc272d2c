"""Where bucket files live and how they are named.

A bucket holds the records of one environment for one time window. Window
widths divide a day (86400 s), so windows align to UTC midnight and never
straddle two days. A bucket's path is a pure function of its name::

    ROOT/ENV/YYYYMMDD/HHMMSS-<width>s.bkt      e.g. buckets/prod/20240131/235900-60s.bkt

where ROOT is ``DATA_DIR/buckets`` (``buckets_root``) and the date and time
are the UTC start of the window. A bucket's id, as the bucket query protocol
and the operator tools name it, is that path without ROOT and suffix
(``prod/20240131/235900-60s``): ``bucket_id`` and ``parse_bucket_id`` are
inverses, and the parser refuses what ``bucket_id`` could not have made. ``bucket_path`` and ``parse_bucket_path`` are
inverses; a path that ``bucket_path`` could not have made (stray files, temp
files, non-canonical spellings such as ``060s``) is refused by the parser and
skipped by ``list_buckets``.

The environment name comes from the network (batch headers, HTTP requests),
so it is checked before it becomes a path component: a name matching
``ENV_PATTERN`` starts with a letter or digit and holds no ``/``, so ``..``,
``.``, ``""`` and absolute paths cannot escape ROOT.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Union

__all__ = [
    "BUCKETS_DIR",
    "BucketName",
    "DAY",
    "ENV_PATTERN",
    "SUFFIX",
    "bucket_id",
    "bucket_path",
    "buckets_root",
    "list_buckets",
    "parse_bucket_id",
    "parse_bucket_path",
    "valid_environment",
    "window_start",
]

log = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

ENV_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
BUCKETS_DIR = "buckets"
SUFFIX = ".bkt"
DAY = 86400

_ENV_RE = re.compile(ENV_PATTERN)
_DATE_RE = re.compile(r"(\d{4})(\d{2})(\d{2})")
_FILE_RE = re.compile(r"(\d{2})(\d{2})(\d{2})-([1-9]\d*)s" + re.escape(SUFFIX))
# datetime cannot format years past 9999, and the directory names want 4 digits.
_MAX_START = int(datetime(9999, 12, 31, tzinfo=timezone.utc).timestamp())


def buckets_root(data_dir: PathLike) -> Path:
    """ROOT for a data directory: ``DATA_DIR/buckets``."""
    return Path(data_dir) / BUCKETS_DIR


def valid_environment(name: str) -> bool:
    """Is ``name`` usable as an environment (and so as one path component)?"""
    return isinstance(name, str) and _ENV_RE.fullmatch(name) is not None


def _check_width(width_s: int) -> None:
    if not isinstance(width_s, int) or isinstance(width_s, bool) or width_s <= 0 or DAY % width_s:
        raise ValueError(f"A bucket window width must be a whole number of seconds dividing 86400, not {width_s!r}.")


def window_start(t_ns: int, width_s: int) -> int:
    """The start (seconds since the epoch, UTC) of the window holding ``t_ns``."""
    _check_width(width_s)
    s = int(t_ns) // 1_000_000_000
    return s - s % width_s  # floor, also before 1970


@dataclass(frozen=True, order=True)
class BucketName:
    """One bucket: an environment and a window ``[start, start + width)`` in
    seconds. Sorts by (environment, start, width). Invalid names raise
    ``ValueError`` on construction, so a BucketName always maps to a path."""

    environment: str
    start: int
    width: int

    def __post_init__(self) -> None:
        if not valid_environment(self.environment):
            raise ValueError(
                f"{self.environment!r} is not a valid environment name: it must match {ENV_PATTERN} "
                "(a letter or digit, then up to 63 letters, digits, '_', '.' or '-')."
            )
        _check_width(self.width)
        if not isinstance(self.start, int) or isinstance(self.start, bool) or not 0 <= self.start <= _MAX_START:
            raise ValueError(f"A bucket start must be whole seconds from 1970 to 9999, not {self.start!r}.")
        if self.start % self.width:
            raise ValueError(
                f"A bucket start must be aligned to its window: {self.start} is not a multiple of {self.width} s."
            )

    @property
    def end(self) -> int:
        return self.start + self.width

    def relpath(self) -> str:
        """The path under ROOT, e.g. ``"prod/20240131/235900-60s.bkt"``."""
        t = datetime.fromtimestamp(self.start, timezone.utc)
        return f"{self.environment}/{t:%Y%m%d}/{t:%H%M%S}-{self.width}s{SUFFIX}"


def bucket_path(root: PathLike, environment: str, start: int, width: int) -> Path:
    """The path of a bucket file. ``ValueError`` on an invalid environment
    name, a width that does not divide a day, or a misaligned start."""
    return Path(root) / BucketName(environment, start, width).relpath()


def bucket_id(name: BucketName) -> str:
    """The id of a bucket, e.g. ``"prod/20240131/235900-60s"``."""
    return name.relpath()[: -len(SUFFIX)]


_ID_ROOT = "/"


def parse_bucket_id(text: str) -> BucketName:
    """The inverse of ``bucket_id``; ``ValueError`` for anything it could not
    have made (so an id from the network cannot name a path outside ROOT)."""
    try:
        name = parse_bucket_path(_ID_ROOT, _ID_ROOT + text + SUFFIX)
    except (TypeError, ValueError):
        name = None
    # Paths forgive "//" and "/./"; an id is exactly what bucket_id spells.
    if name is None or bucket_id(name) != text:
        raise ValueError(f"{text!r} is not a bucket id: expected ENV/YYYYMMDD/HHMMSS-<width>s "
                         "(like prod/20240131/235900-60s).")
    return name


def parse_bucket_path(root: PathLike, path: PathLike) -> BucketName:
    """The inverse of ``bucket_path``. ``ValueError`` for any path it could not
    have made."""
    try:
        rel = Path(path).relative_to(Path(root))
    except ValueError:
        raise ValueError(f"{os.fspath(path)!r} is not under the bucket root {os.fspath(root)!r}.") from None
    parts = rel.parts
    if len(parts) != 3:
        raise ValueError(f"{os.fspath(path)!r} is not a bucket file: expected ENV/YYYYMMDD/HHMMSS-<width>s{SUFFIX}.")
    env, day, fname = parts
    d = _DATE_RE.fullmatch(day)
    f = _FILE_RE.fullmatch(fname)
    if not valid_environment(env) or d is None or f is None:
        raise ValueError(f"{os.fspath(path)!r} is not a bucket file: expected ENV/YYYYMMDD/HHMMSS-<width>s{SUFFIX}.")
    try:
        year, month, day_, hour, minute, second = (int(x) for x in d.groups() + f.groups()[:3])
        t = datetime(year, month, day_, hour, minute, second, tzinfo=timezone.utc)
        name = BucketName(env, int(t.timestamp()), int(f.group(4)))
    except ValueError as exc:
        raise ValueError(f"{os.fspath(path)!r} is not a bucket file: {exc}") from None
    # Refuse anything bucket_path would spell differently.
    if name.relpath() != "/".join(parts):
        raise ValueError(f"{os.fspath(path)!r} is not a bucket file: the canonical name is {name.relpath()!r}.")
    return name


def list_buckets(
    root: PathLike,
    environment: str | None = None,
    start: int | None = None,
    end: int | None = None,
) -> list[tuple[BucketName, Path]]:
    """Bucket files under ``root``, sorted by (environment, start, width).

    With ``environment``, only that one (``ValueError`` if it is not a valid
    name). With ``start`` and/or ``end`` (seconds), only windows overlapping
    ``[start, end)``. Anything else found under ``root`` is skipped and logged
    at DEBUG: stray files do not break a listing.
    """
    root = Path(root)
    if environment is not None and not valid_environment(environment):
        raise ValueError(f"{environment!r} is not a valid environment name.")
    lo = float("-inf") if start is None else start
    hi = float("inf") if end is None else end
    found: list[tuple[BucketName, Path]] = []
    env_dirs = [root / environment] if environment is not None else _subdirs(root)
    for env_dir in env_dirs:
        if not valid_environment(env_dir.name):
            log.debug("Skipping %s while listing buckets: not an environment name.", env_dir)
            continue
        for day_dir in _subdirs(env_dir):
            day = _parse_day(day_dir.name)
            if day is None:
                log.debug("Skipping %s while listing buckets: not a YYYYMMDD date.", day_dir)
                continue
            # Windows never cross midnight, so a day's windows all lie in
            # [day, day + DAY): skip whole days outside the range.
            if day + DAY <= lo or day >= hi:
                continue
            for entry in _entries(day_dir):
                try:
                    name = parse_bucket_path(root, entry)
                except ValueError:
                    log.debug("Skipping %s while listing buckets: not a bucket file name.", entry)
                    continue
                if not entry.is_file():
                    log.debug("Skipping %s while listing buckets: not a regular file.", entry)
                    continue
                if name.start < hi and name.end > lo:
                    found.append((name, entry))
    found.sort(key=lambda item: item[0])
    return found


def _parse_day(text: str) -> int | None:
    """Seconds at the UTC midnight a YYYYMMDD directory name stands for."""
    d = _DATE_RE.fullmatch(text)
    if d is None:
        return None
    try:
        year, month, day = map(int, d.groups())
        return int(datetime(year, month, day, tzinfo=timezone.utc).timestamp())
    except ValueError:
        return None


def _entries(directory: Path) -> list[Path]:
    try:
        return sorted(directory.iterdir())
    except FileNotFoundError:
        return []  # removed under us (a pruner), or never created
    except NotADirectoryError:
        log.debug("Skipping %s while listing buckets: not a directory.", directory)
        return []


def _subdirs(directory: Path) -> list[Path]:
    out = []
    for entry in _entries(directory):
        if entry.is_dir():
            out.append(entry)
        else:
            log.debug("Skipping %s while listing buckets: not a directory.", entry)
    return out
