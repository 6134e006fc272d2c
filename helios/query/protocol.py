"""The bucket query protocol: how requests to a buck and its replies look on
the wire. The one module that knows it; pure (no sockets, no files).

Bucks answer on a ROUTER socket (``[buck] query``, by default the ingest port
+ 2, see ``helios.query.server``); the porter, archie and the operator tools
ask on DEALER sockets (``helios.query.client``). ``encode_request`` and
``decode_request`` are inverses, and so are ``encode_reply`` and
``decode_reply``; both decoders turn anything they cannot trust into a
``QueryError`` whose message says what is wrong, never another exception.

Messages
--------
A request or a reply is a ZeroMQ message of two parts: an empty delimiter
(what a REQ socket puts there, so a REQ client works as well as a DEALER) and
a body, one msgpack map. Every body holds ``v`` (``VERSION``) and ``id``, an
unsigned integer chosen by the client and carried back by the reply, so that
a late reply to a request that timed out is recognised and dropped.

Requests: ``op`` and its keys (times in ns since the epoch, UTC; nil = none)::

    list   environment: str|nil  start: int|nil  end: int|nil
           -> the buckets whose window overlaps [start, end), of one environment or all
    fetch  bucket: id  offset: int  max_bytes: int|nil
           -> whole records from byte ``offset`` on, at most max_bytes of payload
              (the buck caps it, and sends a single larger record whole)
    stats  -> the buck's stats (what it writes to DATA_DIR/stats.json)
    prune  buckets: [id, ...]
           -> each one deleted, not found, or refused with a reason: a bucket
              is deleted only when closed and when the asker's own record
              (below) shows it indexed and archived from this buck
    report source: str  report: {...}
           -> kept (the latest per source) for the buck's stats
    record source: str  indexed: [id]  archived: [id]  skipped: [id]
           -> the porter's record of this buck's windows: those whose copy
              from this buck is in the index, in the archive (stored and
              verified), or left out of the archive by the operator's
              blacklist. It replaces the source's previous record; a prune
              is checked against it.

Replies: ``v``, ``id``, ``op`` (nil when the request was too broken to say),
``status`` ("ok" or "error") and ``reason`` (a sentence; "" when all is well),
then, when ok::

    list   buckets: [{id, environment, start (ns), width (s), size (bytes), state}, ...]
    fetch  bucket, offset, next, end, records: [bin, ...], state, size,
           torn_tail, skipped_bytes, corrupt_records
    stats  stats: {...}
    prune  deleted: [id], not_found: [id], refused: {id: reason}
    report, record: nothing more

Who may ask what is the buck's business (``helios.query.server``: the
role and environments of the asker's CURVE key, or with CURVE off, whether
it is on the buck's host); a request it refuses gets an error reply saying
why.

Unknown keys are refused like unknown ops: a new field comes with a new
version, so an old buck says so instead of ignoring what was asked.

Buckets
-------
A bucket id is ``ENV/YYYYMMDD/HHMMSS-<width>s``, the bucket's path under the
buck's bucket root without its suffix (``helios.store.layout.bucket_id``). Its
state is "open" while the buck may still append to it (its window has not
passed, or the buck still holds it open), "closed" once it never will again.

Fetching is stateless on the buck: a reply carries ``next``, the offset to ask
for next (just past its last record), and ``end``, true when ``next`` is the
end of the file as it is now (for an open bucket, more may come later). A
client streams a bucket of any size by asking for one chunk after another and
never holds more than a chunk or two. ``torn_tail``, ``skipped_bytes`` and
``corrupt_records`` report damage met while reading this chunk: the records
sent are always whole and passed their checksum (``helios.store.records``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

import msgpack

from helios.errors import QueryError
from helios.store import layout

__all__ = [
    "CLOSED",
    "DEFAULT_MAX_BYTES",
    "OPEN",
    "VERSION",
    "BucketEntry",
    "ErrorReply",
    "FetchReply",
    "FetchRequest",
    "ListReply",
    "ListRequest",
    "PruneReply",
    "PruneRequest",
    "RecordReply",
    "RecordRequest",
    "Reply",
    "Request",
    "StatsReply",
    "StatsRequest",
    "decode_reply",
    "decode_request",
    "encode_reply",
    "encode_request",
    "peek_id",
    "split_message",
]

VERSION = 1
OPEN, CLOSED = "open", "closed"
STATES = (OPEN, CLOSED)
# What a fetch asks for when the caller names no size, and the buck's default
# cap ([buck] query_max_bytes): big enough that a chunk costs far more to
# read than to ask for, small enough that serving it never stalls a buck's
# ingest loop for long.
DEFAULT_MAX_BYTES = 4 * 1024 * 1024
MAX_ID = 2**64 - 1


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class ListRequest:
    """Buckets of ``environment`` (None: all) whose window overlaps
    ``[start, end)``, in ns since the epoch (None: unbounded)."""

    environment: str | None = None
    start: int | None = None
    end: int | None = None
    op = "list"


@dataclass(frozen=True)
class FetchRequest:
    """Whole records of ``bucket`` from byte ``offset`` on: 0, or the ``next``
    of the previous chunk. ``max_bytes`` None: the buck's cap."""

    bucket: str
    offset: int = 0
    max_bytes: int | None = None
    op = "fetch"


