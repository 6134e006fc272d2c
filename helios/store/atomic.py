"""Replace a small file so that a crash at any line leaves the old or the new
content, never a mix: write a temporary file beside it, fsync, rename over,
then fsync the directory so the rename itself survives a power loss."""

from __future__ import annotations

import os
from pathlib import Path

from helios.store import durable as _durable  # the parameter is named durable


def write_atomic(path: str | Path, data: bytes, *, durable: bool = True) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _durable.FILE_MODE)
    try:
        _durable.created(fd)  # 0640 whatever the umask
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if durable:
            _durable.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if durable:
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            _durable.fsync(dfd)
        finally:
            os.close(dfd)
