"""The buck's side of the bucket query protocol (``helios.query.protocol``).

A ``QueryServer`` owns the buck's ROUTER socket (role "query") and answers
each request inside the buck's loop, between ingest messages: the buck
registers ``handle`` in its ``handlers`` and calls it once per message. So
every answer must be quick, and it is:

- a fetch reads at most ``max_bytes`` of whole records (``[buck]
  query_max_bytes``; one record larger than that is sent whole), and the buck
  takes at most ``DRAIN`` query messages per wake-up before ingest has its
  turn again;
- replies are sent without blocking: ROUTER drops a reply to a client that
  went away or stopped reading, rather than wait for it.

Everything the buck has appended is visible to a fetch at once: a
``RecordWriter`` hands each record to the kernel in one ``write`` from this
same thread (no user-space buffer), so the file ends on a record boundary
whenever a request is answered, even for an open bucket.

A request that cannot be read, or a failure while answering it, becomes an
error reply with the reason; nothing a client sends can stop the buck.

Who may ask what
----------------
Every request is checked against who sent it (``helios.wire.rights.Peer``,
from the message's ZeroMQ properties: ``handle_frames``):

- With CURVE, the rights of the key ZAP authenticated: list, fetch and
  stats take a reader, porter or admin key, and only its environments are
  listed and fetched; prune, record and report take a porter or admin key,
  and prune only in its environments. A sender key (a tailer's) gets
  nothing.
- Without CURVE nobody is known, so the peer's address decides: fetch,
  prune, record and report are answered only to a client on the buck's own
  host (loopback, ipc://), unless ``[buck] query_allow_remote``.

Prune follows the porter's record, never a request alone: a bucket is
deleted only when it is closed and the asker's latest ``record`` (the
porter's own account, from its state, of which windows of this buck it
indexed and archived; kept per key, and without CURVE one for every asker
the buck answers) shows it
indexed and archived (or blacklisted from the archive). Anything else is
refused with the reason. A deleted bucket leaves the record, so a window
written again later (a late spool re-send) needs a new one.
"""

from __future__ import annotations

import logging
import os
import struct
import time
from collections import Counter
from pathlib import Path
from typing import Callable

import zmq

from helios.errors import QueryError, RecordError
from helios.query import protocol as p
from helios.store import layout
from helios.store.buckets import BucketFiles
from helios.store.records import RecordReader
from helios.wire.rights import NOBODY, Peer, Rights

log = logging.getLogger(__name__)

NS = 1_000_000_000
# Query messages the buck's loop takes per wake-up: at ~10 ms per 4 MiB
# chunk, ingest never waits more than a few tens of milliseconds.
DRAIN = 2

_LENGTH = struct.Struct(">I")


# Reports are small and few (one per porter); a bound keeps a confused
# client from growing the buck's memory with made-up sources.
MAX_REPORTS = 64

# A request from this host without CURVE (direct calls, tests).
LOCAL = Peer(None, "")
# What each op takes of a key (helios.wire.rights.ACTIONS).
NEEDS = {"list": "read", "fetch": "read", "stats": "read", "prune": "prune", "record": "prune", "report": "prune"}
ROLES_FOR = {"read": "reader, porter or admin", "prune": "porter or admin"}
# Without CURVE, what only a client on the buck's host may ask (query_allow_remote lifts it).
LOCAL_ONLY = frozenset({"fetch", "prune", "record", "report"})


