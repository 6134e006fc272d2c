"""What the tests share: wait by polling to a deadline, run real helios
processes, read what bucks stored."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from helios import codec
from helios.store import layout
from helios.store.records import RecordReader

ROOT = Path(__file__).resolve().parent.parent
LOGHUB = ROOT.parent / "shared" / "data" / "loghub"


def poll_until(check, timeout: float = 30.0, interval: float = 0.02, what: str = "condition"):
    """Call ``check`` until it returns something truthy; fail after ``timeout``.

    The deadline is no assertion about speed: it only ends a test whose
    condition never comes. Its default leaves room for a loaded 2-core CI
    machine starting Python processes under coverage (a helios process may
    take several seconds to start there); a check returns as soon as it holds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {value!r})")
        time.sleep(interval)


TRACEBACK = "Traceback (most recent call last)"

# A helios service binds this to a port the OS picks (ZeroMQ's "*"), and
# reports the port it got (a buck: its stats.json, ``bound_endpoints``), so no
# port is guessed free and then lost to another process.
ANY_PORT = "tcp://127.0.0.1:*"


class Proc:
    """A helios command running as its own process, its output in a file.

    Strict by default (``problems``, checked at teardown by the ``procs``
    fixture): every run must end with exit status 0, when it stopped by
    itself or on SIGTERM/SIGINT, must stop within its timeout, and must not
    log a traceback. A test that means otherwise says so: ``expect_exit(1)``
    (or ``expect_exit()`` for any status), ``expect_traceback()``; a run
    ended with SIGKILL (``stop(signal.SIGKILL)``) may end as it will."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.args = args
        self.log_path = log_path
        self.expected_exit: set[int] | None = {0}  # None: any status
        self.traceback_expected = False
        self.ends: list[tuple[int | None, int]] = []  # (signal sent or None, exit status) per run
        self.hung: list[str] = []
        self.start()

    def start(self) -> None:
        self.log = open(self.log_path, "ab")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.p = subprocess.Popen(self.command(), stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        self._ended = False

    def command(self) -> list[str]:
        """The command line this process runs (a subclass may wrap it)."""
        return [sys.executable, "-m", "helios", *self.args]

    def alive(self) -> bool:
        return self.p.poll() is None

    def expect_exit(self, *codes: int) -> "Proc":
        """This process is meant to end with one of ``codes`` (any, if none is given)."""
        self.expected_exit = set(codes) or None
        return self

    def expect_traceback(self) -> "Proc":
        """This process is meant to log a traceback (a failure provoked on purpose)."""
        self.traceback_expected = True
        return self

    def stop(self, sig=signal.SIGTERM, timeout: float = 15.0) -> int:
        """Send ``sig`` (if it still runs) and wait; its exit status. A
        process that does not stop within ``timeout`` is killed and the
        test fails."""
        if self._ended:
            return self.p.returncode
        sent = None
        if self.p.poll() is None:
            self.p.send_signal(sig)
            sent = sig
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
                self.hung.append(f"did not stop within {timeout} s of {signal.Signals(sig).name}")
                self._end(sent)
                raise AssertionError(f"{self.args[0]} did not stop within {timeout} s of {sig!r}:\n{self.output()}")
        self._end(sent)
        return self.p.returncode

    def _end(self, sent) -> None:
        self._ended = True
        self.log.close()
        self.ends.append((sent, self.p.returncode))

    def problems(self) -> list[str]:
        """What this process did that a test did not say it meant to (see the class)."""
        out = list(self.hung)
        for sent, code in self.ends:
            if sent == signal.SIGKILL or self.expected_exit is None or code in self.expected_exit:
                continue
            how = f"on {signal.Signals(sent).name}" if sent is not None else "by itself"
            if code < 0:
                out.append(f"was killed by {signal.Signals(-code).name} (ended {how})")
            else:
                out.append(f"exited with status {code} {how}, not {sorted(self.expected_exit)}")
        if not self.traceback_expected and TRACEBACK in self.output():
            out.append("logged a traceback")
        return out

    def finish(self, timeout: float = 15.0) -> None:
        """Stop it (SIGTERM) and fail if it did anything it should not (``problems``)."""
        try:
            self.stop(timeout=timeout)
        except AssertionError:
            pass
        problems = self.problems()
        if problems:
            raise AssertionError(f"helios {' '.join(self.args)}: {'; '.join(problems)}\n"
                                 f"--- its output:\n{self.output()[-5000:]}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


# Components `make` installs (Debian packages in the Makefile's APT_PACKAGES,
# Python packages of the [test] extra). A test that lacks one skips, unless
# HELIOS_REQUIRE says it must be there: "all" (set in .ci/run) means every
# one of these, and a comma-separated list names components (also ones make
# does not install, such as "elasticsearch" or "root").
INSTALLED_BY_MAKE = frozenset({
    "chromium", "playwright", "socketio", "nagios", "carbon", "systemd-analyze", "openssl", "moto_server",
    "osmem-server", "loghub", "logger", "rsyslog", "systemd-journal-remote", "speedups",
})


def required(component: str) -> bool:
    wanted = {w.strip() for w in os.environ.get("HELIOS_REQUIRE", "").split(",") if w.strip()}
    return component in wanted or ("all" in wanted and component in INSTALLED_BY_MAKE)


def require(component: str, why: str) -> None:
    """``component`` is missing (``why``): skip, or fail when it is required
    (``HELIOS_REQUIRE``). Every skip for a missing component goes through here."""
    import pytest

    if required(component):
        pytest.fail(f"{component} is required here (HELIOS_REQUIRE="
                    f"{os.environ.get('HELIOS_REQUIRE')}) but missing: {why}", pytrace=False)
    try:
        pytest.skip(why)
    except pytest.skip.Exception as exc:
        exc._use_item_location = True  # the summary names the test, not this helper (as a skip mark does)
        raise


def needs(component: str, missing: str | None):
    """A mark for a test or module: it needs ``component``; ``missing`` says
    why it is not there (None when it is). Applied by ``require`` at setup."""
    import pytest

    return pytest.mark.needs(component, missing)


class MotoServer:
    """A real ``moto_server`` process (S3 and the other AWS APIs, in memory)
    on 127.0.0.1: on a port the OS picks when first started, on the same one
    when started again (an archive that comes back). ``url`` once started."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "MotoServer":
        import re

        exe = Path(sys.executable).with_name("moto_server")
        if not exe.exists():
            require("moto_server", f"moto_server is not installed beside {sys.executable} (pip install 'moto[server]')")
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            # -p 0: the OS picks the port, and werkzeug prints the one it got.
            self.proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(self.port)], stdout=log,
                                         stderr=subprocess.STDOUT)

        def address():
            text = self.log_path.read_bytes()[offset:].decode(errors="replace")
            if self.proc.poll() is not None:
                raise AssertionError(f"moto_server exited with {self.proc.returncode}:\n{text}")
            m = re.search(r"Running on http://127\.0\.0\.1:(\d+)", text)
            return m and int(m.group(1))
        self.port = poll_until(address, timeout=60, interval=0.05, what="moto_server to listen")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def bound_endpoints(data_dir: Path, pid: int | None = None, timeout: float = 30.0) -> dict:
    """A buck's stats.json once it has bound its sockets (written by the
    process ``pid``, when given): its ingest, publish and query endpoints
    there are the ones the OS picked for a port ``*``."""
    import json

    def read():
        try:
            s = json.loads((Path(data_dir) / "stats.json").read_text())
        except (OSError, ValueError):
            return None
        return s if pid is None or s.get("pid") == pid else None
    return poll_until(read, timeout, what=f"{data_dir}/stats.json")