@dataclass(frozen=True)
class StatsRequest:
    """The buck's stats."""

    op = "stats"


@dataclass(frozen=True)
class PruneRequest:
    """Delete these buckets (ids); open ones are refused."""

    buckets: tuple[str, ...]
    op = "prune"


@dataclass(frozen=True)
class ReportRequest:
    """A service's own status for the buck to show in its stats (under
    ``reports``, by ``source``), so that ``helios status`` on any host sees,
    say, the porter's progress. The buck keeps the latest of each source."""

    source: str
    report: dict
    op = "report"


@dataclass(frozen=True)
class RecordRequest:
    """The porter's own record of this buck's windows (bucket ids): indexed
    from this buck's copy, archived from it (stored and verified), or
    skipped by the archive blacklist. A prune is checked against it."""

    source: str
    indexed: tuple[str, ...] = ()
    archived: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    op = "record"


Request = Union[ListRequest, FetchRequest, StatsRequest, PruneRequest, ReportRequest, RecordRequest]


# --------------------------------------------------------------------------- replies


@dataclass(frozen=True)
class BucketEntry:
    """One bucket a buck holds. ``start`` in ns, ``width`` in seconds."""

    id: str
    environment: str
    start: int
    width: int
    size: int
    state: str

    @property
    def end(self) -> int:
        """The end of the window (exclusive), ns."""
        return self.start + self.width * 1_000_000_000

    @property
    def open(self) -> bool:
        return self.state == OPEN


@dataclass(frozen=True, kw_only=True)
class _Ok:
    reason: str = ""
    id: int = 0
    status = "ok"

    @property
    def ok(self) -> bool:
        return True


@dataclass(frozen=True, kw_only=True)
class ListReply(_Ok):
    buckets: tuple[BucketEntry, ...] = ()
    op = "list"


@dataclass(frozen=True, kw_only=True)
class FetchReply(_Ok):
    """One chunk. ``records`` are whole record payloads (codec frames) from
    ``offset``; ask for ``next`` to go on; ``end``: ``next`` is the end of the
    file as it is now. ``size`` is the file's size when read."""

    bucket: str
    offset: int
    next: int
    end: bool
    records: tuple[bytes, ...] = ()
    state: str = CLOSED
    size: int = 0
    torn_tail: bool = False
    skipped_bytes: int = 0
    corrupt_records: int = 0
    op = "fetch"


@dataclass(frozen=True, kw_only=True)
class StatsReply(_Ok):
    stats: dict = field(default_factory=dict)
    op = "stats"


@dataclass(frozen=True, kw_only=True)
class PruneReply(_Ok):
    deleted: tuple[str, ...] = ()
    not_found: tuple[str, ...] = ()
    refused: dict[str, str] = field(default_factory=dict)  # id -> why
    op = "prune"


