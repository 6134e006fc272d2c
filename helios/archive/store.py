"""Where archive objects rest: a local folder (the embedded default) or S3.

Backends see opaque bytes (what ``helios.archive.format.pack`` wrote, or a
sealed form of it) and share one small interface::

    put(key, data) -> Stored      store, then read back and verify, before returning
    get(key) -> bytes             the bytes, verified against the checksum stored with them
    head(key) -> Stored | None    size and checksum as stored, or None when absent
    list(prefix) -> iter of keys  in lexicographic order
    delete(key)                   idempotent

``Stored`` is (key, size, sha256 as hex). A checksum mismatch, a write that
does not read back intact and every backend failure raise ``ArchiveError``
naming the key, so a caller marks a window archived only once ``put`` has
returned.

Keys
----
An archive object holds one environment and one time window; its key is a
pure function of them (``key_for``; ``window_of`` is the inverse)::

    ENV/YYYY/MM/DD/HHMMSS-<width>s.hea        e.g. prod/2024/01/31/235900-60s.hea

with the UTC date and time of the window's start; so listing ``prod/2024/01/``
lists a month. Backends accept any key of ``/``-separated components made of
letters, digits and ``_.=-`` that do not start with a dot.

Folder
------
``ROOT/KEY`` is a file holding the object followed by a 40-byte trailer: the
SHA-256 of the object (32 bytes) and the magic ``HLSHA256``. It is written to
a temporary file beside it, fsynced, evicted from the page cache (so the
read-back below comes from the disk where the kernel allows it), renamed over
the key and the directory fsynced; then read back whole and checked.

S3
--
The object is stored as is, with its SHA-256 in the user metadata
(``x-amz-meta-sha256``) and a Content-MD5 header, so the store itself refuses
a body garbled on the way. ``put`` then checks with a HEAD that the object has
the size and checksum just written (and the ETag is the MD5 of the body, where
the store makes it one), or, with ``verify="get"``, reads the whole object back.
Credentials, region and profile come from the usual AWS configuration
(environment variables, ``~/.aws/config``, instance roles), and
``endpoint_url`` points at any S3-compatible store (MinIO, Ceph, moto).
"""

from __future__ import annotations

import hashlib
import base64
import os
import re
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, NamedTuple, Protocol

from helios.errors import ArchiveError
from helios.store import durable
from helios.store.layout import BucketName

SUFFIX = ".hea"
TRAILER_MAGIC = b"HLSHA256"
TRAILER_SIZE = 32 + len(TRAILER_MAGIC)
_NS = 1_000_000_000
_KEY_RE = re.compile(r"[A-Za-z0-9_=-][A-Za-z0-9_.=-]{0,254}(?:/[A-Za-z0-9_=-][A-Za-z0-9_.=-]{0,254}){0,15}")
_WINDOW_RE = re.compile(r"([^/]+)/(\d{4})/(\d{2})/(\d{2})/(\d{2})(\d{2})(\d{2})-([1-9]\d*)s" + re.escape(SUFFIX))


class Stored(NamedTuple):
    key: str
    size: int
    sha256: str  # hex


class Window(NamedTuple):
    environment: str
    start_ns: int
    width_s: int


class Archive(Protocol):
    def put(self, key: str, data: bytes) -> Stored: ...
    def get(self, key: str) -> bytes: ...
    def head(self, key: str) -> Stored | None: ...
    def list(self, prefix: str = "") -> Iterator[str]: ...
    def delete(self, key: str) -> None: ...
    def verify(self, want: Stored) -> Stored: ...


# --- keys -----------------------------------------------------------------------

