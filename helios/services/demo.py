"""``helios demo``: the whole mesh on one machine, on embedded defaults.

Composition only: it writes one config file (DIR/helios.toml) that every
process and every printed command reads, starts two bucks, a tailer, the
porter, a history server and the web (live tail, search, archie) as separate
processes (``python -m helios ...``, as an operator would), a generator thread
that writes realistic lines to a file, and reads the stats files once a
second to show what arrived. Nothing here imports another service, and
nothing is written outside DIR.

Counts are told apart: the generator's lines, the tailer's events, the
copies the bucks store (each batch goes live to two bucks, and each closed
spool window is re-sent once more: about three copies per event) and the
distinct events the porter indexed (searchable).
"""

from __future__ import annotations

import json
import random
import shlex
import sqlite3
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from helios import loadgen
from helios.errors import HeliosError, ServiceError
from helios.wire.ports import free_endpoint, free_port

WINDOW = 10  # seconds: the bucks' and the spool's windows, so events are searchable within ~half a minute
WEB_WAIT = 60.0  # seconds the web page has to answer before the demo gives up


def helios_command() -> tuple[str, str | None]:
    """How a user runs ``helios`` from their shell: ("helios", None) when the
    ``helios`` on PATH is this one, else the full path of this venv's
    ``helios`` and the activate line that puts it on PATH (or None)."""
    bindir = Path(sys.executable).parent
    mine = bindir / "helios"
    found = shutil.which("helios")
    if found and mine.exists() and Path(found).resolve() == mine.resolve():
        return "helios", None
    if mine.exists():
        activate = bindir / "activate"
        return str(mine), (f". {activate}" if activate.exists() else None)
    return f"{sys.executable} -m helios", None


def toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a TOML basic string


def toml_list(values: list[str]) -> str:
    return "[" + ", ".join(toml_str(v) for v in values) + "]"


