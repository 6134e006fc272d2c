"""The search page and its API: events of the recent index or of a history index.

    GET /search                 the page
    GET /api/search             env, start, end (ISO 8601 UTC unless an offset is given, relative like
                                -2h, now, or epoch seconds), q (the query string of helios.index.query),
                                history (a ready request's id: search its index instead), limit (1..1000),
                                order (asc, desc), after (the "next" of the page before), count (1: total)
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

from helios import __version__
from helios.errors import HistoryError, SearchError
from helios.index.query import Query, field_pairs, format_query, parse_query
from helios.model import severity_name
from helios.timespec import TimeSpecError, iso_ms, parse_time, parse_time_ns
from helios.web.indexes import error_handlers, indexes, json_error, may_see, visible

bp = Blueprint("search", __name__)
error_handlers(bp)

NS = 1_000_000_000
MAX_LIMIT = 1000


def _time(name: str, default_ns: int | None) -> int:
    text = request.args.get(name, "").strip()
    if not text:
        if default_ns is None:
            raise SearchError(f"give {name}")
        return default_ns
    try:
        return parse_time_ns(text)
    except TimeSpecError as exc:
        raise SearchError(f"{name}: {exc}") from None


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


@bp.get("/api/search")
def api_search():
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
        return json_error("give the environment (env)")
    if not may_see(environment):
        return json_error(f"this account may not see environment {environment!r}", 403)
    now = parse_time("now")
    start = _time("start", req.start if req else int((now - 3600) * NS))
    end = _time("end", req.end if req else int(now * NS))
    try:
        limit = min(MAX_LIMIT, max(1, int(request.args.get("limit", "100"))))
    except ValueError:
        raise SearchError("limit must be a number") from None
    q = parse_query(request.args.get("q", ""), environment=environment, start=start, end=end, limit=limit,
                    order=request.args.get("order", "asc"), after=_cursor(request.args.get("after", "")))
    hits = index.search(q)
    nxt = q.next_page(hits)
    out = {
        "environment": environment, "start_ns": start, "end_ns": end, "start": iso_ms(start), "end": iso_ms(end),
        "query": format_query(q), "order": q.order,
        "needles": {"terms": list(q.terms), "substrings": [s.decode("utf-8", "replace") for s in q.substrings],
                    "fields": [[k, list(v)] for k, v in q.fields]},
        "hits": [hit(e) for e in hits],
        "next": f"{nxt.after[0]}:{nxt.after[1].hex()}" if nxt is not None else None,
        "total": index.count(q) if request.args.get("count") == "1" else None,
        "source": ({"kind": "history", "id": req.id, "index": req.index_name, "expires": req.expires}
                   if req else {"kind": "recent", "index": ix.cfg.porter.index_name}),
    }
    if req is None:
        out["recent"] = _coverage(index, q)
    return jsonify(out)


@bp.get("/api/environments")
def api_environments():
    ix = indexes()
    names = set(ix.recent().environments())
    names |= {r.environment for r in ix.store.list(("queued", "building", "ready"))}
    return jsonify(environments=sorted(n for n in names if may_see(n)))
