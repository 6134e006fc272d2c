"""The search page and its API: events of the recent index or of a history index.

    GET /search                 the page
    GET /api/search             env, start, end (ISO 8601 UTC unless an offset is given, relative like
                                -2h, now, or epoch seconds), q (the query string of helios.index.query),
                                history (a ready request's id: search its index instead), limit (1..1000),
                                order (asc, desc), after (the "next" of the page before), count (1: total)
    GET /api/histogram          the same env, start, end, q, history: counts per time bucket (about
                                ``buckets`` of them, a round width) and severity
    GET /api/facets             the same: top values (with counts) of host, app, severity, environment and
                                of the extracted fields most events have (``n`` values each)
    GET /api/context            env (or history), t (ns) and id (hex) of an event: it and the events of its
                                source before and after it (``before``, ``after``: 0..500, default 10)
    GET /api/environments       environments the recent index and the history requests know

A reply holds the hits of one page (time order, ties by id), ``next`` (the
cursor of the following page, or null), the needles to highlight (terms:
whole words, ASCII case-insensitive; substrings: exact), and what the recent
index covers: when the range starts before its oldest day, the page offers
a history request for the range (archie). Accounts limited to some
environments (``helios.web.auth``) get 403 for the others.
"""

from __future__ import annotations

import datetime

from flask import Blueprint, jsonify, render_template, request
from werkzeug.exceptions import Forbidden

from helios import __version__
from helios.errors import HistoryError, SearchError
from helios.index.base import MAX_CONTEXT, histogram_step, top_values
from helios.index.query import Query, field_pairs, format_query, parse_query
from helios.model import severity_name
from helios.timespec import TimeSpecError, iso_ms, parse_time, parse_time_ns
from helios.web.indexes import error_handlers, indexes, may_see, visible

bp = Blueprint("search", __name__)
error_handlers(bp)

NS = 1_000_000_000
MAX_LIMIT = 1000
MAX_NS = 2**63              # times are ns in a signed 64-bit integer (sqlite, Elasticsearch long)


def _time(name: str, default_ns: int | None) -> int:
    text = request.args.get(name, "").strip()
    if not text:
        if default_ns is None:
            raise SearchError(f"give {name}")
        return default_ns
    try:
        value = parse_time_ns(text)
    except (TimeSpecError, OverflowError, ValueError) as exc:
        raise SearchError(f"{name}: {exc}") from None
    if not 0 <= value < MAX_NS:
        raise SearchError(f"{name}: {text[:40]!r} is out of range (from 1970 to 2262)")
    return value


def _cursor(text: str) -> tuple[int, bytes] | None:
    if not text:
        return None
    t, _, hexid = text.partition(":")
    try:
        return int(t), bytes.fromhex(hexid)
    except ValueError:
        raise SearchError(f"after={text!r} is not a cursor this page gave") from None


def hit(e) -> dict:
    return {"id": e.id.hex(), "time": iso_ms(e.time), "time_ns": e.time, "host": e.host, "app": e.app,
            "severity": severity_name(e.severity), "severity_code": e.severity, "source": e.source,
            "offset": e.offset, "message": e.message.decode("utf-8", "replace"),
            "fields": [[k, v] for k, v in field_pairs(e.fields)]}     # as key:value finds them


def _coverage(index, q: Query) -> dict:
    """What the recent index holds of the environment, and whether it covers the range's start."""
    days = index.days(q.environment)
    first = days[0] if days else None
    start_day = datetime.datetime.fromtimestamp(q.start / NS, datetime.timezone.utc).date()
    return {"first_day": first.isoformat() if first else None, "covers": first is not None and start_day >= first}


@bp.get("/search")
def page():
    return render_template("search.html", version=__version__)


def _target():
    """(index, history request or None, environment) the request names, rights checked."""
    ix = indexes()
    history_id = request.args.get("history", "").strip() or None
    req = None
    environment = request.args.get("env", "").strip()
    if history_id:
        visible(history_id)  # rights first: a request of another environment is "unknown", whatever its state
        index, req = ix.history(history_id)
        if environment and environment != req.environment:
            raise HistoryError(f"history request {req.id} is of environment {req.environment}, not {environment}")
        environment = req.environment
    else:
        index = ix.recent()
    if not environment:
        raise SearchError("give the environment (env)")
    if not may_see(environment):
        raise Forbidden(f"this account may not see environment {environment!r}")
    return index, req, environment


