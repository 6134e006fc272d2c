"""A line as the live tail handles it: decoded once, shaped for the page.

The feed turns each new event into a ``Line`` as soon as it has passed the
dedup, so the message is decoded from bytes once, not once per browser.
``row`` is what travels to the page (JSON): a short positional array, so a
batch of thousands of lines stays small and the page parses it natively.
"""

from __future__ import annotations

from typing import NamedTuple

from helios.model import Event


class Line(NamedTuple):
    time: int          # event time, ns since the epoch
    received: int      # when the tailer first read it, ns
    environment: str
    host: str
    app: str
    severity: int | None
    text: str          # the message, decoded (invalid bytes replaced), cut to max_line_chars
    id: bytes

    @classmethod
    def of(cls, event: Event, max_chars: int) -> "Line":
        text = event.message.decode("utf-8", "replace")
        if len(text) > max_chars:
            text = f"{text[:max_chars]} [... {len(text) - max_chars} more characters]"
        return cls(event.time, event.received, event.environment, event.host, event.app,
                   event.severity, text, event.id)

    def row(self) -> list:
        """[time in ms (float), environment, host, app, severity (-1: unknown), message]"""
        return [self.time / 1e6, self.environment, self.host, self.app,
                -1 if self.severity is None else self.severity, self.text]

