"""Ask bucks bucket queries (``helios.query.protocol``): the porter's, archie's
and the operator tools' side.

One DEALER socket per buck (role "asker"), all polled together: a question
to many bucks takes as long as the slowest one that answers, or the timeout,
and a buck that is down or hung yields a ``QueryError`` naming it, for that
buck only. Every request carries an id, so a late reply to a request that
timed out is recognised and dropped; the socket of a buck that timed out is
closed, and a new one made on the next question.

Use::

    from helios.query.client import QueryClient

    with QueryClient(timeout=5.0) as qc:
        listings = qc.list_buckets(["tcp://buck-a:7303", "tcp://buck-b:7303"], environment="prod")
        for bucket_id, held in holders(listings).items():   # held: {endpoint: BucketEntry}
            ...
        for frame in qc.fetch_bucket("tcp://buck-a:7303", bucket_id):   # codec frames, in file order
            ...

Multi-buck calls return ``{endpoint: result or QueryError}`` and raise only
for programming errors; ``fetch_bucket`` is about one buck and raises
``QueryError`` from its iterator. The module-level functions of the same
names do the same with a client of their own. A ``QueryClient`` is not
thread-safe (ZeroMQ sockets are not): one per thread.

Fetching
--------
``fetch_bucket`` streams a bucket in chunks of whole records (at most the
buck's ``query_max_bytes`` each), so neither side ever holds more than about
two chunks, whatever the bucket's size. The buck keeps no state between
chunks: each request names the offset where the previous chunk ended, so the
pipeline is one chunk deep: as soon as a chunk arrives, the request for the
next one leaves, and the buck reads it while the caller works on this one.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar, Union

import zmq

from helios.errors import QueryError, ServiceError
from helios.query import protocol as p
from helios.query.protocol import BucketEntry, PruneReply, Reply
from helios.wire.sockets import SocketFactory

__all__ = [
    "DEFAULT_TIMEOUT",
    "BucketStream",
    "QueryClient",
    "ask_all",
    "fetch_bucket",
    "holders",
    "list_buckets",
    "prune",
    "stats",
]

DEFAULT_TIMEOUT = 5.0

T = TypeVar("T")
Result = Union[T, QueryError]


class QueryClient:
    """Asks bucks bucket queries; ``timeout`` (seconds) is how long a buck
    may take to answer one request. Sockets are made on first use, one per
    endpoint, and closed by ``close`` (or at the end of a ``with``)."""

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT, factory: SocketFactory | None = None) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0, not {timeout!r}")
        self.timeout = timeout
        self.factory = factory or SocketFactory()
        self._sockets: dict[str, zmq.Socket] = {}
        self._ids = itertools.count(1)
        self._pending: dict[str, set[int]] = {}  # endpoint -> ids of requests in flight
        self._early: dict[str, dict[int, Reply]] = {}  # endpoint -> replies not yet asked for, by id
        self._closed = False

    # ----------------------------------------------------------------- asking

    def ask_all(self, endpoints: Iterable[str], request: p.Request,
                timeout: float | None = None) -> dict[str, Result[Reply]]:
        """Send ``request`` to every buck at once and wait for all replies,
        at most ``timeout`` seconds. Per endpoint: the ``Reply`` (maybe an
        ``ErrorReply``: the buck's refusal) or a ``QueryError`` (no answer in
        time, unreachable endpoint, malformed reply)."""
        timeout = self.timeout if timeout is None else timeout
        results: dict[str, Result[Reply]] = {}
        waiting: dict[zmq.Socket, tuple[str, int]] = {}
        for ep in dict.fromkeys(endpoints):
            try:
                sock = self._socket(ep)
                waiting[sock] = (ep, self._send(ep, sock, request))
            except QueryError as exc:
                results[ep] = exc
        self._collect(waiting, results, timeout)
        return results

    def ask(self, endpoint: str, request: p.Request, timeout: float | None = None) -> Reply:
        """One buck's reply to ``request``; ``QueryError`` if it refused
        (with its reason), did not answer in time, or answered nonsense."""
        return _ok(endpoint, self.ask_all([endpoint], request, timeout)[endpoint])

    def list_buckets(self, endpoints: Iterable[str], environment: str | None = None, start: int | None = None,
                     end: int | None = None, timeout: float | None = None) -> dict[str, Result[list[BucketEntry]]]:
        """The buckets each buck holds, of ``environment`` (None: all), whose
        window overlaps ``[start, end)`` (ns since the epoch; None: unbounded)."""
        replies = self.ask_all(endpoints, p.ListRequest(environment, start, end), timeout)
        return {ep: _value(ep, r, lambda r: list(r.buckets)) for ep, r in replies.items()}

    def stats(self, endpoints: Iterable[str], timeout: float | None = None) -> dict[str, Result[dict]]:
        """Each buck's stats (what it writes to its stats.json)."""
        replies = self.ask_all(endpoints, p.StatsRequest(), timeout)
        return {ep: _value(ep, r, lambda r: r.stats) for ep, r in replies.items()}

    def prune(self, endpoints: Iterable[str], bucket_ids: Iterable[str],
              timeout: float | None = None) -> dict[str, Result[PruneReply]]:
        """Ask each buck to delete these buckets. Per buck, a ``PruneReply``
        (``deleted``, ``not_found``, ``refused`` {id: reason}: an open bucket,
        or one the asker's ``record`` does not show indexed and archived, is
        refused) or a ``QueryError``."""
        replies = self.ask_all(endpoints, p.PruneRequest(tuple(bucket_ids)), timeout)
        return {ep: _value(ep, r, lambda r: r) for ep, r in replies.items()}

    def report(self, endpoints: Iterable[str], source: str, report: dict,
               timeout: float | None = None) -> dict[str, Result[None]]:
        """Leave ``report`` (a service's status, e.g. the porter's) with each
        buck, which shows the latest of each ``source`` in its stats."""
        replies = self.ask_all(endpoints, p.ReportRequest(source, report), timeout)
        return {ep: _value(ep, r, lambda r: None) for ep, r in replies.items()}

    def record(self, endpoint: str, source: str, *, indexed: Iterable[str] = (), archived: Iterable[str] = (),
               skipped: Iterable[str] = (), timeout: float | None = None) -> Result[None]:
        """Leave the porter's record of one buck's windows (bucket ids indexed,
        archived and verified, or blacklisted from the archive, from that
        buck's copy): the buck prunes only what it shows."""
        request = p.RecordRequest(source, tuple(indexed), tuple(archived), tuple(skipped))
        return _value(endpoint, self.ask_all([endpoint], request, timeout)[endpoint], lambda r: None)

    def fetch_bucket(self, endpoint: str, bucket_id: str, *, offset: int = 0, max_bytes: int | None = None,
                     timeout: float | None = None) -> "BucketStream":
        """The records (codec frames, as bytes) of one bucket of one buck, in
        file order, streamed chunk by chunk; see ``BucketStream``."""
        return BucketStream(self, endpoint, bucket_id, offset=offset, max_bytes=max_bytes,
                            timeout=self.timeout if timeout is None else timeout)

    # ----------------------------------------------------------------- sockets
    #
    # Several requests may be in flight to one buck at once (a stream's next
    # chunk while the caller lists or fetches something else), all on its one
    # socket. A reply is handed to whoever waits for its id; one that comes
    # while someone else is waiting is kept until asked for, and one to a
    # request given up on (timed out) is dropped.

    def _socket(self, endpoint: str) -> zmq.Socket:
        sock = self._sockets.get(endpoint)
        if sock is None:
            if self._closed:
                raise ValueError("this QueryClient is closed")
            try:
                sock = self._sockets[endpoint] = self.factory.make("asker", endpoint)
            except ServiceError as exc:
                raise QueryError(f"buck {endpoint}: {exc}", endpoint) from None
        return sock

    def _reset(self, endpoint: str) -> None:
        """Drop a socket whose buck did not answer, and every request in
        flight on it: what it still queues would be answered too late, if ever."""
        sock = self._sockets.pop(endpoint, None)
        self._pending.pop(endpoint, None)
        self._early.pop(endpoint, None)
        if sock is not None:
            sock.close(linger=0)

    def _send(self, endpoint: str, sock: zmq.Socket, request: p.Request) -> int:
        rid = next(self._ids)
        try:
            sock.send_multipart([b"", p.encode_request(request, rid)], zmq.NOBLOCK)
        except zmq.ZMQError as exc:  # Again: its queue to a buck that never connected is full
            self._reset(endpoint)
            raise QueryError(f"buck {endpoint}: cannot send the request ({exc})", endpoint) from None
        self._pending.setdefault(endpoint, set()).add(rid)
        return rid

    def _collect(self, waiting: dict[zmq.Socket, tuple[str, int]], results: dict[str, Result[Reply]],
                 timeout: float) -> None:
        """Poll every socket in ``waiting`` (socket -> (endpoint, request id))
        until each has its reply or ``timeout`` has passed."""
        poller = zmq.Poller()
        for sock, (ep, rid) in list(waiting.items()):
            early = self._early.get(ep, {}).pop(rid, None)
            if early is not None:
                results[ep] = early
                del waiting[sock]
            else:
                poller.register(sock, zmq.POLLIN)
        deadline = time.monotonic() + timeout
        while waiting:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for sock, _ in poller.poll(max(1, int(left * 1000))):
                ep, rid = waiting[sock]
                reply = self._receive(ep, sock, rid)
                if reply is not None:
                    results[ep] = reply
                    poller.unregister(sock)
                    del waiting[sock]
        for ep, _ in waiting.values():
            self._reset(ep)
            results[ep] = QueryError(f"buck {ep} did not answer within {timeout:g} s (is it running, "
                                     "and is this its query endpoint?)", ep)

    def _receive(self, endpoint: str, sock: zmq.Socket, rid: int) -> Result[Reply] | None:
        """The reply to request ``rid`` if it has come; None if not yet."""
        pending = self._pending.get(endpoint, set())
        while True:
            try:
                # Not copied out of ZeroMQ's buffer: a fetch reply is a whole chunk.
                parts = sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return None
            if len(parts) != 2 or parts[0].bytes != b"":
                pending.discard(rid)
                return QueryError(f"buck {endpoint}: malformed reply: {len(parts)} message parts, "
                                  "expected an empty delimiter and a body", endpoint)
            try:
                reply = p.decode_reply(parts[1].buffer)
            except QueryError as exc:
                pending.discard(rid)
                return QueryError(f"buck {endpoint}: {exc}", endpoint)
            if reply.id not in pending:
                continue  # a reply to a request given up on
            pending.discard(reply.id)
            if reply.id == rid:
                return reply
            self._early.setdefault(endpoint, {})[reply.id] = reply

    def _forget(self, endpoint: str, rid: int) -> None:
        """Give up on request ``rid``: its reply is dropped when it comes."""
        self._pending.get(endpoint, set()).discard(rid)
        self._early.get(endpoint, {}).pop(rid, None)

    def _wait(self, endpoint: str, rid: int, timeout: float) -> Reply:
        """The reply to request ``rid`` from one buck, or ``QueryError``."""
        sock = self._sockets.get(endpoint)
        if sock is None or (rid not in self._pending.get(endpoint, ()) and rid not in self._early.get(endpoint, {})):
            raise QueryError(f"buck {endpoint}: the request was dropped when another one to this buck "
                             "timed out", endpoint)
        results: dict[str, Result[Reply]] = {}
        self._collect({sock: (endpoint, rid)}, results, timeout)
        return _ok(endpoint, results[endpoint])

    def close(self) -> None:
        """Close every socket; the client cannot be used afterwards."""
        self._closed = True
        for ep in list(self._sockets):
            self._reset(ep)

    def __enter__(self) -> "QueryClient":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class BucketStream:
    """The records of one bucket, fetched chunk by chunk as the iteration
    goes (one chunk in flight ahead of the caller). Iterate once; raises
    ``QueryError`` if the buck refuses (e.g. the bucket was pruned), stops
    answering, or answers nonsense.

    After (or during) the iteration: ``state`` ("open": the buck may still
    append to it; what was there when each chunk was read has been
    returned), ``size`` (the file's size at the last chunk), ``next`` (the
    offset after the last record returned), ``records``, ``bytes``,
    ``chunks``, and the damage met: ``torn_tail``, ``skipped_bytes``,
    ``corrupt_records`` (the records returned are whole and passed their
    checksum whatever the damage)."""

    def __init__(self, client: QueryClient, endpoint: str, bucket_id: str, *, offset: int = 0,
                 max_bytes: int | None = None, timeout: float = DEFAULT_TIMEOUT, owns_client: bool = False) -> None:
        self.client = client
        self.endpoint = endpoint
        self.bucket_id = bucket_id
        self.max_bytes = max_bytes
        self.timeout = timeout
        self._owns_client = owns_client
        self.state: str | None = None
        self.size = 0
        self.next = offset
        self.records = 0
        self.bytes = 0
        self.chunks = 0
        self.torn_tail = False
        self.skipped_bytes = 0
        self.corrupt_records = 0
        self._iter = self._run()

    def __iter__(self) -> Iterator[bytes]:
        return self._iter

    def __next__(self) -> bytes:
        return next(self._iter)

    def _ask(self, offset: int) -> int:
        sock = self.client._socket(self.endpoint)
        return self.client._send(self.endpoint, sock, p.FetchRequest(self.bucket_id, offset, self.max_bytes))

    def _run(self) -> Iterator[bytes]:
        rid = None
        try:
            offset = self.next
            rid = self._ask(offset)
            while True:
                reply = self.client._wait(self.endpoint, rid, self.timeout)
                rid = None
                if not isinstance(reply, p.FetchReply) or reply.bucket != self.bucket_id or reply.offset != offset:
                    raise QueryError(f"buck {self.endpoint}: the reply is not the chunk of {self.bucket_id} "
                                     f"at {offset} that was asked for", self.endpoint)
                if not reply.end and reply.next <= offset:  # a buck that never gets anywhere
                    raise QueryError(f"buck {self.endpoint}: a chunk of {self.bucket_id} at offset {offset} "
                                     "made no progress", self.endpoint)
                self._account(reply)
                if not reply.end:
                    offset = reply.next
                    rid = self._ask(offset)  # in flight while the caller works on this chunk
                yield from reply.records
                if reply.end:
                    return
        finally:
            if self._owns_client:
                self.client.close()
            elif rid is not None:  # abandoned with a chunk in flight
                self.client._forget(self.endpoint, rid)

    def _account(self, reply: p.FetchReply) -> None:
        self.chunks += 1
        self.state = reply.state
        self.size = reply.size
        self.next = reply.next
        self.records += len(reply.records)
        self.bytes += sum(map(len, reply.records))
        self.torn_tail = reply.torn_tail
        self.skipped_bytes += reply.skipped_bytes
        self.corrupt_records += reply.corrupt_records