class QueryServer:
    """Answers bucket queries for the buckets under ``root``.

    ``buckets`` (the buck's open writers) tells open buckets from closed ones;
    ``stats`` returns the buck's stats dict. ``max_bytes`` caps a fetch chunk.
    """

    def __init__(self, sock: zmq.Socket, root: str | Path, buckets: BucketFiles,
                 stats: Callable[[], dict], *, max_bytes: int = p.DEFAULT_MAX_BYTES,
                 name: str = "buck", rights_of: Callable[[bytes | str | None], Rights | None] | None = None,
                 allow_remote: bool = False) -> None:
        self.sock = sock
        self.root = Path(root)
        self.buckets = buckets
        self._stats = stats
        self.max_bytes = max_bytes
        self.name = name
        self.counts: Counter[str] = Counter()
        self._bad_logged = 0.0
        # The latest report of each service that sends one (the porter), for stats.
        self.reports: dict[str, dict] = {}
        # With CURVE: a message's User-Id -> the rights of its key; None: CURVE off.
        self.rights_of = rights_of
        self.allow_remote = allow_remote
        # Over ipc:// (a socket file) every peer is on this host; its Peer-Address
        # is then the peer's process credentials, not a network address.
        self.over_network = sock is None or not sock.getsockopt_string(zmq.LAST_ENDPOINT).startswith("ipc://")
        # The porters' records (record op): who (key name, "" without CURVE) -> source ->
        # (indexed, archived, skipped) bucket ids of this buck.
        self.records: dict[str, dict[str, tuple[set[str], set[str], set[str]]]] = {}

    # ----------------------------------------------------------------- the loop's handler

    def handle_frames(self, frames: list[zmq.Frame]) -> None:
        """One message from the ROUTER socket, read with copy=False so that
        its properties say who sent it: answer it, within that one's rights."""
        last = frames[-1]
        try:
            address = (last.get("Peer-Address") or "") if self.over_network else ""
        except zmq.ZMQError:  # no address: not over tcp:// (inproc://): this host
            address = ""
        rights = None
        if self.rights_of is not None:
            try:
                user = last.get("User-Id")
            except zmq.ZMQError:
                user = None
            rights = self.rights_of(user) or NOBODY
        self.handle([f.bytes for f in frames], Peer(rights, address))

    def handle(self, parts: list[bytes], peer: Peer = LOCAL) -> None:
        """One message from the ROUTER socket: answer it."""
        route, body = p.split_message(parts)
        rid, op = 0, None
        if body is None:
            reply: p.Reply = p.ErrorReply(op=None, reason="a request is one message part after an empty "
                                          "delimiter part (a DEALER sends [b'', body])")
        else:
            try:
                rid, request = p.decode_request(body)
            except QueryError as exc:
                rid, op = p.peek_id(body)
                reply = p.ErrorReply(op=op, reason=str(exc), id=rid)
            else:
                op = request.op
                reply = self.answer(request, rid, peer)
        self.counts[f"{op or 'bad'}_requests"] += 1
        if not reply.ok:
            self.counts["errors"] += 1
            self._log_error(op, reply.reason)
        try:
            body = p.encode_reply(reply)
        except (TypeError, ValueError, OverflowError) as exc:  # a stats value msgpack cannot carry
            log.error("Buck %s cannot encode its %s reply: %s", self.name, op, exc)
            body = p.encode_reply(p.ErrorReply(op=op, reason=f"the buck cannot encode its reply: {exc}", id=rid))
        try:
            # Without ROUTER_MANDATORY a reply to a vanished client, or to one
            # past its high-water mark, is dropped: the loop never waits.
            self.sock.send_multipart([*route, body], zmq.NOBLOCK, copy=False)
        except zmq.ZMQError as exc:
            self.counts["replies_dropped"] += 1
            log.debug("Buck %s dropped a query reply: %s.", self.name, exc)

    def _log_error(self, op: str | None, reason: str) -> None:
        now = time.monotonic()
        if now - self._bad_logged >= 1.0:  # a client in a loop must not flood the log
            self._bad_logged = now
            log.warning("Buck %s answered a %s query with an error: %s", self.name, op or "malformed", reason)

    def answer(self, request: p.Request, rid: int = 0, peer: Peer = LOCAL) -> p.Reply:
        """The reply to one decoded request from ``peer``. Problems with the
        buckets asked for, with the files, or with the asker's rights become
        error replies."""
        try:
            refusal = self.refusal(request.op, peer)
            if refusal:
                self.counts[f"refused_{request.op}"] += 1
                raise QueryError(refusal)
            if isinstance(request, p.ListRequest):
                return p.ListReply(buckets=tuple(self.list(request, peer)), id=rid)
            if isinstance(request, p.FetchRequest):
                return self.fetch(request, rid, peer)
            if isinstance(request, p.StatsRequest):
                return p.StatsReply(stats=self.stats_for(peer), id=rid)
            if isinstance(request, p.ReportRequest):
                return self.report(request, rid)
            if isinstance(request, p.RecordRequest):
                return self.record(request, rid, peer)
            return self.prune(request, rid, peer)
        except QueryError as exc:
            return p.ErrorReply(op=request.op, reason=str(exc), id=rid)
        except (OSError, RecordError) as exc:
            log.warning("Buck %s could not answer a %s query: %s", self.name, request.op, exc)
            return p.ErrorReply(op=request.op, reason=f"the buck could not read its buckets: {exc}", id=rid)
        except Exception as exc:
            # A bug here must cost one reply, never the buck's ingest loop.
            log.exception("Buck %s failed on a %s query.", self.name, request.op)
            return p.ErrorReply(op=request.op, reason=f"internal error in the buck: {type(exc).__name__}: {exc}",
                                id=rid)

    # ----------------------------------------------------------------- rights

    def refusal(self, op: str, peer: Peer) -> str | None:
        """Why ``peer`` may not ask ``op`` at all (None: it may, perhaps only
        for some environments, which the op itself checks)."""
        if self.rights_of is not None:
            need = NEEDS[op]
            if peer.rights is None or not peer.rights.may(need):
                who = peer.who() if peer.rights is not None else "an unknown key"
                return f"{who} may not {op}: that takes a {ROLES_FOR[need]} key"
            return None
        if op in LOCAL_ONLY and not peer.local and not self.allow_remote:
            return (f"{peer.who()} is not on this buck's host: with CURVE off, a buck answers {op} only to "
                    "its own host ([buck] query_allow_remote = true lets every host that reaches the port)")
        return None

    def _may(self, peer: Peer, action: str, environment: str) -> bool:
        return peer.rights is None or peer.rights.may(action, environment)

    def _env_refusal(self, peer: Peer, action: str, op: str, environment: str) -> None:
        if not self._may(peer, action, environment):
            self.counts[f"refused_{op}"] += 1
            raise QueryError(f"{peer.who()} may not {op} in environment {environment}")

    def stats_for(self, peer: Peer) -> dict:
        stats = {**self._stats(), "reports": dict(self.reports)}
        if peer.rights is not None and peer.rights.environments is not None:
            envs = peer.rights.environments  # the senders of its environments only
            stats["senders"] = {k: v for k, v in (stats.get("senders") or {}).items()
                                if k.split("/", 1)[0] in envs}
            stats["reports"] = {}
        return stats

    # ----------------------------------------------------------------- the requests

    def state(self, name: layout.BucketName, now: float | None = None) -> str:
        """Open while the buck may still append: its window has not passed
        (frames are filed by arrival time), or a writer still holds it."""
        now = time.time() if now is None else now
        return p.OPEN if now < name.end or self.buckets.is_open(name) else p.CLOSED

    def list(self, request: p.ListRequest, peer: Peer = LOCAL) -> list[p.BucketEntry]:
        if request.environment is not None:
            self._env_refusal(peer, "read", "list", request.environment)
        lo, hi = request.start, request.end
        # list_buckets speaks seconds: widen to whole seconds, then be exact in ns.
        found = layout.list_buckets(self.root, request.environment, None if lo is None else lo // NS,
                                    None if hi is None else -(-hi // NS))
        now = time.time()
        out = []
        for name, path in found:
            if not self._may(peer, "read", name.environment):
                continue  # a key sees only its environments
            if (lo is not None and name.end * NS <= lo) or (hi is not None and name.start * NS >= hi):
                continue
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue  # gone since it was listed
            out.append(p.BucketEntry(id=layout.bucket_id(name), environment=name.environment,
                                     start=name.start * NS, width=name.width, size=size,
                                     state=self.state(name, now)))
        return out

    def _name(self, bucket_id: str) -> layout.BucketName:
        try:
            return layout.parse_bucket_id(bucket_id)
        except ValueError as exc:
            raise QueryError(str(exc)) from None

    def fetch(self, request: p.FetchRequest, rid: int = 0, peer: Peer = LOCAL) -> p.FetchReply:
        name = self._name(request.bucket)
        self._env_refusal(peer, "read", "fetch", name.environment)
        state = self.state(name)
        path = layout.bucket_path(self.root, name.environment, name.start, name.width)
        try:
            f = open(path, "rb", buffering=0)
        except FileNotFoundError:
            raise QueryError(f"this buck holds no bucket {request.bucket}") from None
        limit = min(request.max_bytes or self.max_bytes, self.max_bytes)
        with f:
            size = os.fstat(f.fileno()).st_size
            if request.offset > size:
                raise QueryError(f"offset {request.offset} is past the end of bucket {request.bucket} "
                                 f"({size} bytes)")
            records, total, end = [], 0, True
            reader = RecordReader(f, request.offset, chunk_size=min(limit, 1 << 20))
            for payload in reader:
                records.append(payload)
                total += len(payload)
                # Stop before a record that would take the chunk past the
                # limit: a look at its length is enough (damage there is the
                # next chunk's business).
                head = os.pread(f.fileno(), 4, reader.stats.end)
                if len(head) == 4 and total + _LENGTH.unpack(head)[0] > limit:
                    end = False
                    break
            st = reader.stats
        self.counts["records_served"] += len(records)
        self.counts["bytes_served"] += total
        return p.FetchReply(bucket=request.bucket, offset=request.offset, next=st.end, end=end,
                            records=tuple(records), state=state, size=size,
                            torn_tail=st.torn_tail if end else False,
                            skipped_bytes=st.skipped_bytes, corrupt_records=st.corrupt_records, id=rid)

    def _who(self, peer: Peer) -> str:
        """Whose records a peer's prune is checked against: its key's (by
        file name); without CURVE nobody is known, so "" for every asker."""
        return peer.rights.name if peer.rights is not None else ""

    def record(self, request: p.RecordRequest, rid: int = 0, peer: Peer = LOCAL) -> p.RecordReply:
        mine = self.records.setdefault(self._who(peer), {})
        # Bounded per key, so one key's made-up sources never crowd out another's record.
        if request.source not in mine and len(mine) >= MAX_REPORTS:
            raise QueryError(f"the buck keeps records of at most {MAX_REPORTS} sources per key")
        mine[request.source] = (set(request.indexed), set(request.archived), set(request.skipped))
        return p.RecordReply(id=rid)

    def unrecorded(self, bucket_id: str, peer: Peer) -> str | None:
        """Why the asker's record does not let ``bucket_id`` go (None: it does)."""
        mine = self.records.get(self._who(peer))
        # With CURVE, each key's own record; without, the one left from wherever may ask.
        whose = f"the record of {peer.who()}" if peer.rights is not None else "the porter's record"
        if not mine:
            return (f"no record from {peer.who() if peer.rights is not None else 'any porter'}: a bucket is "
                    "pruned only when the porter's record (left before it prunes) shows it indexed and archived")
        if not any(bucket_id in indexed for indexed, _, _ in mine.values()):
            return f"not indexed: {whose} does not show this window indexed from this buck's copy"
        if not any(bucket_id in archived or bucket_id in skipped for _, archived, skipped in mine.values()):
            return f"not archived: {whose} does not show this window archived (and verified) from this buck's copy"
        return None

    def prune(self, request: p.PruneRequest, rid: int = 0, peer: Peer = LOCAL) -> p.PruneReply:
        deleted: list[str] = []
        not_found: list[str] = []
        refused: dict[str, str] = {}
        now = time.time()
        for bucket_id in request.buckets:
            try:
                name = self._name(bucket_id)
            except QueryError as exc:
                refused[bucket_id] = str(exc)
                continue
            if not self._may(peer, "prune", name.environment):
                refused[bucket_id] = f"{peer.who()} may not prune in environment {name.environment}"
                continue
            if self.state(name, now) == p.OPEN:
                refused[bucket_id] = "the bucket is open: the buck may still append to it"
                continue
            path = layout.bucket_path(self.root, name.environment, name.start, name.width)
            why = self.unrecorded(bucket_id, peer)
            if why:
                if path.exists():
                    refused[bucket_id] = why
                else:  # nothing to delete: said as it is, whoever asks
                    not_found.append(bucket_id)
                continue
            try:
                path.unlink()
            except FileNotFoundError:
                not_found.append(bucket_id)
                continue
            except OSError as exc:
                refused[bucket_id] = f"cannot delete {path}: {exc.strerror or exc}"
                continue
            deleted.append(bucket_id)
            for kept in self.records.get(self._who(peer), {}).values():
                for ids in kept:  # written again later (a late re-send), it needs a new record
                    ids.discard(bucket_id)
            try:
                path.parent.rmdir()  # the day directory, once its last bucket is gone
            except OSError:
                pass  # not empty: other buckets of that day
        if deleted:
            log.info("Buck %s pruned %d bucket(s) on request.", self.name, len(deleted))
        self.counts["buckets_pruned"] += len(deleted)
        self.counts["buckets_refused"] += len(refused)
        if refused:
            bid, why = next(iter(refused.items()))
            self._log_error("prune", f"{len(refused)} bucket(s) not pruned, e.g. {bid}: {why}")
        return p.PruneReply(deleted=tuple(deleted), not_found=tuple(not_found), refused=refused, id=rid)

    def report(self, request: p.ReportRequest, rid: int = 0) -> p.ReportReply:
        if request.source not in self.reports and len(self.reports) >= MAX_REPORTS:
            raise QueryError(f"the buck keeps reports of at most {MAX_REPORTS} sources")
        self.reports[request.source] = {**request.report, "received": time.time()}
        return p.ReportReply(id=rid)

    def stats(self) -> dict:
        return {**self.counts, "records": {who or "(no CURVE)": sorted(mine) for who, mine in self.records.items()}}

