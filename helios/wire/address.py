"""A buck's one address, and the three endpoints that follow from it.

An operator names a buck once, as ``HOST[:PORT]`` (or ``tcp://HOST:PORT``):
the port is its ingest port, and a buck whose [buck] publish and query are
"auto" (the default) binds its live feed on that port + 1 and its bucket
query endpoint on + 2 (``helios.buck.service.auto_publish``). So every
command that talks to a buck derives what it needs from the address here;
a buck configured with unrelated ports is reached with explicit
``--ingest``/``--feed``/``--query`` endpoints instead.

Pure: text in, endpoints or ``AddressError`` out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The default ingest port of a buck ([buck] ingest = tcp://127.0.0.1:7301).
DEFAULT_PORT = 7301
# The roles, and how far each one's port is from the ingest port.
OFFSETS = {"ingest": 0, "feed": 1, "query": 2}

_HOST = r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)"
_ADDRESS = re.compile(rf"(?:tcp://)?{_HOST}(?::(?P<port>\d{{1,5}}))?")


class AddressError(ValueError):
    """Not a buck address; the message says what one looks like."""


@dataclass(frozen=True)
class BuckAddress:
    host: str   # a name, an IPv4 address, or an IPv6 one in brackets
    port: int   # the ingest port

    def endpoint(self, role: str) -> str:
        """The ZeroMQ endpoint of ``role`` (ingest, feed or query)."""
        return f"tcp://{self.host}:{self.port + OFFSETS[role]}"

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse(text: str) -> BuckAddress:
    """``HOST``, ``HOST:PORT``, ``tcp://HOST:PORT`` or ``[IPV6]:PORT``."""
    text = text.strip()
    if text.startswith(("ipc://", "inproc://")):
        raise AddressError(f"{text!r} has no ports to derive the live feed and query endpoints from; "
                           "give the buck's endpoints with --ingest, --feed and --query instead")
    m = _ADDRESS.fullmatch(text)
    if not m or "*" in text:
        raise AddressError(f"{text!r} is not a buck address: HOST[:PORT] (the buck's ingest port, "
                           f"default {DEFAULT_PORT}), like buck-a:7301, 10.0.0.5, [::1]:7301")
    if text.startswith("tcp://") and m["port"] is None:
        raise AddressError(f"{text!r}: a tcp:// address names its port (tcp://HOST:PORT)")
    port = DEFAULT_PORT if m["port"] is None else int(m["port"])
    if not 1 <= port <= 65535 - max(OFFSETS.values()):
        raise AddressError(f"{text!r}: the port must be 1..{65535 - max(OFFSETS.values())} "
                           "(the live feed and query endpoints take the two above it)")
    return BuckAddress(m["host"], port)


def endpoints(addresses: tuple[str, ...] | list[str], role: str) -> tuple[str, ...]:
    """The ``role`` endpoint of every address, in order; AddressError on the first bad one."""
    if role not in OFFSETS:
        raise ValueError(f"unknown role {role!r} (known: {', '.join(OFFSETS)})")
    return tuple(parse(a).endpoint(role) for a in addresses)


def check(text: str) -> str | None:
    """A config check: None when ``text`` is a buck address, else what is wrong."""
    try:
        parse(text)
    except AddressError as exc:
        return str(exc)
    return None
