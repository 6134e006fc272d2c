"""What the search page and archie share in the web process: the history
request store, the recent index and the history indexes, opened once and
kept (an index is thread-safe; the werkzeug server runs a thread per
request), and the JSON error replies of their APIs.

``install(app, cfg)`` registers both (``helios.web.search``,
``helios.web.archie``) on the web app; ``cfg`` is the whole configuration:
search reads the ``[porter]`` index settings, archie the ``[history]``
section, and to check a request's environment also the archive and the
bucks of ``[porter]``.
"""

from __future__ import annotations

import logging
import threading

from flask import Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from helios.errors import HeliosError, HistoryError
from helios.history import places
from helios.history.requests import Request

__all__ = ["Indexes", "install", "json_error", "visible"]

log = logging.getLogger(__name__)


class Indexes:
    def __init__(self, cfg) -> None:
        self.cfg = cfg
        self._lock = threading.Lock()
        self._store = None
        self._recent = None
        self._history: dict[str, object] = {}

    @property
    def store(self):
        with self._lock:
            if self._store is None:
                self._store = places.store(self.cfg)
            return self._store

    def recent(self):
        with self._lock:
            if self._recent is None:
                self._recent = places.recent_index(self.cfg)
            return self._recent

    def history(self, request_id: str) -> tuple[object, Request]:
        """The index of a ready request; HistoryError (404, 409) otherwise."""
        r = self.store.get(request_id)
        with self._lock:
            if r.state != "ready":
                old = self._history.pop(r.id, None)
                if old is not None:
                    old.close()
                why = f" ({r.reason})" if r.reason else ""
                raise HistoryError(f"history request {r.id} is {r.state}{why}: only a ready one can be searched",
                                   status=409)
            index = self._history.get(r.id)
            if index is None:
                index = self._history[r.id] = places.history_index(self.cfg, r)
            return index, r

    def close(self) -> None:
        with self._lock:
            for index in [self._recent, *self._history.values()]:
                if index is not None:
                    index.close()
            if self._store is not None:
                self._store.close()
            self._recent, self._history, self._store = None, {}, None


def json_error(message: str, status: int = 400):
    return jsonify(error=message), status


def account():
    """The logged-in account (``helios.web.auth``), or None when the app has no auth."""
    auth = current_app.extensions.get("helios_auth")
    return auth.current() if auth is not None else None


def may_see(environment: str) -> bool:
    a = account()
    return a is None or a.may_see(environment)


def visible(request_id: str) -> Request:
    """The history request ``request_id`` if this account may see its
    environment. One it may not see gets the very answer of an unknown id
    (404, same words), checked before anything else about it is said (its
    state, its environment), so nobody learns that it exists."""
    r = indexes().store.get(request_id)
    if not may_see(r.environment):
        raise HistoryError(f"no history request has the id {request_id!r} (`helios history list` lists them)",
                           status=404)
    return r


def install(app: Flask, cfg) -> Indexes:
    from helios.web import archie, search

    indexes = Indexes(cfg)
    app.extensions["helios_indexes"] = indexes
    app.register_blueprint(search.bp)
    app.register_blueprint(archie.bp)
    return indexes


def status_of(exc: HeliosError) -> int:
    from helios.errors import ArchiveError, IndexStoreError, QueryError, SearchError

    if isinstance(exc, HistoryError):
        return exc.status
    if isinstance(exc, SearchError):
        return 400
    if isinstance(exc, (IndexStoreError, ArchiveError, QueryError)):
        return 503
    return 500


def error_handlers(bp) -> None:
    """JSON error replies for a blueprint's API routes, with clear messages."""

    @bp.errorhandler(HeliosError)
    def helios_error(exc):
        return json_error(str(exc), status_of(exc))

    @bp.errorhandler(HTTPException)
    def http_error(exc):  # JSON for the APIs (CSRF and login refusals too); pages keep werkzeug's
        if request.path.startswith("/api/"):
            return json_error(exc.description or exc.name, exc.code or 500)
        return exc


def indexes() -> Indexes:
    return current_app.extensions["helios_indexes"]
