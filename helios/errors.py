"""The one exception tree of Helios.

Callers catch the base class; each leaf names one failure. Errors from
third-party libraries (msgpack, lz4, zmq, OS) are translated where they enter.

    HeliosError
    ├── ConfigError        a config file or flag is wrong; .problems lists every one
    ├── FrameError         a batch frame is truncated, garbled, too big or of an unknown version
    ├── RecordError        a bucket file record cannot be read or written
    ├── EventError         an event map (client library, HTTP ingest) has a wrong key; the message says which
    ├── ServiceError       a service cannot start (port in use, data dir unusable, ...)
    ├── FilterError        a live filter typed in a browser is invalid (bad regex, bad severity, ...)
    ├── QueryError         a bucket query failed: malformed, refused by the buck, or no answer in time
    ├── ArchiveError       an archive object cannot be packed, read or stored intact; names its key when known
    ├── SearchError        a search query (helios.index.query) is invalid: bad syntax, unknown filter, bad range
    ├── IndexStoreError    an index backend (sqlite, elasticsearch, opensearch) is unusable, unreachable or refused a write
    ├── HistoryError       a history request is refused (bad range, too long, unknown environment), unknown, or in the wrong state
    └── HeaderError        an HTTP request header cannot be read (an Authorization header that is not printable ASCII)
"""

from __future__ import annotations


class HeliosError(Exception):
    """Base of every error Helios raises on purpose."""


class ConfigError(HeliosError):
    """The configuration is wrong. ``problems`` holds every problem found, each
    as ``"key.path: what is wrong"``, so the user can fix them all at once."""

    def __init__(self, problems: list[str], source: str = "config") -> None:
        self.problems = list(problems)
        self.source = source
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s):\n{lines}")


class FrameError(HeliosError):
    """A batch frame cannot be trusted: truncated, garbled, checksum mismatch,
    unknown version, or over a size limit. The message says which."""


class RecordError(HeliosError):
    """A bucket file record cannot be written or read."""


class EventError(HeliosError):
    """An event map (``helios.eventmap``) cannot become an event: the message
    names the key and says what is wrong with it."""


class ServiceError(HeliosError):
    """A service cannot start or keep running (bad endpoint, data dir unusable)."""


class FilterError(HeliosError):
    """A live filter sent by a browser is invalid; the message says which
    field and why, and is shown to the user as it is."""


class QueryError(HeliosError):
    """A bucket query (``helios.query``) failed: the request or reply is
    malformed, the buck answered with an error (its reason is the message),
    or the buck did not answer within the timeout. ``endpoint`` names the
    buck when one is known."""

    def __init__(self, message: str, endpoint: str | None = None) -> None:
        self.endpoint = endpoint
        super().__init__(message)


class ArchiveError(HeliosError):
    """An archive object cannot be trusted or kept: an unknown format
    version, truncated or garbled bytes, a checksum that does not match what
    was stored, a write that did not read back intact, or a backend that
    failed. ``key`` names the object when there is one (also in the message)."""

    def __init__(self, message: str, key: str | None = None) -> None:
        self.key = key
        super().__init__(message)


class SearchError(HeliosError):
    """A search query (``helios.index.query``) is invalid: a query string
    that cannot be read, an unknown ``key:`` filter, a bad severity, or a
    time range that ends before it starts. The message is shown to the user
    as it is, and says how to write it instead."""


class IndexStoreError(HeliosError):
    """An index backend cannot do what was asked: its location is unusable,
    a database file is of an unknown format, the server cannot be reached,
    or it refused documents for a reason other than "already there". The
    message names the backend and its location."""


class HistoryError(HeliosError):
    """A history request (``helios.history``) cannot be taken or acted on:
    its range ends before it starts or is longer than ``[history]
    max_range``, its environment is unknown, no request has that id, or the
    request is not in a state that allows it (``status``: the HTTP status
    archie answers with: 400, 404 or 409). The message is shown as it is."""

    def __init__(self, message: str, status: int = 400) -> None:
        self.status = status
        super().__init__(message)


class HeaderError(HeliosError):
    """An HTTP request header cannot be read as what it must be (an
    ``Authorization`` header with bytes that are not printable ASCII): the
    server answers 400 with this message, never 500."""
