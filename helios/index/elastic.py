"""Elasticsearch and OpenSearch indexes: one implementation for both
clients (elasticsearch-py, opensearch-py), which share their API shapes.

Indices are daily: ``PREFIX-ENV-YYYY.MM.DD`` (the environment lowercased,
as index names must be; every document also carries its exact environment,
and every query filters on it). An index template ``PREFIX`` maps them:

    id, source_id          keyword (hex)        host, app, source, environment   keyword
    time, received         long (ns)            @timestamp   date (ms), for Kibana/Dashboards
    severity               byte                 offset       long
    message                text (standard analyzer), with message.wc: wildcard
    message_b64            binary: the raw bytes, only when they are not UTF-8
    fields                 object, not indexed: the fields, when they are plain JSON
    fields_mp              binary: the fields as msgpack, exact (always, when there are fields)
    fields_kv              keyword, many: "key=value" per pair of ``helios.index.query.field_pairs``

Loading uses the clients' ``streaming_bulk`` helper with op type
``create`` and ``_id`` = the event id in hex: a 409 ("already there") is
how a duplicate is dropped, not an error. A 429 is backpressure: the
helper retries those documents with exponential backoff, and the client
retries whole requests answered 429/502/503/504. Anything else a server
refuses becomes an ``IndexStoreError`` naming the first few reasons.

Searching: terms are ``regexp`` queries on ``message.wc`` (the whole word,
ASCII case-insensitive, with the word boundaries of ``helios.index.query``)
and substrings are ``wildcard`` queries on it (exact, case-sensitive), so
both backends answer exactly what the sqlite index answers. A field
``key:a,b`` is a ``terms`` query on ``fields_kv`` for ``key=a``, ``key=b``:
a plain keyword, which Elasticsearch and OpenSearch map and query alike
(``flattened`` is Elasticsearch's alone, ``flat_object`` OpenSearch's), and
exact as sqlite's ``fv`` is. A key has no ``=`` (``field_pairs`` leaves such
keys out), so the first ``=`` ends it.

Indices made before ``fields_kv`` existed do not have it: their events are
not found by field (words and filters still find them). New daily indices
take the new template; ``helios export`` and a reload fill an old day. The wildcard
field type needs Elasticsearch 7.9+ or OpenSearch 2.15+. Hits are sorted by
(time, id) and paged with ``search_after``.

``bulk_lines`` (event -> the (action, document) pairs of a bulk body) and
``event_from_document`` are pure and inverse: unit tests check the body.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import logging
import math
import re
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, Iterable, Iterator, Sequence

import msgpack

from helios.errors import IndexStoreError
from helios.index.base import (DEFAULT_NAME, check_context, check_name, check_step, check_top, context_by_time, searchable,
                               day_of, merge_top)
from helios.index.query import Query, field_pairs
from helios.model import ROW_FIELDS, Event, severity_name
from helios.store.layout import valid_environment

__all__ = ["ElasticIndex", "bulk_body", "bulk_lines", "content_digest", "document", "event_from_document", "index_name",
           "search_body", "template"]

log = logging.getLogger(__name__)

MAX_WINDOW = 10_000          # a search page can hold at most this many hits (index.max_result_window)
KEY_TERMS = 1000            # fields_kv terms read to find the field keys (field_keys)
MAX_LISTED_DAYS = 100        # past this many days, a search names the indices by pattern
# Lucene regexp class of a character that is not a word character (see helios.index.query).
_NOT_WORD = "[^A-Za-z0-9\u0080-\U0010ffff]"
_DAY_SUFFIX = re.compile(r"(\d{4})\.(\d{2})\.(\d{2})")


# ---------------------------------------------------------------- pure: documents and bodies

def index_name(prefix: str, environment: str, t_ns: int) -> str:
    """The daily index holding an event of ``environment`` at ``t_ns``."""
    return f"{prefix}-{environment.lower()}-{day_of(t_ns):%Y.%m.%d}"


def _jsonable(value: Any, depth: int = 0) -> bool:
    """Would ``value`` go through JSON and come back the same?"""
    if depth > 32:
        return False
    if value is None or isinstance(value, (str, bool)):
        return True
    if isinstance(value, int):
        return -2**63 <= value < 2**64
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return all(_jsonable(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _jsonable(v, depth + 1) for k, v in value.items())
    return False


def document(e: Event, environment: str) -> dict:
    """The ``_source`` of an event."""
    try:
        text, raw = e.message.decode("utf-8"), None
    except UnicodeDecodeError:
        text, raw = e.message.decode("utf-8", "replace"), base64.b64encode(e.message).decode("ascii")
    doc = {
        "id": e.id.hex(), "@timestamp": e.time // 1_000_000, "time": e.time, "received": e.received,
        "environment": environment, "host": e.host, "app": e.app, "severity": e.severity, "source": e.source,
        "offset": e.offset, "source_id": e.source_id.hex(), "message": text,
    }
    if raw is not None:
        doc["message_b64"] = raw
    if e.fields is not None:
        doc["fields_mp"] = base64.b64encode(msgpack.packb(e.fields, use_bin_type=True)).decode("ascii")
        if _jsonable(e.fields):
            doc["fields"] = e.fields
        pairs = field_pairs(e.fields)
        if pairs:
            doc["fields_kv"] = [f"{k}={v}" for k, v in pairs]
    return doc


def event_from_document(src: dict) -> Event:
    """The event a ``_source`` was made from (inverse of ``document``)."""
    message = base64.b64decode(src["message_b64"]) if "message_b64" in src else src["message"].encode("utf-8")
    fields = msgpack.unpackb(base64.b64decode(src["fields_mp"]), raw=False, strict_map_key=False) \
        if "fields_mp" in src else None
    return Event(bytes.fromhex(src["id"]), src["time"], src["received"], src["host"], src["app"], src["severity"],
                 src["source"], src["offset"], message, fields, bytes.fromhex(src["source_id"]), src["environment"])


def content_digest(doc: dict) -> bytes:
    """A digest of a ``_source`` (as ``document`` makes it and the index
    returns it) but its time (``time``, ``@timestamp``): ``helios audit
    --index`` compares times apart (MOVED), the rest by this (CHANGED)."""
    rest = {k: v for k, v in doc.items() if k not in ("time", "@timestamp")}
    text = json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def bulk_lines(prefix: str, environment: str, events: Iterable[Event]) -> Iterator[tuple[dict, dict]]:
    """(action, document) per event: the two lines each adds to a bulk body."""
    for e in events:
        action = {"create": {"_index": index_name(prefix, environment, e.time), "_id": e.id.hex()}}
        yield action, document(e, environment)


def bulk_body(prefix: str, environment: str, events: Iterable[Event]) -> bytes:
    """A whole bulk request body (NDJSON), as the bulk API takes it."""
    out = []
    for action, doc in bulk_lines(prefix, environment, events):
        out.append(json.dumps(action, separators=(",", ":")))
        out.append(json.dumps(doc, separators=(",", ":"), ensure_ascii=False))
    return ("\n".join(out) + "\n").encode("utf-8") if out else b""


def template(prefix: str) -> dict:
    """The index template (body of PUT _index_template/PREFIX) for ``prefix``'s indices."""
    keyword = {"type": "keyword"}
    return {
        "index_patterns": [f"{prefix}-*"],
        "priority": 200,
        "template": {
            "mappings": {
                "dynamic": False,
                "properties": {
                    "id": keyword, "source_id": keyword, "environment": keyword, "host": keyword,
                    "app": keyword, "source": keyword,
                    "@timestamp": {"type": "date", "format": "epoch_millis"},
                    "time": {"type": "long"}, "received": {"type": "long"}, "offset": {"type": "long"},
                    "severity": {"type": "byte"},
                    "message": {"type": "text", "fields": {"wc": {"type": "wildcard"}}},
                    "message_b64": {"type": "binary"},
                    "fields": {"type": "object", "enabled": False},
                    "fields_mp": {"type": "binary"},
                    "fields_kv": keyword,
                },
            },
        },
    }