def _ok(endpoint: str, result: Result[Reply]) -> Reply:
    if isinstance(result, QueryError):
        raise result
    if isinstance(result, p.ErrorReply):
        raise QueryError(f"buck {endpoint} refused: {result.reason}", endpoint)
    return result


def _value(endpoint: str, result: Result[Reply], get) -> Result:
    try:
        return get(_ok(endpoint, result))
    except QueryError as exc:
        return exc


def holders(listings: dict[str, Result[list[BucketEntry]]]) -> dict[str, dict[str, BucketEntry]]:
    """Bucket id -> {endpoint: its entry on that buck}, for every bucket any
    buck listed, sorted by id (environment, then time). Bucks that failed are
    left out (they are the QueryErrors in ``listings``)."""
    out: dict[str, dict[str, BucketEntry]] = {}
    for ep, entries in listings.items():
        if isinstance(entries, QueryError):
            continue
        for entry in entries:
            out.setdefault(entry.id, {})[ep] = entry
    def order(item: tuple[str, dict[str, BucketEntry]]) -> tuple:
        entry = next(iter(item[1].values()))
        return entry.environment, entry.start, entry.width

    return dict(sorted(out.items(), key=order))


# --------------------------------------------------------------------------- one-shot helpers


def ask_all(endpoints: Iterable[str], request: p.Request,
            timeout: float = DEFAULT_TIMEOUT) -> dict[str, Result[Reply]]:
    """``QueryClient.ask_all`` with a client of its own."""
    with QueryClient(timeout=timeout) as qc:
        return qc.ask_all(endpoints, request)


