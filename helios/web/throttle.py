"""Limits on password guessing, and the logins that ended: what the web app
remembers between requests about who logged in and out.

``Throttle``: failed logins are counted per key (the web app uses two keys a
try: the user name, and the client's address). After ``free`` failures in a
row, the key must wait ``backoff`` seconds after its last failure before the
next try, doubled at each further failure up to ``max_backoff``; a success
forgets the key. A try that comes too early is answered without checking
anything (429 with Retry-After), so guessing costs the attacker time, not
the server argon2 work. At most ``max_keys`` keys are remembered (the
oldest are forgotten first), so a flood of made-up names cannot take the
memory.

``Logouts``: the session cookie is signed, not stored, so a copy of it taken
before a logout would stay valid until it expires. Each login has a random
id in its session; logging out records that id until the session could
have expired (``max_age`` after the logout, the longest a cookie signed
before it lives), and a session whose id is recorded is nobody's. With a
file (next to the session key file, since sessions outlive restarts only
with one), the record survives restarts too.

Both are pure bookkeeping with an injectable clock, and thread-safe.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


class Throttle:
    def __init__(self, free: int, backoff: float, max_backoff: float, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.free, self.backoff, self.max_backoff, self.max_keys = free, backoff, max_backoff, max_keys
        self.clock = clock
        self._lock = threading.Lock()
        self._keys: OrderedDict[object, tuple[int, float]] = OrderedDict()  # key -> (failures, last failure)

    def wait(self, *keys: object) -> float:
        """Seconds until a try for every one of ``keys`` is allowed (0: now)."""
        now = self.clock()
        longest = 0.0
        with self._lock:
            for key in keys:
                failures, last = self._keys.get(key, (0, 0.0))
                if failures >= self.free:
                    delay = min(self.max_backoff, self.backoff * 2 ** (failures - self.free))
                    longest = max(longest, last + delay - now)
        return max(0.0, longest)

    def failed(self, *keys: object) -> None:
        now = self.clock()
        with self._lock:
            for key in keys:
                failures, _ = self._keys.pop(key, (0, 0.0))
                self._keys[key] = (min(failures + 1, 64), now)
            while len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)

    def succeeded(self, *keys: object) -> None:
        with self._lock:
            for key in keys:
                self._keys.pop(key, None)


class Logouts:
    def __init__(self, max_age: float, path: str | os.PathLike | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.max_age, self.clock = max_age, clock
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self._ended: dict[str, float] = {}  # login id -> when it can be forgotten (epoch s)
        if self.path is not None:
            self._load()

    def end(self, login_id: str) -> None:
        until = self.clock() + self.max_age
        with self._lock:
            self._ended[login_id] = until
            self._prune()
            if self.path is not None:
                try:
                    fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                    with os.fdopen(fd, "a") as f:
                        f.write(f"{until:.0f} {login_id}\n")
                except OSError as exc:
                    log.warning("Could not record a logout in %s (the session ends until the web app "
                                "restarts): %s", self.path, exc)

    def ended(self, login_id: str | None) -> bool:
        if not login_id:
            return False
        with self._lock:
            until = self._ended.get(login_id)
        return until is not None and until > self.clock()

    def _prune(self) -> None:
        now = self.clock()
        if len(self._ended) % 1024 == 0:
            self._ended = {k: v for k, v in self._ended.items() if v > now}

    def _load(self) -> None:
        """Read the record, keep what has not expired, and write that back."""
        now = self.clock()
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("Could not read the record of logouts %s: %s", self.path, exc)
            return
        for line in text.splitlines():
            until, _, login_id = line.partition(" ")
            try:
                if float(until) > now and login_id:
                    self._ended[login_id] = float(until)
            except ValueError:
                continue
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.writelines(f"{u:.0f} {i}\n" for i, u in self._ended.items())
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("Could not rewrite the record of logouts %s: %s", self.path, exc)
