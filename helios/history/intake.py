"""Taking a history request: check it, then put it in the store.

Shared by ``helios history request`` and archie (``POST /api/history``), so
both refuse the same things with the same words: a range that ends before
it starts (or is empty), one longer than ``[history] max_range``, an
environment name that is not one, and an environment nobody has heard of
(not in the recent index, not in the archive, held by no buck). The range
is widened to whole seconds (start down, end up), so that ids stay short
and two clients asking for "the same" range in different precisions
share a build.
"""

from __future__ import annotations

import logging

from helios.errors import HeliosError, HistoryError
from helios.history import places
from helios.history.requests import Request, RequestStore
from helios.store.layout import valid_environment

__all__ = ["check_range", "known_environment", "submit"]

log = logging.getLogger(__name__)

NS = 1_000_000_000
KNOWN_TIMEOUT = 2.0     # seconds the bucks get to say which environments they hold


def _span(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.4g} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.4g} hours"
    return f"{seconds:.4g} s"


def check_range(environment: str, start_ns: int, end_ns: int, max_range: float) -> tuple[int, int]:
    """The range in whole seconds (ns), or HistoryError saying what is wrong."""
    if not valid_environment(environment):
        raise HistoryError(f"{environment!r} is not an environment name (a letter or digit, then letters, "
                           "digits, '_', '.' or '-'; at most 64)")
    start = start_ns // NS * NS
    end = -(-end_ns // NS) * NS
    if end_ns < start_ns:
        raise HistoryError("the range ends before it starts: give an end after the start")
    if end == start:
        raise HistoryError("the range is empty: give an end after the start")
    if (end - start) / NS > max_range:
        raise HistoryError(f"the range spans {_span((end - start) / NS)}, more than one request may "
                           f"([history] max_range is {_span(max_range)}): ask for a shorter one, or several")
    return start, end


def known_environment(cfg, environment: str, start: int, end: int) -> bool | None:
    """Does anything hold events of ``environment``? True, False, or None
    when a place that could have said could not be asked."""
    unsure = False
    try:
        index = places.recent_index(cfg)
        try:
            if environment in index.environments():
                return True
        finally:
            index.close()
    except HeliosError as exc:
        log.debug("The recent index could not say which environments it holds: %s.", exc)
        unsure = True
    try:
        archive = places.open_archive(cfg)
        if next(iter(archive.list(environment + "/")), None) is not None:
            return True
    except HeliosError as exc:
        log.debug("The archive could not say which environments it holds: %s.", exc)
        unsure = True
    from helios.errors import QueryError
    from helios.query.client import QueryClient

    with QueryClient(timeout=min(KNOWN_TIMEOUT, cfg.porter.timeout)) as qc:
        listings = qc.list_buckets(cfg.porter.bucks, environment)
    if any(not isinstance(r, QueryError) and r for r in listings.values()):
        return True
    if any(isinstance(r, QueryError) for r in listings.values()):
        unsure = True
    return None if unsure else False


def submit(cfg, store: RequestStore, environment: str, start_ns: int, end_ns: int,
           check_environment: bool = True) -> tuple[Request, bool]:
    """Check and take a request: (the request, True if a build was queued
    by this call; False when it shares one already queued, building or ready)."""
    start, end = check_range(environment, start_ns, end_ns, cfg.history.max_range)
    if check_environment:
        known = known_environment(cfg, environment, start, end)
        if known is False:
            raise HistoryError(f"unknown environment {environment!r}: the recent index, the archive and the "
                               "bucks hold no events of it")
    return store.submit(environment, start, end, cfg.porter.index, expiry=cfg.history.expiry)