def list_buckets(endpoints: Iterable[str], environment: str | None = None, start: int | None = None,
                 end: int | None = None, *, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Result[list[BucketEntry]]]:
    """``QueryClient.list_buckets`` with a client of its own."""
    with QueryClient(timeout=timeout) as qc:
        return qc.list_buckets(endpoints, environment, start, end)


def stats(endpoints: Iterable[str], *, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Result[dict]]:
    """``QueryClient.stats`` with a client of its own."""
    with QueryClient(timeout=timeout) as qc:
        return qc.stats(endpoints)


def prune(endpoints: Iterable[str], bucket_ids: Iterable[str], *,
          timeout: float = DEFAULT_TIMEOUT) -> dict[str, Result[PruneReply]]:
    """``QueryClient.prune`` with a client of its own."""
    with QueryClient(timeout=timeout) as qc:
        return qc.prune(endpoints, bucket_ids)


def fetch_bucket(endpoint: str, bucket_id: str, *, offset: int = 0, max_bytes: int | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> BucketStream:
    """``QueryClient.fetch_bucket`` with a client of its own, closed when the
    iteration ends (or the stream is garbage-collected)."""
    return BucketStream(QueryClient(timeout=timeout), endpoint, bucket_id, offset=offset, max_bytes=max_bytes,
                        timeout=timeout, owns_client=True)