def key_for(environment: str, window_start_ns: int, width_s: int) -> str:
    """The key of the object for one environment and window, e.g.
    ``prod/2024/01/31/235900-60s.hea``. ``ArchiveError`` for an invalid
    environment, a width that does not divide a day, or a misaligned start."""
    if type(window_start_ns) is not int or window_start_ns % _NS:
        raise ArchiveError(f"An archive window starts on a whole second, not at {window_start_ns!r} ns.")
    try:
        name = BucketName(environment, window_start_ns // _NS, width_s)
    except ValueError as exc:
        raise ArchiveError(f"No archive window ({environment!r}, {window_start_ns} ns, {width_s} s): {exc}") from None
    t = datetime.fromtimestamp(name.start, timezone.utc)
    return f"{name.environment}/{t:%Y/%m/%d/%H%M%S}-{name.width}s{SUFFIX}"


def window_of(key: str) -> Window:
    """The inverse of ``key_for``; ``ArchiveError`` for a key it could not have made."""
    m = _WINDOW_RE.fullmatch(key) if isinstance(key, str) else None
    window = None
    if m:
        try:
            y, mo, d, h, mi, s = (int(g) for g in m.groups()[1:7])
            start = int(datetime(y, mo, d, h, mi, s, tzinfo=timezone.utc).timestamp())
            window = Window(m.group(1), start * _NS, int(m.group(8)))
        except ValueError:
            window = None
    try:
        if window is None or key_for(*window) != key:
            window = None
    except ArchiveError:
        window = None
    if window is None:
        raise ArchiveError(f"{key!r} is not an archive key: expected ENV/YYYY/MM/DD/HHMMSS-<width>s{SUFFIX} "
                           "(like prod/2024/01/31/235900-60s.hea)", key=key if isinstance(key, str) else None)
    return window


def check_key(key: str) -> str:
    """``key`` if a backend can store it (see the module docstring), else ``ArchiveError``."""
    if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
        raise ArchiveError(f"{key!r} is not a valid archive key: expected /-separated names of letters, "
                           "digits and _.=- not starting with a dot", key=key if isinstance(key, str) else None)
    return key


def _prefix_ok(prefix: str) -> str:
    if not isinstance(prefix, str) or (prefix and not _KEY_RE.fullmatch(prefix.rstrip("/"))):
        raise ArchiveError(f"{prefix!r} is not a valid archive key prefix")
    return prefix


def _mismatch(key: str, where: str, want: Stored, got: Stored | None) -> ArchiveError:
    if got is None:
        return ArchiveError(f"archive object {key} is missing from {where} right after it was written", key=key)
    return ArchiveError(f"archive object {key} in {where} did not read back intact: wrote {want.size} bytes "
                        f"with sha256 {want.sha256[:16]}..., found {got.size} bytes with sha256 "
                        f"{(got.sha256 or 'none')[:16]}...", key=key)


# --- folder ---------------------------------------------------------------------

class FolderArchive:
    """Objects as files under ``root`` (see the module docstring)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        try:
            durable.make_dirs(self.root)  # 0750 whatever the umask
        except OSError as exc:
            raise ArchiveError(f"cannot use {self.root} as the archive folder: {exc.strerror}") from None

    def __repr__(self) -> str:
        return f"FolderArchive({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes) -> Stored:
        path = self._path(key)
        digest = hashlib.sha256(data).digest()
        want = Stored(key, len(data), digest.hex())
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            self._makedirs(path.parent)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, durable.FILE_MODE)
            try:
                durable.created(fd)  # 0640 whatever the umask
                for part in (data, digest + TRAILER_MAGIC):
                    view = memoryview(part)
                    while view:
                        view = view[os.write(fd, view):]
                durable.fsync(fd)
                # The pages are clean now: drop them, so the read-back below
                # reads the disk rather than what we just handed the kernel.
                if hasattr(os, "posix_fadvise"):
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
            os.replace(tmp, path)
            self._fsync_dir(path.parent)
        except OSError as exc:
            try:
                tmp.unlink()
            except OSError:
                pass
            raise ArchiveError(f"cannot write archive object {key} under {self.root}: {exc.strerror or exc}",
                               key=key) from None
        self.verify(want)
        return want

    def verify(self, want: Stored) -> Stored:
        """Read the object back whole; ``ArchiveError`` unless it is ``want``."""
        try:
            got = self._read(want.key)[1]
        except ArchiveError as exc:
            raise ArchiveError(f"archive object {want.key} did not read back intact: {exc}", key=want.key) from None
        if got != want:
            raise _mismatch(want.key, str(self.root), want, got)
        return got

    def _read(self, key: str) -> tuple[bytes, Stored]:
        """The object and what it is (its trailer checked against its bytes)."""
        path = self._path(key)
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size - TRAILER_SIZE
                data = f.read(size) if size >= 0 else b""
                trailer = f.read()
        except FileNotFoundError:
            raise ArchiveError(f"archive object {key} does not exist under {self.root}", key=key) from None
        except OSError as exc:
            raise ArchiveError(f"cannot read archive object {key} under {self.root}: {exc.strerror}", key=key) from None
        if size < 0 or len(trailer) != TRAILER_SIZE or not trailer.endswith(TRAILER_MAGIC) or len(data) != size:
            raise ArchiveError(f"archive object {key} under {self.root} is truncated (no checksum trailer)", key=key)
        stored = trailer[:32].hex()
        actual = hashlib.sha256(data).hexdigest()
        if actual != stored:
            raise ArchiveError(f"archive object {key} under {self.root} is corrupt: its sha256 is {actual[:16]}..., "
                               f"{stored[:16]}... was stored with it", key=key)
        return data, Stored(key, size, stored)

    def get(self, key: str) -> bytes:
        return self._read(key)[0]

    def head(self, key: str) -> Stored | None:
        path = self._path(key)
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size - TRAILER_SIZE
                if size < 0:
                    raise ArchiveError(f"archive object {key} under {self.root} is truncated (no checksum trailer)",
                                       key=key)
                f.seek(size)
                trailer = f.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ArchiveError(f"cannot read archive object {key} under {self.root}: {exc.strerror}", key=key) from None
        if not trailer.endswith(TRAILER_MAGIC):
            raise ArchiveError(f"archive object {key} under {self.root} has no checksum trailer", key=key)
        return Stored(key, size, trailer[:32].hex())

    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys starting with ``prefix``, sorted. Temporary files (names that
        start with a dot) are not keys."""
        _prefix_ok(prefix)
        # Walk only below the deepest directory the prefix names.
        base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        top = self.root / base if base else self.root
        yield from (k for k in self._walk(top, base) if k.startswith(prefix))

    def _walk(self, directory: Path, rel: str) -> Iterator[str]:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            raise ArchiveError(f"cannot list the archive folder {directory}: {exc.strerror}") from None
        for entry in entries:
            if entry.name.startswith("."):
                continue
            key = f"{rel}/{entry.name}" if rel else entry.name
            if entry.is_dir(follow_symlinks=False):
                yield from self._walk(Path(entry.path), key)
            elif entry.is_file(follow_symlinks=False):
                yield key

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise ArchiveError(f"cannot delete archive object {key} under {self.root}: {exc.strerror}",
                               key=key) from None
        self._fsync_dir(path.parent)

    def _makedirs(self, directory: Path) -> None:
        """mkdir -p, fsyncing the parent of every directory made, so that a
        put that returned survives a power loss with its path."""
        if directory.is_dir():
            return
        self._makedirs(directory.parent)
        try:
            directory.mkdir()
        except FileExistsError:
            return
        os.chmod(directory, durable.DIR_MODE)  # 0750 whatever the umask
        self._fsync_dir(directory.parent)

    @staticmethod
    def _fsync_dir(directory: Path) -> None:
        fd = os.open(directory, os.O_RDONLY)
        try:
            durable.fsync(fd)
        finally:
            os.close(fd)


# --- S3 -------------------------------------------------------------------------

class S3Archive:
    """Objects in an S3 bucket under ``prefix`` (see the module docstring).

    ``path_style`` (default: on when ``endpoint_url`` is given) addresses the
    bucket in the path rather than the host name, which most S3-compatible
    stores need. ``verify`` is ``"head"`` or ``"get"`` (read the object back).
    A request is tried ``max_attempts`` times by botocore before it fails;
    retrying later, with backoff, is the caller's job (the porter's)."""

    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None,
                 region: str | None = None, profile: str | None = None, path_style: bool | None = None,
                 verify: str = "head", connect_timeout: float = 10.0, read_timeout: float = 60.0,
                 max_attempts: int = 3, client=None) -> None:
        if verify not in ("head", "get"):
            raise ArchiveError(f"verify must be 'head' or 'get', not {verify!r}")
        prefix = prefix.strip("/")
        if prefix:
            _prefix_ok(prefix)
        self.bucket = bucket
        self.prefix = prefix
        self.verify_by = verify
        self.where = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        if client is None:
            config = dict(connect_timeout=connect_timeout, read_timeout=read_timeout,
                          retries={"mode": "standard", "max_attempts": max_attempts})
            client = _client(endpoint_url, region, profile, path_style, config, self.where)
        self.client = client

    def __repr__(self) -> str:
        return f"S3Archive({self.where!r})"

    def _full(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _error(self, exc: Exception, action: str, key: str | None) -> ArchiveError:
        detail = exc
        response = getattr(exc, "response", None)
        if isinstance(response, dict):
            err = response.get("Error", {})
            detail = f"{err.get('Code', '?')}: {err.get('Message', '') or exc}"
        what = f"archive object {key} in {self.where}" if key else self.where
        return ArchiveError(f"cannot {action} {what}: {detail}", key=key)

    def put(self, key: str, data: bytes) -> Stored:
        check_key(key)
        want = Stored(key, len(data), hashlib.sha256(data).hexdigest())
        md5 = hashlib.md5(data, usedforsecurity=False)
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._full(key), Body=data,
                                   ContentMD5=base64.b64encode(md5.digest()).decode("ascii"),
                                   ContentType="application/octet-stream", Metadata={"sha256": want.sha256})
        except Exception as exc:
            raise self._error(exc, "write", key) from None
        if self.verify_by == "get":
            self.get(key)  # checks the bytes against the sha256 stored with them
            got = self.head(key)
        else:
            got, etag = self._head(key)
            # A single-part upload's ETag is the MD5 of the body unless the
            # store encrypts with KMS (or is not AWS); compare when it looks like one.
            if got == want and etag and re.fullmatch(r"[0-9a-f]{32}", etag) and etag != md5.hexdigest():
                raise ArchiveError(f"archive object {key} in {self.where} did not read back intact: its ETag is "
                                   f"{etag}, the MD5 of what was written is {md5.hexdigest()}", key=key)
        if got != want:
            raise _mismatch(key, self.where, want, got)
        return want

    def verify(self, want: Stored) -> Stored:
        """Check the stored object against ``want`` (HEAD, or GET with verify="get")."""
        if self.verify_by == "get":
            self.get(want.key)
        got = self.head(want.key)
        if got != want:
            raise _mismatch(want.key, self.where, want, got)
        return got

    def _head(self, key: str) -> tuple[Stored | None, str | None]:
        check_key(key)
        try:
            r = self.client.head_object(Bucket=self.bucket, Key=self._full(key))
        except Exception as exc:
            if _not_found(exc):
                return None, None
            raise self._error(exc, "read", key) from None
        sha = (r.get("Metadata") or {}).get("sha256")
        return Stored(key, r["ContentLength"], sha), (r.get("ETag") or "").strip('"') or None

    def head(self, key: str) -> Stored | None:
        return self._head(key)[0]

    def get(self, key: str) -> bytes:
        check_key(key)
        try:
            r = self.client.get_object(Bucket=self.bucket, Key=self._full(key))
            data = r["Body"].read()
        except Exception as exc:
            if _not_found(exc):
                raise ArchiveError(f"archive object {key} does not exist in {self.where}", key=key) from None
            raise self._error(exc, "read", key) from None
        stored = (r.get("Metadata") or {}).get("sha256")
        if not stored:
            raise ArchiveError(f"archive object {key} in {self.where} has no sha256 metadata, so it cannot be "
                               "verified (was it written by Helios?)", key=key)
        actual = hashlib.sha256(data).hexdigest()
        if actual != stored:
            raise ArchiveError(f"archive object {key} in {self.where} is corrupt: its sha256 is {actual[:16]}..., "
                               f"{stored[:16]}... was stored with it", key=key)
        return data

    def list(self, prefix: str = "") -> Iterator[str]:
        _prefix_ok(prefix)
        strip = len(self.prefix) + 1 if self.prefix else 0
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._full(prefix) if prefix or self.prefix else "")
            for page in pages:
                for item in page.get("Contents", ()):
                    key = item["Key"]
                    if self.prefix and not key.startswith(self.prefix + "/"):
                        continue
                    yield key[strip:]
        except ArchiveError:
            raise
        except Exception as exc:
            raise self._error(exc, "list", None) from None

    def delete(self, key: str) -> None:
        check_key(key)
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._full(key))
        except Exception as exc:
            if not _not_found(exc):
                raise self._error(exc, "delete", key) from None