def _wildcard_escape(text: str) -> str:
    return re.sub(r"([\\*?])", r"\\\1", text)


def _lucene_escape(text: str) -> str:
    """``text`` as a Lucene regexp matching itself."""
    return "".join(c if c.isalnum() else "\\" + c for c in text)


def search_body(q: Query) -> dict:
    """The query (bool filter) of ``q``, without paging."""
    filters: list[dict] = [{"term": {"environment": q.environment}},
                           {"range": {"time": {"gte": q.start, "lt": q.end}}}]
    if q.hosts:
        filters.append({"terms": {"host": list(q.hosts)}})
    if q.apps:
        filters.append({"terms": {"app": list(q.apps)}})
    if q.severity is not None:
        filters.append({"range": {"severity": {"lte": q.severity}}})
    for key, values in q.fields:
        filters.append({"terms": {"fields_kv": [f"{key}={v}" for v in values]}})
    for s in q.substrings:
        try:
            text = s.decode("utf-8")
        except UnicodeDecodeError:
            raise IndexStoreError(f"Elasticsearch and OpenSearch indexes hold messages as text: they cannot search "
                                  f"for bytes that are not UTF-8 ({s!r})") from None
        filters.append({"wildcard": {"message.wc": {"value": f"*{_wildcard_escape(text)}*"}}})
    for t in q.terms:
        # A term is only word characters (letters, digits, non-ASCII): nothing in it is a regexp operator.
        filters.append({"regexp": {"message.wc": {"value": f"(.*{_NOT_WORD})?{t}({_NOT_WORD}.*)?",
                                                  "flags": "NONE", "case_insensitive": True}}})
    return {"bool": {"filter": filters}}


