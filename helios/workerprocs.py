"""What the tailer's encoders and the relay's syslog framers share as worker
processes: a plain subprocess each (not multiprocessing's: its spawn would
import the parent's ``__main__`` again, and a fork of a process with a
ZeroMQ context is not safe), talking over a socket pair (``Pipe``), ended
by closing that pipe.

A ``Pipe`` carries length-prefixed messages, and raw bytes the other end
knows the size of (``send_raw``/``recv_exact``): a tailer's chunk goes as it
was read, no packing, no copy into a message, received straight into the
one bytes object the parser reads (``MSG_WAITALL``). That hand-off was
~0.25 us of each line's CPU through multiprocessing's ``Connection``
(packed, unpacked and copied by ``recv_bytes`` twice); its import is also a
sixth of a worker's start-up, and its ``poll`` builds a selector per call."""

from __future__ import annotations

import select
import socket
import struct
import subprocess
import sys
from typing import Any, Iterable

_LENGTH = struct.Struct("!Q")


class Pipe:
    """One end of a worker's socket pair. Errors are ``OSError``, and
    ``EOFError`` once the other end closed."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.poller = select.poll()
        self.poller.register(sock.fileno(), select.POLLIN)

    def send(self, message: bytes) -> None:
        if len(message) < 65536:
            self.sock.sendall(_LENGTH.pack(len(message)) + message)
        else:
            self.sock.sendall(_LENGTH.pack(len(message)))
            self.sock.sendall(message)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self) -> bytes:
        (n,) = _LENGTH.unpack(_recv_exact(self.sock, _LENGTH.size))
        return _recv_exact(self.sock, n)

    def ready(self) -> bool:
        """Is a message in (or the other end gone)? Never waits."""
        return bool(self.poller.poll(0))

    def close(self) -> None:
        self.sock.close()

    def recv_exact(self, n: int) -> bytes:
        return _recv_exact(self.sock, n)

    def fileno(self) -> int:
        return self.sock.fileno()

    @classmethod
    def of_fd(cls, fd: int) -> "Pipe":
        """A worker's end, from the descriptor its parent passed it."""
        return cls(socket.socket(fileno=fd))


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = sock.recv(n, socket.MSG_WAITALL) if n else b""
    while len(data) < n:    # a signal cut the wait short (rare): the rest, joined
        more = sock.recv(n - len(data), socket.MSG_WAITALL)
        if not more:
            raise EOFError("the other end closed the pipe")
        data += more
    return data


def start_worker(module: str, args: str) -> tuple[Pipe, subprocess.Popen]:
    """``python -m module FD args``: a worker process with its end of a
    socket pair as FD (``Pipe.of_fd``); this process's end."""
    mine, theirs = socket.socketpair()
    try:
        proc = subprocess.Popen([sys.executable, "-m", module, str(theirs.fileno()), args],
                                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL)
    except BaseException:
        mine.close()
        raise
    finally:
        theirs.close()
    return Pipe(mine), proc


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
