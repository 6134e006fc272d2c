"""The one exception tree of Helios.

Callers catch the base class; each leaf names one failure. Errors from
third-party libraries (msgpack, lz4, zmq, OS) are translated where they enter.

    HeliosError
    ├── ConfigError        a config file or flag is wrong; .problems lists every one
    ├── FrameError         a batch frame is truncated, garbled, too big or of an unknown version
    ├── RecordError        a bucket file record cannot be read or written
    ├── EventError         an event map (client library, HTTP ingest) has a wrong key; the message says which
    ├── ServiceError       a service cannot start (port in use, data dir unusable, ...)
    └── FilterError        a live filter typed in a browser is invalid (bad regex, bad severity, ...)
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
