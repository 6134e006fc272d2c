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