def _int(name: str, default: int, low: int, high: int) -> int:
    text = request.args.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise SearchError(f"{name} must be a whole number, not {text[:40]!r}") from None
    if not low <= value <= high:
        raise SearchError(f"{name} must be {low}..{high}, not {value}")
    return value


def _query(req, environment: str, limit: int | None = None, after=None) -> Query:
    now = parse_time("now")
    start = _time("start", req.start if req else int((now - 3600) * NS))
    end = _time("end", req.end if req else int(now * NS))
    if end < start:
        raise SearchError(f"the range ends ({iso_ms(end)}) before it starts ({iso_ms(start)}): swap from and to")
    return parse_query(request.args.get("q", ""), environment=environment, start=start, end=end, limit=limit,
                       order=request.args.get("order", "asc"), after=after)


def _described(q: Query) -> dict:
    return {"environment": q.environment, "start_ns": q.start, "end_ns": q.end, "start": iso_ms(q.start),
            "end": iso_ms(q.end), "query": format_query(q)}


@bp.get("/api/search")
def api_search():
    index, req, environment = _target()
    try:
        limit = min(MAX_LIMIT, max(1, int(request.args.get("limit", "100"))))
    except ValueError:
        raise SearchError("limit must be a number") from None
    q = _query(req, environment, limit, _cursor(request.args.get("after", "")))
    hits = index.search(q)
    nxt = q.next_page(hits)
    out = {
        **_described(q), "order": q.order,
        "needles": {"terms": list(q.terms), "substrings": [s.decode("utf-8", "replace") for s in q.substrings],
                    "fields": [[k, list(v)] for k, v in q.fields]},
        "hits": [hit(e) for e in hits],
        "next": f"{nxt.after[0]}:{nxt.after[1].hex()}" if nxt is not None else None,
        "total": index.count(q) if request.args.get("count") == "1" else None,
        "source": ({"kind": "history", "id": req.id, "index": req.index_name, "expires": req.expires}
                   if req else {"kind": "recent", "index": indexes().cfg.porter.index_name}),
    }
    if req is None:
        out["recent"] = _coverage(index, q)
    return jsonify(out)


@bp.get("/api/histogram")
def api_histogram():
    index, req, environment = _target()
    q = _query(req, environment)
    step = histogram_step(q.start, q.end, _int("buckets", 60, 1, 1000))
    buckets = index.histogram(q, step)
    return jsonify(**_described(q), step_ns=step,
                   buckets=[[t, {severity_name(s): c for s, c in counts.items()}] for t, counts in buckets])


@bp.get("/api/facets")
def api_facets():
    index, req, environment = _target()
    q = _query(req, environment)
    n = _int("n", 10, 1, 100)
    facets = index.tops(q, ("host", "app", "severity"), n)
    if req is None:
        seen = [e for e in index.environments() if may_see(e)]
        facets["environment"] = top_values(index, q, "environment", n, environments=seen)
    else:
        facets["environment"] = [[environment, index.count(q)]]
    keys = index.field_keys(q, _int("keys", 8, 0, 50)) if request.args.get("keys") != "0" else []
    fields = index.tops(q, [k for k, _ in keys], n) if keys else {}
    return jsonify(**_described(q), facets=facets, fields=fields, keys=keys)


@bp.get("/api/context")
def api_context():
    index, req, environment = _target()
    try:
        t = int(request.args.get("t", ""))
        event_id = bytes.fromhex(request.args.get("id", ""))
        if not 0 <= t < MAX_NS:
            raise ValueError(t)
    except ValueError:
        raise SearchError("give the event: t (its time in ns) and id (hex), as a hit gives them") from None
    before, after = _int("before", 10, 0, MAX_CONTEXT), _int("after", 10, 0, MAX_CONTEXT)
    older, event, newer = index.context(environment, t, event_id, before, after)
    if event is None:
        raise HistoryError(f"no event of {environment} has the id {event_id.hex()} at that time in this index",
                           status=404)
    return jsonify(environment=environment, source=event.source, event=hit(event),
                   before=[hit(e) for e in older], after=[hit(e) for e in newer])


@bp.get("/api/environments")
def api_environments():
    ix = indexes()
    names = set(ix.recent().environments())
    names |= {r.environment for r in ix.store.list(("queued", "building", "ready"))}
    return jsonify(environments=sorted(n for n in names if may_see(n)))
