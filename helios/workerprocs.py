"""What the tailer's encoders and the relay's syslog framers share as worker
processes: they are ended by closing their pipe."""

from __future__ import annotations

import subprocess
from typing import Any, Iterable


def close_workers(conns: Iterable[Any], procs: Iterable[subprocess.Popen]) -> None:
    """Close every pipe (a worker ends when its pipe does), then wait for each
    worker; one that has not ended within 2 s is killed."""
    for conn in conns:
        conn.close()
    for p in procs:
        try:
            p.wait(timeout=2)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