@dataclass(frozen=True, kw_only=True)
class ReportReply(_Ok):
    op = "report"


@dataclass(frozen=True, kw_only=True)
class RecordReply(_Ok):
    op = "record"


@dataclass(frozen=True, kw_only=True)
class ErrorReply:
    """The buck could not do what was asked; ``reason`` says why. ``op`` is
    None when the request was too broken to tell what it asked."""

    op: str | None
    reason: str
    id: int = 0
    status = "error"

    @property
    def ok(self) -> bool:
        return False


Reply = Union[ListReply, FetchReply, StatsReply, PruneReply, ReportReply, RecordReply, ErrorReply]


# --------------------------------------------------------------------------- encoding


def encode_request(request: Request, id: int = 0) -> bytes:
    """The body of a request message (see the module docstring)."""
    body: dict[str, Any] = {"v": VERSION, "id": id, "op": request.op}
    if isinstance(request, ListRequest):
        body.update(environment=request.environment, start=request.start, end=request.end)
    elif isinstance(request, FetchRequest):
        body.update(bucket=request.bucket, offset=request.offset, max_bytes=request.max_bytes)
    elif isinstance(request, PruneRequest):
        body.update(buckets=list(request.buckets))
    elif isinstance(request, ReportRequest):
        body.update(source=request.source, report=request.report)
    elif isinstance(request, RecordRequest):
        body.update(source=request.source, indexed=list(request.indexed), archived=list(request.archived),
                    skipped=list(request.skipped))
    elif not isinstance(request, StatsRequest):
        raise TypeError(f"not a bucket query request: {request!r}")
    return msgpack.packb(body, use_bin_type=True)


def encode_reply(reply: Reply) -> bytes:
    """The body of a reply message (see the module docstring)."""
    body: dict[str, Any] = {"v": VERSION, "id": reply.id, "op": reply.op, "status": reply.status,
                            "reason": reply.reason}
    if isinstance(reply, ListReply):
        body["buckets"] = [{"id": b.id, "environment": b.environment, "start": b.start, "width": b.width,
                            "size": b.size, "state": b.state} for b in reply.buckets]
    elif isinstance(reply, FetchReply):
        body.update(bucket=reply.bucket, offset=reply.offset, next=reply.next, end=reply.end,
                    records=list(reply.records), state=reply.state, size=reply.size,
                    torn_tail=reply.torn_tail, skipped_bytes=reply.skipped_bytes,
                    corrupt_records=reply.corrupt_records)
    elif isinstance(reply, StatsReply):
        body["stats"] = reply.stats
    elif isinstance(reply, PruneReply):
        body.update(deleted=list(reply.deleted), not_found=list(reply.not_found), refused=dict(reply.refused))
    elif not isinstance(reply, (ErrorReply, ReportReply, RecordReply)):
        raise TypeError(f"not a bucket query reply: {reply!r}")
    return msgpack.packb(body, use_bin_type=True)


# --------------------------------------------------------------------------- decoding


class _Bad(Exception):
    """A field is wrong; the decoders turn it into a QueryError."""


