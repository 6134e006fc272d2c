"""Archie: history requests over HTTP, and the page that lists them.

    POST /api/history             {"environment", "start", "end"} (JSON or a form; times as the search
                                  API takes them) -> 201 {"id", "index", "state", "queued", "request"}
                                  (200 when the range was asked for before and shares its build)
    GET  /api/history/ID          -> the request: state, reason, progress (windows done / total, events
                                  loaded, bytes read / to read, fraction, eta_s), expiry
    GET  /api/history             -> {"requests": [...]}, newest first
    POST /api/history/ID/retry    a failed or expired request queued again
    GET  /archie                  the page: every request with a live progress bar

Errors are JSON ``{"error": "..."}`` with a sentence saying what is wrong:
400 for a bad range (end before start, longer than ``[history]
max_range``, a time that cannot be read) or an unknown environment, 404
for an unknown id, 409 for a retry of a request that did not fail, 403 for
an environment the account may not see. The builds themselves run in
``helios history serve``; archie only writes requests and reads them.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template, request

from helios import __version__
from helios.errors import HistoryError
from helios.history.intake import submit
from helios.timespec import TimeSpecError, parse_time_ns
from helios.web.indexes import error_handlers, indexes, json_error, may_see, visible

bp = Blueprint("archie", __name__)
error_handlers(bp)

NS = 1_000_000_000


def _field(data: dict, name: str) -> str:
    value = data.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise HistoryError(f"give {name}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise HistoryError(f"{name} must be a string, like 2026-11-20T10:00")
    return value.strip()


def _ns(data: dict, name: str) -> int:
    try:
        return parse_time_ns(_field(data, name))
    except TimeSpecError as exc:
        raise HistoryError(f"{name}: {exc}") from None


@bp.post("/api/history")
def create():
    data = request.get_json(silent=True) if request.is_json else request.form.to_dict()
    if not isinstance(data, dict):
        return json_error("send a JSON object: {\"environment\": ..., \"start\": ..., \"end\": ...}")
    environment = _field(data, "environment")
    if not may_see(environment):
        return json_error(f"this account may not see environment {environment!r}", 403)
    ix = indexes()
    r, queued = submit(ix.cfg, ix.store, environment, _ns(data, "start"), _ns(data, "end"))
    body = {"id": r.id, "index": r.index_name, "state": r.state, "queued": queued, "request": r.to_dict()}
    return jsonify(body), 201 if queued else 200


@bp.get("/api/history/<request_id>")
def status(request_id: str):
    return jsonify(visible(request_id).to_dict())


@bp.get("/api/history")
def listing():
    return jsonify(requests=[r.to_dict() for r in indexes().store.list() if may_see(r.environment)])


@bp.post("/api/history/<request_id>/retry")
def retry(request_id: str):
    visible(request_id)
    r = indexes().store.retry(request_id)
    return jsonify(id=r.id, index=r.index_name, state=r.state, request=r.to_dict())


@bp.get("/archie")
def page():
    return render_template("archie.html", version=__version__, max_range=indexes().cfg.history.max_range)
