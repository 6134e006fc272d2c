"""One process per state directory.

Two tailers (or two relays) on one state directory would overwrite each
other's positions and spool, so each takes an exclusive ``flock`` on
``STATE_DIR/lock`` and keeps the file open. The lock goes with the process,
however it ends (kill -9 included), so a stale lock file never blocks a
restart; the file holds the pid of its last owner, for the operator.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from helios.errors import HeliosError
from helios.store import durable


def lock_dir(state: Path, service: str, flag: str = "--state-dir", what: str = "state directory") -> IO[str]:
    """Lock ``state`` for this process; keep the returned file open. Raises
    HeliosError naming ``service`` when another process holds it."""
    path = Path(state) / "lock"
    durable.precreate(path)  # 0640 whatever the umask
    f = open(path, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise HeliosError(f"another {service} is running with the {what} {state} "
                          f"(give each {service} its own {flag})") from None
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f