def _unpack(body: Any, what: str) -> dict:
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise QueryError(f"a {what} body must be bytes, not {type(body).__name__}")
    if not body:
        raise QueryError(f"empty {what}: expected a msgpack map")
    try:
        obj = msgpack.unpackb(body, raw=False, strict_map_key=True)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise QueryError(f"the {what} is not valid msgpack ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, dict):
        raise QueryError(f"the {what} must be a msgpack map, not {_kind(obj)}")
    v = obj.get("v")
    if v != VERSION:
        shown = "no version" if v is None else f"version {v!r}"
        raise QueryError(f"the {what} has {shown}; this end speaks version {VERSION} of the bucket query protocol")
    return obj


def _kind(value: Any) -> str:
    names = {type(None): "nil", bool: "a boolean", int: "an integer", float: "a float", str: "a string",
             bytes: "binary", list: "an array", dict: "a map"}
    return names.get(type(value), type(value).__name__)


def _take(obj: dict, key: str, check, *, optional: bool = False) -> Any:
    if key not in obj:
        raise _Bad(f"'{key}' is missing")
    value = obj[key]
    if value is None and optional:
        return None
    problem = check(value)
    if problem:
        raise _Bad(f"'{key}' {problem}, got {_show(value)}")
    return value


def _show(value: Any) -> str:
    text = repr(value)
    return (text[:57] + "...") if len(text) > 60 else text


def _int(lo: int = 0, hi: int = 2**63 - 1):
    def check(v: Any) -> str | None:
        if not isinstance(v, int) or isinstance(v, bool):
            return "must be an integer"
        return None if lo <= v <= hi else f"must be {lo}..{hi}"
    return check


def _str(v: Any) -> str | None:
    return None if isinstance(v, str) else "must be a string"


def _bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else "must be a boolean"


def _env(v: Any) -> str | None:
    return None if layout.valid_environment(v) else f"must be an environment name ({layout.ENV_PATTERN})"


def _state(v: Any) -> str | None:
    return None if v in STATES else f"must be one of {', '.join(STATES)}"


def _str_list(v: Any) -> str | None:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        return "must be an array of strings"
    return None


def _only(obj: dict, keys: set[str], what: str) -> None:
    extra = sorted(map(str, obj.keys() - keys - {"v", "id", "op"}))
    if extra:
        raise _Bad(f"unknown key(s) {', '.join(map(repr, extra))} in a {what}")


_REQUEST_KEYS = {"list": {"environment", "start", "end"}, "fetch": {"bucket", "offset", "max_bytes"},
                 "stats": set(), "prune": {"buckets"}, "report": {"source", "report"},
                 "record": {"source", "indexed", "archived", "skipped"}}


def decode_request(body: bytes) -> tuple[int, Request]:
    """The inverse of ``encode_request``: (id, request). ``QueryError`` says
    what is wrong with anything else (``peek_id`` still finds its id if it
    has one, for the error reply)."""
    obj = _unpack(body, "request")
    try:
        rid = _take(obj, "id", _int(0, MAX_ID))
        op = _take(obj, "op", _str)
        if op not in _REQUEST_KEYS:
            raise _Bad(f"unknown op {op!r} (known: {', '.join(_REQUEST_KEYS)})")
        _only(obj, _REQUEST_KEYS[op], f"{op} request")
        if op == "list":
            req: Request = ListRequest(_take(obj, "environment", _env, optional=True),
                                       _take(obj, "start", _int(), optional=True),
                                       _take(obj, "end", _int(), optional=True))
            if req.start is not None and req.end is not None and req.start > req.end:
                raise _Bad(f"'start' ({req.start}) is after 'end' ({req.end})")
        elif op == "fetch":
            req = FetchRequest(_take(obj, "bucket", _str), _take(obj, "offset", _int()),
                               _take(obj, "max_bytes", _int(1), optional=True))
        elif op == "prune":
            req = PruneRequest(tuple(_take(obj, "buckets", _str_list)))
        elif op == "report":
            req = ReportRequest(_take(obj, "source", _str),
                                _take(obj, "report", lambda v: None if isinstance(v, dict) else "must be a map"))
        elif op == "record":
            req = RecordRequest(_take(obj, "source", _str), tuple(_take(obj, "indexed", _str_list)),
                                tuple(_take(obj, "archived", _str_list)), tuple(_take(obj, "skipped", _str_list)))
        else:
            req = StatsRequest()
    except _Bad as exc:
        raise QueryError(f"bad request: {exc}") from None
    return rid, req


def peek_id(body: bytes) -> tuple[int, str | None]:
    """(id, op) of a request body as far as they can be read; (0, None) when
    they cannot. Never raises: it serves the error reply to a bad request."""
    try:
        obj = msgpack.unpackb(body, raw=False, strict_map_key=False)
    except (ValueError, TypeError, msgpack.UnpackException):
        return 0, None
    if not isinstance(obj, dict):
        return 0, None
    rid = obj.get("id")
    op = obj.get("op")
    rid = rid if isinstance(rid, int) and not isinstance(rid, bool) and 0 <= rid <= MAX_ID else 0
    return rid, op if isinstance(op, str) and op in _REQUEST_KEYS else None  # a list is unhashable


def decode_reply(body: bytes) -> Reply:
    """The inverse of ``encode_reply``. ``QueryError`` for a body that is not
    a well-formed reply (not for an error reply: that is an ``ErrorReply``)."""
    obj = _unpack(body, "reply")
    try:
        rid = _take(obj, "id", _int(0, MAX_ID))
        status = _take(obj, "status", lambda v: None if v in ("ok", "error") else "must be 'ok' or 'error'")
        reason = _take(obj, "reason", _str)
        op = _take(obj, "op", lambda v: None if isinstance(v, str) and v in _REQUEST_KEYS else "must be a known op",
                   optional=True)
        if status == "error":
            return ErrorReply(op=op, reason=reason, id=rid)
        if op == "list":
            return ListReply(buckets=tuple(_entry(b) for b in _take(obj, "buckets", _list)), reason=reason, id=rid)
        if op == "fetch":
            records = _take(obj, "records", _list)
            if not all(isinstance(r, bytes) for r in records):
                raise _Bad("'records' must be an array of binary payloads")
            return FetchReply(
                bucket=_take(obj, "bucket", _str), offset=_take(obj, "offset", _int()),
                next=_take(obj, "next", _int()), end=_take(obj, "end", _bool), records=tuple(records),
                state=_take(obj, "state", _state), size=_take(obj, "size", _int()),
                torn_tail=_take(obj, "torn_tail", _bool), skipped_bytes=_take(obj, "skipped_bytes", _int()),
                corrupt_records=_take(obj, "corrupt_records", _int()), reason=reason, id=rid)
        if op == "stats":
            return StatsReply(stats=_take(obj, "stats", lambda v: None if isinstance(v, dict) else "must be a map"),
                              reason=reason, id=rid)
        if op == "report":
            return ReportReply(reason=reason, id=rid)
        if op == "record":
            return RecordReply(reason=reason, id=rid)
        if op == "prune":
            refused = _take(obj, "refused", lambda v: None if isinstance(v, dict) and all(
                isinstance(k, str) and isinstance(r, str) for k, r in v.items()) else "must be a map of id to reason")
            return PruneReply(deleted=tuple(_take(obj, "deleted", _str_list)),
                              not_found=tuple(_take(obj, "not_found", _str_list)), refused=refused,
                              reason=reason, id=rid)
        raise _Bad("an ok reply must name its op")
    except _Bad as exc:
        raise QueryError(f"malformed reply: {exc}") from None


def _list(v: Any) -> str | None:
    return None if isinstance(v, list) else "must be an array"


def _entry(b: Any) -> BucketEntry:
    if not isinstance(b, dict):
        raise _Bad(f"a bucket entry must be a map, got {_show(b)}")
    return BucketEntry(id=_take(b, "id", _str), environment=_take(b, "environment", _env),
                       start=_take(b, "start", _int()), width=_take(b, "width", _int(1)),
                       size=_take(b, "size", _int()), state=_take(b, "state", _state))


def split_message(parts: list[bytes]) -> tuple[list[bytes], bytes | None]:
    """A message as a ROUTER socket receives it -> (route, body): the routing
    parts up to and including the empty delimiter, to be sent back in front
    of the reply, and the one body part. A DEALER that sent no delimiter has
    one routing part (its identity). body is None when the message has no
    body or more than one part after the route (not a request)."""
    try:
        i = parts.index(b"", 1)
    except ValueError:
        route, rest = parts[:1], parts[1:]
    else:
        route, rest = parts[: i + 1], parts[i + 1:]
    return route, rest[0] if len(rest) == 1 else None