# ---------------------------------------------------------------- the backend

def _client_library(kind: str):
    """(client class, helpers module, exception classes to translate)."""
    if kind == "opensearch":
        import opensearchpy
        from opensearchpy import helpers

        return opensearchpy.OpenSearch, helpers, (opensearchpy.exceptions.OpenSearchException,)
    import elastic_transport
    import elasticsearch
    from elasticsearch import helpers

    return elasticsearch.Elasticsearch, helpers, (elasticsearch.ApiError, elastic_transport.TransportError,
                                                  elasticsearch.exceptions.SerializationError)


def _status(exc: Exception):
    status = getattr(exc, "status_code", None)
    meta = getattr(exc, "meta", None)
    return getattr(meta, "status", status)


class ElasticIndex:
    """An index of daily indices ``NAME-ENV-YYYY.MM.DD`` on an Elasticsearch
    (``kind`` "elasticsearch") or OpenSearch ("opensearch") server at ``url``.

    ``chunk_size`` is documents per bulk request; ``max_retries``,
    ``initial_backoff`` and ``max_backoff`` govern retries on 429;
    ``timeout`` is seconds per request. Other keyword options go to the
    client (``basic_auth``/``http_auth``, ``verify_certs``, ``ca_certs``, ...)."""

    def __init__(self, kind: str, url: str, name: str = DEFAULT_NAME, *, chunk_size: int = 2000,
                 max_retries: int = 8, initial_backoff: float = 0.5, max_backoff: float = 30.0,
                 timeout: float = 60.0, **client_options: Any) -> None:
        if kind not in ("elasticsearch", "opensearch"):
            raise IndexStoreError(f"unknown index kind {kind!r}")
        self.kind = kind
        self.url = url
        self.name = check_name(name)
        self.chunk_size = chunk_size
        self.max_retries = max_retries
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        client_class, self._helpers, self._errors_caught = _client_library(kind)
        # 429 is left to the bulk helper, which backs off exponentially; the clients would retry at once.
        retry = dict(max_retries=3, retry_on_status=(502, 503, 504), retry_on_timeout=True)
        try:
            if kind == "opensearch":
                self.client = client_class(hosts=[url], timeout=timeout, **retry, **client_options)
            else:
                self.client = client_class(url, request_timeout=timeout, **retry, **client_options)
        except (ValueError, TypeError) as exc:
            raise IndexStoreError(f"{kind} at {url}: cannot make a client: {exc}") from None
        self._template_done = False

    def __repr__(self) -> str:
        return f"ElasticIndex({self.kind!r}, {self.url!r}, {self.name!r})"

    def __enter__(self) -> "ElasticIndex":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def _translated(self, doing: str):
        try:
            yield
        except self._errors_caught as exc:
            status = _status(exc)
            what = f"HTTP {status}: {exc}" if isinstance(status, int) else f"cannot reach it: {exc}"
            raise IndexStoreError(f"{self.kind} at {self.url}: {doing} failed ({what})") from None

    def _check_environment(self, environment: str) -> None:
        if not valid_environment(environment):
            raise IndexStoreError(f"{self.kind} index: {environment!r} is not a valid environment name")

    # ------------------------------------------------------------ loading

    def _ensure_template(self) -> None:
        if not self._template_done:
            with self._translated(f"putting the index template {self.name}"):
                self.client.indices.put_index_template(name=self.name, body=template(self.name))
            self._template_done = True

    def load(self, environment: str, events: Sequence[Event]) -> int:
        """Bulk-create the events; return how many were new (the rest were
        there already). Searchable once it returns."""
        self._check_environment(environment)
        events = searchable(events)
        if not len(events):
            return 0
        events = [e if type(e) is Event else Event(*e[:ROW_FIELDS], environment) for e in events]
        self._ensure_template()
        new, failed, touched = 0, [], set()
        with self._translated(f"bulk loading {len(events)} events"):
            results = self._helpers.streaming_bulk(
                self.client, bulk_lines(self.name, environment, events), chunk_size=self.chunk_size,
                expand_action_callback=lambda pair: pair, raise_on_error=False, raise_on_exception=True,
                max_retries=self.max_retries, initial_backoff=self.initial_backoff, max_backoff=self.max_backoff)
            for ok, info in results:
                item = info.get("create", info)
                touched.add(item.get("_index"))
                status = item.get("status")
                if ok and status == 201:
                    new += 1
                elif status == 409:
                    pass                                # already there: that is how duplicates are dropped
                else:
                    failed.append(f"{item.get('_id')}: HTTP {status} {item.get('error')}")
            touched.discard(None)
            if touched:
                self.client.indices.refresh(index=",".join(sorted(touched)))
        if failed:
            more = f" (and {len(failed) - 3} more)" if len(failed) > 3 else ""
            raise IndexStoreError(f"{self.kind} at {self.url} refused {len(failed)} of {len(events)} events: "
                                  + "; ".join(failed[:3]) + more)
        return new

    # ------------------------------------------------------------ searching

    def _indices_for(self, q: Query) -> str:
        first, last = day_of(q.start), day_of(max(q.start, q.end - 1))
        if (last - first).days >= MAX_LISTED_DAYS:
            return f"{self.name}-{q.environment.lower()}-*"
        days = [first + datetime.timedelta(days=i) for i in range((last - first).days + 1)]
        return ",".join(f"{self.name}-{q.environment.lower()}-{d:%Y.%m.%d}" for d in days)

    def search(self, q: Query) -> list[Event]:
        if q.end <= q.start:
            return []
        order = "desc" if q.descending else "asc"
        body: dict = {"query": search_body(q), "sort": [{"time": order}, {"id": order}], "track_total_hits": False}
        after = [q.after[0], q.after[1].hex()] if q.after is not None else None
        hits: list[Event] = []
        with self._translated("searching"):
            while q.limit is None or len(hits) < q.limit:
                size = MAX_WINDOW if q.limit is None else min(MAX_WINDOW, q.limit - len(hits))
                page_body = dict(body, size=size, **({"search_after": after} if after else {}))
                page = self.client.search(index=self._indices_for(q), body=page_body, ignore_unavailable=True,
                                          allow_no_indices=True)["hits"]["hits"]
                hits += [event_from_document(h["_source"]) for h in page]
                if len(page) < size:
                    break
                after = page[-1]["sort"]
        return hits

    def count(self, q: Query) -> int:
        if q.end <= q.start:
            return 0
        q = replace(q, after=None)
        with self._translated("counting"):
            return self.client.count(index=self._indices_for(q), body={"query": search_body(q)},
                                     ignore_unavailable=True, allow_no_indices=True)["count"]

    # ------------------------------------------------------------ aggregations

    def _aggregate(self, q: Query, aggs: dict, doing: str) -> dict:
        body = {"size": 0, "query": search_body(q), "aggs": aggs, "track_total_hits": False}
        with self._translated(doing):
            r = self.client.search(index=self._indices_for(q), body=body, ignore_unavailable=True,
                                   allow_no_indices=True)
        return r.get("aggregations") or {}

    def histogram(self, q: Query, step: int) -> list[tuple[int, dict[int | None, int]]]:
        check_step(q, step)
        if q.end <= q.start:
            return []
        q = replace(q, after=None)
        # A date_histogram on @timestamp (ms): buckets from the epoch, exact
        # for whole-second steps (a numeric histogram on the ns "time" would
        # compute in doubles and misplace events near a boundary).
        step_ms = step // 1_000_000
        aggs = {"t": {"date_histogram": {"field": "@timestamp", "fixed_interval": f"{step_ms}ms", "min_doc_count": 1},
                      "aggs": {"sev": {"terms": {"field": "severity", "size": 16, "missing": -1}}}}}
        out = []
        for b in self._aggregate(q, aggs, "counting a histogram").get("t", {}).get("buckets", []):
            counts = {}
            for s in b.get("sev", {}).get("buckets", []):
                sev = int(s["key"])
                counts[None if sev < 0 else sev] = s["doc_count"]
            if b["doc_count"]:
                out.append((int(b["key"]) * 1_000_000, counts))
        return out

    def top(self, q: Query, field: str, n: int = 10) -> list[tuple[str, int]]:
        check_top(field, n)
        if q.end <= q.start:
            return []
        q = replace(q, after=None)
        counts: dict[str, int] = {}
        if field in ("host", "app", "severity"):
            terms = {"field": field, "size": n + 1}
            if field == "severity":
                terms["missing"] = -1
            for b in self._aggregate(q, {"v": {"terms": terms}}, f"top values of {field}")["v"]["buckets"]:
                key = severity_name(int(b["key"])) if field == "severity" else str(b["key"])
                counts[key] = counts.get(key, 0) + b["doc_count"]
        else:
            # fields_kv holds "key=value": the values of one key are the terms
            # with its prefix (include: a regexp on the whole term).
            body_q = search_body(q)
            body_q["bool"]["filter"].append({"prefix": {"fields_kv": f"{field}="}})
            body = {"size": 0, "query": body_q, "track_total_hits": False,
                    "aggs": {"v": {"terms": {"field": "fields_kv", "size": n + 1,
                                             "include": _lucene_escape(field + "=") + ".*"}}}}
            with self._translated(f"top values of {field}"):
                r = self.client.search(index=self._indices_for(q), body=body, ignore_unavailable=True,
                                       allow_no_indices=True)
            for b in (r.get("aggregations") or {}).get("v", {}).get("buckets", []):
                key = str(b["key"])
                if key.startswith(field + "="):
                    counts[key[len(field) + 1:]] = b["doc_count"]
        return merge_top(counts, n)

    def tops(self, q: Query, fields: Sequence[str], n: int = 10) -> dict[str, list[tuple[str, int]]]:
        """The columns in one request of several terms aggregations; each extracted field by ``top``."""
        for f in fields:
            check_top(f, n)
        columns = [f for f in fields if f in ("host", "app", "severity")]
        out: dict[str, list] = {}
        if columns and q.end > q.start:
            aggs = {f: {"terms": {"field": f, "size": n + 1, **({"missing": -1} if f == "severity" else {})}}
                    for f in columns}
            got = self._aggregate(replace(q, after=None), aggs, "top values")
            for f in columns:
                counts: dict[str, int] = {}
                for b in got.get(f, {}).get("buckets", []):
                    key = severity_name(int(b["key"])) if f == "severity" else str(b["key"])
                    counts[key] = counts.get(key, 0) + b["doc_count"]
                out[f] = merge_top(counts, n)
        for f in fields:
            if f not in out:
                out[f] = self.top(q, f, n)
        return out

    def field_keys(self, q: Query, n: int = 10) -> list[tuple[str, int]]:
        check_top("key", n)
        if q.end <= q.start:
            return []
        # fields_kv holds "key=value" terms only: the keys are summed from
        # its most frequent terms (KEY_TERMS of them), so a key whose values
        # are all rare may be missed, and a key's count is of its values
        # (an event with a list of two counts twice).
        aggs = {"v": {"terms": {"field": "fields_kv", "size": KEY_TERMS}}}
        counts: dict[str, int] = {}
        for b in self._aggregate(replace(q, after=None), aggs, "listing field keys").get("v", {}).get("buckets", []):
            key = str(b["key"]).partition("=")[0]
            counts[key] = counts.get(key, 0) + b["doc_count"]
        return merge_top(counts, n)

    def context(self, environment: str, t: int, event_id: bytes, before: int = 10,
                after: int = 10) -> tuple[list[Event], Event | None, list[Event]]:
        check_context(before, after)
        self._check_environment(environment)
        index = f"{self.name}-{environment.lower()}-*"
        with self._translated("finding an event"):
            r = self.client.search(index=index, body={"size": 1, "query": {"bool": {"filter": [
                {"term": {"environment": environment}}, {"term": {"id": event_id.hex()}},
                {"term": {"time": t}}]}}}, ignore_unavailable=True, allow_no_indices=True)["hits"]["hits"]
        if not r:
            return [], None, []
        event = event_from_document(r[0]["_source"])
        if not event.source_id or event.offset is None:
            return context_by_time(self, event, before, after)
        sides = []
        for op, order, want in (("lt", "desc", before), ("gt", "asc", after)):
            if not want:
                sides.append([])
                continue
            # The same offset can hold two ids (a line rewritten in place): search_after on (offset, id).
            body = {"size": want, "sort": [{"offset": order}, {"id": order}],
                    "query": {"bool": {"filter": [{"term": {"environment": environment}},
                                                  {"term": {"source_id": event.source_id.hex()}},
                                                  {"range": {"offset": {"lte" if op == "lt" else "gte":
                                                                        event.offset}}}]}},
                    "search_after": [event.offset, event.id.hex()]}
            with self._translated("reading an event's context"):
                hits = self.client.search(index=index, body=body, ignore_unavailable=True,
                                          allow_no_indices=True)["hits"]["hits"]
            evs = [event_from_document(h["_source"]) for h in hits]
            sides.append(evs[::-1] if op == "lt" else evs)
        return sides[0], event, sides[1]

    def keys(self, environment: str, day: datetime.date, page: int = MAX_WINDOW) -> Iterator[list[tuple[bytes, int, int]]]:
        """(id, time, received) of every event of ``environment`` on ``day``,
        a page at a time (sorted by time and id, paged with ``search_after``):
        what ``helios audit --index`` compares with the bucks."""
        for hits in self._pages(environment, day, ["id", "time", "received"], page):
            yield [(bytes.fromhex(h["_source"]["id"]), h["_source"]["time"], h["_source"]["received"])
                   for h in hits]

    def contents(self, environment: str, day: datetime.date,
                 page: int = MAX_WINDOW) -> Iterator[list[tuple[bytes, int, int, bytes]]]:
        """(id, time, received, content digest) of every event of
        ``environment`` on ``day``, as ``keys``: what ``helios audit --index
        --content`` compares with ``content_digests`` of the bucks' rows. The
        digest is of the whole ``_source`` but the time (``content_digest``):
        every document is read whole."""
        for hits in self._pages(environment, day, True, page):
            yield [(bytes.fromhex(h["_source"]["id"]), h["_source"]["time"], h["_source"]["received"],
                    content_digest(h["_source"])) for h in hits]

    def content_digests(self, environment: str, events: Sequence) -> list[bytes]:
        """The digest (``content_digest``) of each of ``events`` (rows as
        ``load`` takes them) as this index is meant to store it: the
        ``document`` ``load`` sends."""
        return [content_digest(document(e if type(e) is Event else Event(*e[:ROW_FIELDS], environment), environment))
                for e in events]

    def _pages(self, environment: str, day: datetime.date, source: Any, page: int) -> Iterator[list[dict]]:
        """The hits (``_source``: ``source``) of every event of ``environment`` on ``day``, a page at a time."""
        self._check_environment(environment)
        body: dict = {"query": {"bool": {"filter": [{"term": {"environment": environment}}]}},
                      "sort": [{"time": "asc"}, {"id": "asc"}], "size": page, "track_total_hits": False}
        if source is not True:      # True: the whole _source (the default)
            body["_source"] = source
        index = f"{self.name}-{environment.lower()}-{day:%Y.%m.%d}"
        after = None
        while True:
            with self._translated("listing events"):
                hits = self.client.search(index=index, body=dict(body, **({"search_after": after} if after else {})),
                                          ignore_unavailable=True, allow_no_indices=True)["hits"]["hits"]
            if hits:
                yield hits
            if len(hits) < page:
                return
            after = hits[-1]["sort"]

    # ------------------------------------------------------------ days and environments

    def _index_names(self, pattern: str) -> list[str]:
        with self._translated("listing indices"):
            rows = self.client.cat.indices(index=pattern, format="json", h="index")
        return sorted(r["index"] for r in rows)

    def _days(self, environment: str) -> list[tuple[datetime.date, str]]:
        base = f"{self.name}-{environment.lower()}-"
        out = []
        for n in self._index_names(base + "*"):
            m = _DAY_SUFFIX.fullmatch(n[len(base):])
            if m:
                try:
                    out.append((datetime.date(int(m[1]), int(m[2]), int(m[3])), n))
                except ValueError:
                    continue
        return sorted(out)

    def days(self, environment: str) -> list[datetime.date]:
        self._check_environment(environment)
        return [d for d, _ in self._days(environment)]

    def _delete(self, names: list[str]) -> None:
        # Named one by one (in groups), never by wildcard: Elasticsearch
        # refuses wildcard deletes by default (action.destructive_requires_name).
        for i in range(0, len(names), 50):
            with self._translated("deleting indices"):
                self.client.indices.delete(index=",".join(names[i:i + 50]), ignore_unavailable=True)

    def drop_days(self, environment: str, before: datetime.date) -> list[datetime.date]:
        self._check_environment(environment)
        doomed = [(d, n) for d, n in self._days(environment) if d < before]
        self._delete([n for _, n in doomed])
        if doomed:
            log.info("Dropped %d day(s) of %s from %s index %s, up to %s.", len(doomed), environment, self.kind,
                     self.name, doomed[-1][0])
        return [d for d, _ in doomed]

    def environments(self) -> list[str]:
        body = {"size": 0, "aggs": {"envs": {"terms": {"field": "environment", "size": 10_000}}}}
        with self._translated("listing environments"):
            r = self.client.search(index=f"{self.name}-*", body=body, ignore_unavailable=True, allow_no_indices=True)
        return sorted(b["key"] for b in r.get("aggregations", {}).get("envs", {}).get("buckets", []))

    def drop(self) -> None:
        """Delete every daily index of this name, and its template."""
        names = [n for n in self._index_names(f"{self.name}-*") if _DAY_SUFFIX.fullmatch(n[-10:])]
        self._delete(names)
        with self._translated(f"deleting the index template {self.name}"):
            try:
                self.client.indices.delete_index_template(name=self.name)
            except self._errors_caught as exc:
                if _status(exc) != 404:
                    raise
        self._template_done = False

    def close(self) -> None:
        self.client.close()