def buck_events(data_dir: Path, environment: str | None = None, inventory: bool = False):
    """Every event a buck stored, and whether every record was whole and valid.
    The tailers' inventory records (app "helios-inventory") only with ``inventory``."""
    events, clean = [], True
    for _, path in layout.list_buckets(Path(data_dir) / "buckets", environment):
        reader = RecordReader(path)
        for frame in reader:
            events.extend(e for e in codec.decode(frame)[1] if inventory or e.app != "helios-inventory")
        if reader.stats.skipped_bytes or reader.stats.corrupt_records:
            clean = False
    return events, clean


def bucks_events(data_dirs) -> list:
    """Every tailed event held by any of the bucks (each copy once per buck holding it)."""
    out = []
    for data in data_dirs:
        out.extend(buck_events(data)[0])
    return out


def buck_http(data_dir: Path, timeout: float = 30.0) -> str:
    """The base URL (http://HOST:PORT) of a buck's HTTP ingest, from its stats.json."""
    import json

    def address():
        try:
            return (json.loads((Path(data_dir) / "stats.json").read_text()).get("http") or {}).get("address")
        except (OSError, ValueError):
            return None
    return "http://" + poll_until(address, timeout, what=f"the HTTP address in {data_dir}/stats.json")


def buck_query(data_dir: Path, timeout: float = 30.0) -> str:
    """A buck's bucket query endpoint, from its stats.json."""
    import json

    def endpoint():
        try:
            return json.loads((Path(data_dir) / "stats.json").read_text()).get("query")
        except (OSError, ValueError):
            return None
    return poll_until(endpoint, timeout, what=f"the query endpoint in {data_dir}/stats.json")
