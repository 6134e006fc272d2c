"""Free TCP ports on the loopback, for the demo and the tests.

The OS assigns the port; it is free when we look, and taken by whoever binds
it first afterwards (a window that the demo and tests accept)."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_endpoint(host: str = "127.0.0.1") -> str:
    return f"tcp://{host}:{free_port(host)}"


def free_run(count: int, host: str = "127.0.0.1", taken: set[int] = frozenset()) -> int:
    """A port P such that P .. P+count-1 are all free now and none is in
    ``taken``: for a buck whose "auto" endpoints are its ingest port + 1 and
    + 2. (The OS hands out ports in sequence, so two bucks given two free
    ports would often collide on each other's + 1 and + 2.)"""
    while True:
        socks = []
        try:
            first = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(first)
            first.bind((host, 0))
            port = first.getsockname()[1]
            if port + count - 1 > 65535 or taken & set(range(port, port + count)):
                continue
            for p in range(port + 1, port + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind((host, p))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