def has_journal() -> bool:
    """Does this machine have a systemd journal with an entry this user can read?"""
    try:
        out = subprocess.run(["journalctl", "-q", "-n", "1", "-o", "cat"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and bool(out.stdout)


class Demo:
    def __init__(self, logs: list[str], rate: int = 200, workdir: str | None = None,
                 environment: str = "demo", out=None, web: bool = True, window: int = WINDOW,
                 index_open_windows: bool = True, journal: bool | None = None) -> None:
        self.logs = logs
        self.journal = has_journal() if journal is None else journal
        self.window = window
        self.index_open_windows = index_open_windows
        self.rate = rate
        self.environment = environment
        self.web = web
        self.dir = Path(workdir).absolute() if workdir else Path(tempfile.mkdtemp(prefix="helios-demo-"))
        self.out = out or sys.stdout
        self.stopping = threading.Event()
        self.procs: dict[str, subprocess.Popen] = {}
        self.generated = 0

    def stop(self) -> None:
        self.stopping.set()

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def start(self, name: str, args: list[str]) -> None:
        (self.dir / "logs").mkdir(parents=True, exist_ok=True)
        log = open(self.dir / "logs" / f"{name}.log", "ab")
        # cwd: a relative default path of any service lands in DIR, never in the caller's folder.
        self.procs[name] = subprocess.Popen([sys.executable, "-m", "helios", *args], stdout=log, stderr=log,
                                            cwd=self.dir)

    def generate(self, path: Path) -> None:
        rng = random.Random()
        with open(path, "a", encoding="ascii") as out:
            next_t = time.monotonic()
            while not self.stopping.is_set():
                now = time.time()
                lines = max(1, self.rate // 20)
                out.write("".join(loadgen.demo_line(rng, now) for _ in range(lines)))
                out.flush()
                self.generated += lines
                next_t += lines / self.rate
                self.stopping.wait(max(0.0, next_t - time.monotonic()))

    def read_json(self, path: Path) -> dict:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return {}

    def counts(self) -> dict:
        """What each part holds now: tailer events read and sent, stored
        copies per buck, distinct events the porter indexed."""
        c: dict = {"bucks": {}}
        for name in ("buck-a", "buck-b"):
            c["bucks"][name] = self.read_json(self.dir / name / "stats.json").get("events")
        t = self.read_json(self.dir / "tailer" / "stats.json")
        c["read"], c["sent"] = t.get("lines"), t.get("events_sent")
        c["indexed"] = self.searchable()
        return c

    def searchable(self) -> int | None:
        """Distinct events in the recent index (the porter keeps each once;
        the index holds no inventory record); None before the first load."""
        from helios.index.base import open_index
        from helios.index.query import parse_query

        if not (self.dir / "index" / "helios-recent").exists():
            return None
        try:
            index = open_index("sqlite", str(self.dir / "index"), "helios-recent")
            try:
                every = parse_query("", environment=self.environment, start=0, end=2 ** 63 - 1, limit=None)
                return index.count(every)
            finally:
                index.close()
        except (HeliosError, OSError, sqlite3.Error):  # busy or not there yet: a guide, shown next second
            return None

    @staticmethod
    def n(value) -> str:
        return "-" if value is None else f"{value:,}"

    def count_line(self, c: dict) -> str:
        gen = f"generated {self.generated:,} lines   " if not self.logs else ""
        held = [v for v in c["bucks"].values() if v is not None]
        per = f", {sum(held) / c['read']:.1f} per event read" if held and c["read"] else ""
        copies = f"{sum(held):,} (" + ", ".join(f"{n} {self.n(v)}" for n, v in c["bucks"].items()) + per + ")"
        return (f"{gen}tailer read {self.n(c['read'])} events   stored copies {copies}   "
                f"searchable {self.n(c['indexed'])} distinct events")

    def write_config(self, ingests: dict[str, str], pubs: dict[str, str], queries: dict[str, str],
                     paths: list[str], web_port: int) -> Path:
        d = self.dir
        text = f"""# Written by `helios demo`: every process of the demo and every command it
# prints reads this file (-c {d / 'helios.toml'}).

[tailer]
environment = {toml_str(self.environment)}
paths = {toml_list(paths)}
bucks = {toml_list(list(ingests.values()))}
state_dir = {toml_str(str(d / 'tailer'))}
start_at = {toml_str('end' if self.logs else 'beginning')}
timezone = "UTC"
spool_window = {self.window}
resend_jitter = 2.0
journal = {'true' if self.journal else 'false'}
journal_start_at = "end"

[web]
bucks_pub = {toml_list(list(pubs.values()))}
listen = "127.0.0.1:{web_port}"

[subscribe]
bucks = {toml_list(list(pubs.values()))}

[query]
bucks = {toml_list(list(queries.values()))}

[porter]
bucks = {toml_list(list(queries.values()))}
state_dir = {toml_str(str(d / 'porter'))}
index_dir = {toml_str(str(d / 'index'))}
archive_dir = {toml_str(str(d / 'archive'))}
grace = 1.0
poll_interval = 1.0
workers = 0
index_open_windows = {'true' if self.index_open_windows else 'false'}

[history]
dir = {toml_str(str(d / 'history'))}
"""
        path = d / "helios.toml"
        path.write_text(text)
        return path

    def wait_for_web(self, url: str) -> bool:
        """Poll the page until it answers (True), the web process exits or
        the demo is stopped (False)."""
        deadline = time.monotonic() + WEB_WAIT
        while time.monotonic() < deadline and not self.stopping.is_set():
            if self.procs["web"].poll() is not None:
                return False
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            self.stopping.wait(0.2)
        return False

    def run(self, duration: float | None = None) -> int:
        self.dir.mkdir(parents=True, exist_ok=True)
        ingests = {"buck-a": free_endpoint(), "buck-b": free_endpoint()}
        pubs = {name: free_endpoint() for name in ingests}
        self.queries = {name: free_endpoint() for name in ingests}  # each buck's bucket query endpoint
        gen_file = self.dir / "generated.log"
        paths = [str(Path(p).absolute()) for p in self.logs] or [str(gen_file)]
        web_port = free_port()
        config = self.write_config(ingests, pubs, self.queries, paths, web_port)
        c = ["-c", str(config)]
        for name, ep in ingests.items():
            self.start(name, ["buck", "--name", name, "--ingest", ep, "--data-dir", str(self.dir / name),
                              "--feed", pubs[name], "--query", self.queries[name], "--window", str(self.window)])
        if not self.logs:
            gen_file.touch()
        self.start("tailer", ["tailer", *c])
        self.start("porter", ["porter", *c, "run"])
        self.start("history", ["history", "serve", *c])
        web_url = f"http://127.0.0.1:{web_port}/"
        if self.web:
            self.start("web", ["web", *c])
        gen = None
        if not self.logs:
            gen = threading.Thread(target=self.generate, args=(gen_file,), daemon=True)
            gen.start()

        helios, activate = helios_command()
        q = shlex.quote
        cfg = q(str(config))
        env = q(self.environment)
        self.say(f"Helios demo in {self.dir}  (Ctrl-C stops everything; the folder is kept)")
        for name, ep in ingests.items():
            self.say(f"  {name:<9} pid {self.procs[name].pid:<7} ingest {ep}   live feed {pubs[name]}   "
                     f"queries {self.queries[name]}")
            self.say(f"            buckets in {self.dir / name / 'buckets' / self.environment}")
        self.say(f"  tailer    pid {self.procs['tailer'].pid:<7} follows {', '.join(paths)}"
                 + (" and this machine's journal (new entries)" if self.journal else ""))
        what = (f"indexes what the bucks append to open windows, then each {self.window} s window once closed,"
                if self.index_open_windows else f"indexes each {self.window} s window once closed")
        self.say(f"  porter    pid {self.procs['porter'].pid:<7} {what} into {self.dir / 'index'}")
        self.say(f"  history   pid {self.procs['history'].pid:<7} builds history indexes in {self.dir / 'history'}")
        if gen:
            self.say(f"  generator (thread) writes {self.rate} lines/s to {gen_file}")
        self.say(f"  config    {config} (the tailer, porter, history server, web and every command below read it)")
        self.say(f"  service logs in {self.dir / 'logs'}")
        self.say()
        if activate:
            self.say(f"`helios` is not on your PATH: run `{activate}` first, or use the full path as below.")
        self.say("Try, in another terminal:")
        self.say(f"  live events:   {helios} subscribe -c {cfg} -s warning")
        self.say(f"  search:        {helios} search -c {cfg} --env {env} --start -15m declined")
        self.say(f"  mesh status:   {helios} status -c {cfg}")
        self.say(f"  buckets:       {helios} buckets ls -c {cfg}")
        self.say(f"  audit:         {helios} audit -c {cfg}")
        self.say(f"  index audit:   {helios} audit -c {cfg} --index")
        self.say(f"  history index: {helios} history request -c {cfg} --env {env} --start -10m")
        self.say(f"  porter:        {helios} porter status -c {cfg}")
        if self.index_open_windows:
            self.say("Events are searchable a second or two after they are written (the porter indexes the windows "
                     "the bucks still hold open, then the rest of each window once closed, each event once).")
        else:
            self.say(f"Events are searchable once their {self.window} s window closed on both bucks (a buck holds "
                     f"it open two windows more) and the porter indexed it: {2 * self.window}.."
                     f"{3 * self.window + 3} s after they are written.")
        self.say()

        started = time.monotonic()
        code = 0
        if self.web:
            if self.wait_for_web(web_url):
                self.say(f"  web       pid {self.procs['web'].pid:<7} live tail {web_url}   search {web_url}search"
                         f"   archie {web_url}archie   (open them in a browser)")
            elif not self.stopping.is_set():
                self.say(f"The web page did not answer at {web_url}; see {self.dir / 'logs' / 'web.log'}")
        try:
            while not self.stopping.wait(1.0):
                dead = [n for n, p in self.procs.items() if p.poll() is not None]
                if dead:
                    for n in dead:
                        self.say(f"{n} exited with code {self.procs[n].returncode}; see {self.dir / 'logs' / (n + '.log')}")
                    code = 1
                    break
                elapsed = time.monotonic() - started
                self.say(f"[{elapsed:5.0f}s] " + self.count_line(self.counts()))
                if duration is not None and elapsed >= duration:
                    break
        finally:
            self.stopping.set()
            if gen:
                gen.join(timeout=2)
            self.shutdown()
        final = self.counts()
        self.say("Stopped. Final counts: " + self.count_line(final))
        self.say("  Each batch goes live to both bucks and each closed spool window is re-sent once to one of "
                 "them, so the bucks store about 3 copies of each event; the porter indexes each event once.")
        self.say(f"Everything the demo wrote is under {self.dir}")
        return code

    def shutdown(self) -> None:
        # The tailer first, so its last batches reach bucks that still listen;
        # the bucks last, so the porter and history server finish their work.
        first = [n for n in ("tailer", "web", "history", "porter") if n in self.procs]
        order = first + [n for n in self.procs if n not in first]
        for name in order:
            p = self.procs.get(name)
            if p is None or p.poll() is not None:
                continue
            p.terminate()
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                raise ServiceError(f"{name} did not stop within 15 s of SIGTERM and was killed")

