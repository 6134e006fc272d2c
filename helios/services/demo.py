"""``helios demo``: the whole mesh on one machine, on embedded defaults.

Composition only: it starts two bucks, a tailer and the web live tail as separate processes
(``python -m helios ...``, as an operator would), a generator thread that
writes realistic lines to a file, and reads each buck's stats file once a
second to show what arrived. Nothing here imports another service.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from helios import loadgen
from helios.errors import ServiceError
from helios.wire.ports import free_endpoint, free_port


def has_journal() -> bool:
    """Does this machine have a systemd journal with an entry this user can read?"""
    try:
        out = subprocess.run(["journalctl", "-q", "-n", "1", "-o", "cat"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and bool(out.stdout)


class Demo:
    def __init__(self, logs: list[str], rate: int = 200, workdir: str | None = None,
                 environment: str = "demo", out=None, web: bool = True, journal: bool | None = None) -> None:
        self.logs = logs
        self.journal = has_journal() if journal is None else journal
        self.rate = rate
        self.environment = environment
        self.web = web
        self.dir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="helios-demo-"))
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
        self.procs[name] = subprocess.Popen([sys.executable, "-m", "helios", *args], stdout=log, stderr=log)

    def generate(self, path: Path) -> None:
        rng = random.Random()
        with open(path, "a", encoding="ascii") as out:
            next_t = time.monotonic()
            while not self.stopping.is_set():
                now = time.time()
                lines = max(1, self.rate // 20)
                out.write("".join(loadgen.rfc3164_line(rng, now) for _ in range(lines)))
                out.flush()
                self.generated += lines
                next_t += lines / self.rate
                self.stopping.wait(max(0.0, next_t - time.monotonic()))

    def buck_counts(self) -> dict[str, str]:
        counts = {}
        for name in ("buck-a", "buck-b"):
            try:
                stats = json.loads((self.dir / name / "stats.json").read_text())
                counts[name] = f"{stats['events']:,}"
            except (OSError, ValueError, KeyError):
                counts[name] = "starting"
        return counts

    def run(self, duration: float | None = None) -> int:
        self.dir.mkdir(parents=True, exist_ok=True)
        endpoints = {"buck-a": free_endpoint(), "buck-b": free_endpoint()}
        pubs: dict[str, str] = {}
        self.queries: dict[str, str] = {}  # each buck's bucket query endpoint
        for name, ep in endpoints.items():
            pubs[name] = free_endpoint()
            self.queries[name] = free_endpoint()
            self.start(name, ["buck", "--name", name, "--ingest", ep, "--data-dir", str(self.dir / name),
                              "--publish", pubs[name], "--query", self.queries[name]])
        gen_file = self.dir / "generated.log"
        paths = self.logs or [str(gen_file)]
        if not self.logs:
            gen_file.touch()
        tail_args = ["tailer", "--env", self.environment, "--start-at", "end" if self.logs else "beginning",
                     "--state-dir", str(self.dir / "tailer")]
        for p in paths:
            tail_args += ["--path", p]
        if self.journal:
            tail_args += ["--journal", "--journal-start-at", "end"]
        for ep in endpoints.values():
            tail_args += ["--buck", ep]
        self.start("tailer", tail_args)
        web_url = None
        if self.web:
            port = free_port()
            web_url = f"http://127.0.0.1:{port}/"
            self.start("web", ["web", "--listen", f"127.0.0.1:{port}", *[x for p in pubs.values() for x in ("--feed", p)]])
        gen = None
        if not self.logs:
            gen = threading.Thread(target=self.generate, args=(gen_file,), daemon=True)
            gen.start()

        self.say(f"Helios demo in {self.dir}  (Ctrl-C stops everything)")
        for name, ep in endpoints.items():
            self.say(f"  {name:<9} pid {self.procs[name].pid:<7} ingest {ep}   buckets {self.dir / name / 'buckets' / self.environment}")
        self.say(f"  tailer    pid {self.procs['tailer'].pid:<7} follows {', '.join(paths)}"
                 + (" and this machine's journal (new entries)" if self.journal else ""))
        if web_url:
            self.say(f"  web       pid {self.procs['web'].pid:<7} live tail at {web_url}  (open it in a browser)")
        if gen:
            self.say(f"  generator (thread) writes {self.rate} lines/s to {gen_file}")
        self.say(f"  service logs in {self.dir / 'logs'}")
        self.say("  buckets:  helios buckets ls " + " ".join(f"--query {q}" for q in self.queries.values()))
        self.say()

        started = time.monotonic()
        code = 0
        try:
            while not self.stopping.wait(1.0):
                dead = [n for n, p in self.procs.items() if p.poll() is not None]
                if dead:
                    for n in dead:
                        self.say(f"{n} exited with code {self.procs[n].returncode}; see {self.dir / 'logs' / (n + '.log')}")
                    code = 1
                    break
                counts = self.buck_counts()
                gen_part = f"   generated {self.generated:,}" if gen else ""
                elapsed = time.monotonic() - started
                self.say(f"[{elapsed:5.0f}s] events received: " + "   ".join(f"{n} {c}" for n, c in counts.items()) + gen_part)
                if duration is not None and elapsed >= duration:
                    break
        finally:
            self.stopping.set()
            if gen:
                gen.join(timeout=2)
            self.shutdown()
        counts = self.buck_counts()
        self.say("Stopped. Final counts: " + "   ".join(f"{n} {c}" for n, c in counts.items()))
        self.say(f"Bucket files are under {self.dir}/buck-*/buckets/")
        return code

    def shutdown(self) -> None:
        # The tailer first, so its last batches reach bucks that still listen.
        order = ["tailer"] + [n for n in self.procs if n != "tailer"]
        for name in order:
            p = self.procs.get(name)
            if p is None or p.poll() is not None:
                continue
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                raise ServiceError(f"{name} did not stop within 10 s of SIGTERM and was killed")
