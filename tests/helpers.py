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


def poll_until(check, timeout: float = 10.0, interval: float = 0.02, what: str = "condition"):
    """Call ``check`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {value!r})")
        time.sleep(interval)


class Proc:
    """A helios command running as its own process, its output in a file."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.args = args
        self.log_path = log_path
        self.start()

    def start(self) -> None:
        self.log = open(self.log_path, "ab")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.p = subprocess.Popen([sys.executable, "-m", "helios", *self.args], stdout=self.log,
                                  stderr=subprocess.STDOUT, env=env, cwd=ROOT)

    def alive(self) -> bool:
        return self.p.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
                raise AssertionError(f"{self.args[0]} did not stop within {timeout} s of {sig!r}:\n{self.output()}")
        self.log.close()
        return self.p.returncode

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


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


def buck_http(data_dir: Path, timeout: float = 10.0) -> str:
    """The base URL (http://HOST:PORT) of a buck's HTTP ingest, from its stats.json."""
    import json

    def address():
        try:
            return (json.loads((Path(data_dir) / "stats.json").read_text()).get("http") or {}).get("address")
        except (OSError, ValueError):
            return None
    return "http://" + poll_until(address, timeout, what=f"the HTTP address in {data_dir}/stats.json")


def buck_query(data_dir: Path, timeout: float = 10.0) -> str:
    """A buck's bucket query endpoint, from its stats.json."""
    import json

    def endpoint():
        try:
            return json.loads((Path(data_dir) / "stats.json").read_text()).get("query")
        except (OSError, ValueError):
            return None
    return poll_until(endpoint, timeout, what=f"the query endpoint in {data_dir}/stats.json")