def _client(endpoint_url, region, profile, path_style, config, where):
    import boto3  # here, so that a folder archive does not pay for importing boto3
    from botocore.config import Config

    if path_style is None:
        path_style = endpoint_url is not None
    config = Config(s3={"addressing_style": "path" if path_style else "auto"}, **config)
    try:
        session = boto3.session.Session(profile_name=profile)
        return session.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)
    except Exception as exc:  # ProfileNotFound, bad endpoint URL, ...
        raise ArchiveError(f"cannot set up S3 access for {where}: {exc}") from None


def _not_found(exc: Exception) -> bool:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    code = str(response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")


# --- factory --------------------------------------------------------------------

KINDS = ("folder", "s3")


def open_archive(kind: str, location: str, **opts) -> FolderArchive | S3Archive:
    """An archive backend: ``open_archive("folder", "/var/lib/helios/archive")``
    or ``open_archive("s3", "s3://bucket/prefix", endpoint_url=..., region=...)``
    (``location`` for s3 is ``s3://BUCKET[/PREFIX]`` or ``BUCKET[/PREFIX]``)."""
    if kind == "folder":
        return FolderArchive(location, **opts)
    if kind == "s3":
        rest = location[len("s3://"):] if location.startswith("s3://") else location
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise ArchiveError(f"{location!r} names no S3 bucket: expected s3://BUCKET[/PREFIX]")
        return S3Archive(bucket, prefix, **opts)
    raise ArchiveError(f"unknown archive kind {kind!r}: expected one of {', '.join(KINDS)}")
