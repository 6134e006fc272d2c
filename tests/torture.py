"""A randomized fault harness: a writer that rotates a log every way at random
paces, a schedule of kill -9 and SIGSTOP against the tailer, the bucks and the
porter, and a check that every line written is in the index exactly once.

Everything random is drawn from one seed (``make_plan(seed)``): the writer's
pace, its rotations (rename + create, copytruncate, truncation in place,
deletion, old rotations compressed with gzip, bzip2 or zstd and deleted past
``keep``), the odd lines (1 MiB lines, binary bytes, a last line without its
newline) and the faults. The processes are real: ``python -m helios tailer``,
two ``helios buck``, ``helios porter once`` (at random moments, some killed
with -9), then ``helios export`` of the index and ``helios audit``.

The writer is its own process (``python -m tests.torture writer PLAN``): it
numbers every line, and records which file generation (*segment*) holds each
line and when a segment left the disk (deleted, or truncated in place). A line
may be lost *by design* only when its segment left the disk while the tailer
was down (killed or stopped, or within ``CATCH_UP_S`` of its restart): no
tailer can read bytes that are gone before it looks. Everything else must be
in the export exactly once, and ``helios audit`` must agree: exit 0 when
nothing was lost; exit 1, naming the file, when a file it saw was not read to
its end.

Used by ``tests/integration/test_torture.py`` (a few seeds in ``make test``)
and ``bench/torture.py`` (``make soak``: many seeds). A seed replays with
``python -m tests.torture --seed N --variant V`` (printed by a failing run).
"""

from __future__ import annotations

import argparse
import bz2
import datetime
import gzip
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = "torture"
CATCH_UP_S = 3.0         # after a restart, the tailer may still be behind: a file deleted then counts as while down
BIG_LINE = 1_100_000     # a "1 MiB line": longer than the tailer's default max_line_bytes, so it is split
VARIANTS = ("mixed", "glob", "down2gz", "stop2ct", "killct", "stopct")
TAILER_FAST = ["--spool-window", "2", "--resend-jitter", "0.5", "--rotate-wait", "1", "--partial-flush", "0.5",
               "--positions-interval", "0.2", "--rescan-interval", "0.2", "--live-wait", "0.2"]
LINE_RE = re.compile(rb" line (\d{8}) seg (\d{4}) ")
END_RE = re.compile(rb" end (\d{8})$")


# --------------------------------------------------------------------------- the plan

def make_plan(seed: int, variant: str = "mixed", duration: float | None = None) -> dict:
    """Everything a run does, drawn from ``random.Random(seed)``: a JSON-able dict."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}: one of {', '.join(VARIANTS)}")
    rng = random.Random(seed)
    duration = float(duration or round(rng.uniform(10.0, 14.0), 2))
    plan = {
        "seed": seed, "variant": variant, "duration": duration,
        "rate": rng.randint(2000, 4000),                     # lines per second
        "writer_seed": rng.getrandbits(62),
        "compress": rng.choice(["gz", "gz", "bz2", "zst"]),
        "delaycompress": rng.random() < 0.5,                 # logrotate's: .1 stays plain, .2 on compressed
        "keep": rng.randint(3, 6),                           # rotated files kept; older ones are deleted
        "big_every": rng.randint(4000, 9000),                # one 1 MiB line in about this many
        "binary_every": rng.randint(30, 80),                 # one line of binary bytes in about this many
        "encoders": rng.choice([0, 2]),
        "glob": variant == "glob",
        "rotations": [], "faults": [],
    }
    if variant == "down2gz":
        # The tailer is killed, then the log rotates twice by rename with every rotation gzipped at once
        # (no delaycompress), then the tailer comes back: both compressed rotations must be read.
        plan.update(compress="gz", delaycompress=False, keep=6)
        kill_at = round(rng.uniform(2.0, 3.0), 2)
        first = kill_at + round(rng.uniform(0.5, 1.5), 2)
        second = first + round(rng.uniform(1.0, 2.0), 2)
        plan["rotations"] = [[first, rng.choice(["rename", "copytruncate"])], [second, "rename"]]
        plan["faults"] = [{"at": kill_at, "target": "tailer", "kind": "kill",
                           "down": round(second - kill_at + rng.uniform(0.5, 2.0), 2)}]
        plan["duration"] = max(duration, second + 4.0)
        return plan
    if variant == "stop2ct":
        # The tailer SIGSTOPped (behind, its files open) across two copytruncates, the first copy compressed
        # by the second rotation (no delaycompress), then let go on.
        plan.update(delaycompress=False, keep=6)
        stop_at = round(rng.uniform(2.0, 3.0), 2)
        first = stop_at + round(rng.uniform(0.3, 1.0), 2)
        second = first + round(rng.uniform(0.5, 1.5), 2)
        plan["rotations"] = [[first, "copytruncate"], [second, "copytruncate"]]
        plan["faults"] = [{"at": stop_at, "target": "tailer", "kind": "stop",
                           "down": round(second - stop_at + rng.uniform(0.3, 1.5), 2)}]
        plan["duration"] = max(duration, second + 4.0)
        return plan
    if variant == "stopct":
        # The tailer SIGSTOPped just after a rename (it has read little of the new app.log), app.log then
        # copytruncated and written past where the tailer was, then SIGCONT: the tailer must tell the new
        # content from the old (same inode, larger than its offset) and finish the copy from its offset.
        plan.update(delaycompress=rng.random() < 0.5, keep=6)
        rename = round(rng.uniform(2.0, 3.0), 2)
        stop_at = rename + round(rng.uniform(0.1, 0.3), 2)
        ct = stop_at + round(rng.uniform(0.3, 0.8), 2)
        plan["rotations"] = [[rename, "rename"], [ct, "copytruncate"], [ct + round(rng.uniform(3.0, 4.0), 2), "rename"]]
        plan["faults"] = [{"at": stop_at, "target": "tailer", "kind": "stop",
                           "down": round(ct - stop_at + rng.uniform(1.5, 2.5), 2)}]
        plan["duration"] = max(duration, plan["rotations"][-1][0] + 2.0)
        return plan
    if variant == "killct":
        # kill -9 of the tailer within a second after each of several copytruncates or renames.
        t = rng.uniform(1.0, 2.0)
        while t < duration - 2.0:
            method = rng.choice(["copytruncate", "copytruncate", "rename"])
            plan["rotations"].append([round(t, 2), method])
            plan["faults"].append({"at": round(t + rng.uniform(0.0, 1.0), 2), "target": "tailer", "kind": "kill",
                                   "down": round(rng.uniform(0.3, 2.0), 2)})
            t = plan["faults"][-1]["at"] + plan["faults"][-1]["down"] + rng.uniform(0.5, 1.5)
        return plan
    methods = ["rename"] * 4 + ["copytruncate"] * 4 + ["truncate", "delete"]
    t = rng.uniform(0.8, 2.0)
    while t < duration - 0.5:
        plan["rotations"].append([round(t, 2), rng.choice(methods)])
        t += rng.uniform(1.0, 4.0) if rng.random() < 0.8 else rng.uniform(0.2, 1.0)
    # Each target has its own sequence of faults (so both bucks may be down at once); the tailer most often.
    for target, count, longest in (("tailer", rng.randint(2, 4), 7.0), ("buck-a", rng.randint(0, 2), 5.0),
                                   ("buck-b", rng.randint(0, 2), 5.0)):
        t = rng.uniform(1.0, 3.0)
        for _ in range(count):
            if t > duration - 1.0:
                break
            down = round(min(rng.uniform(0.3, longest), duration - t), 2)
            plan["faults"].append({"at": round(t, 2), "target": target,
                                   "kind": "kill" if rng.random() < 0.7 else "stop", "down": down})
            t += down + rng.uniform(0.5, 3.0)
    for _ in range(rng.randint(1, 2)):   # a porter pass mid-run, sometimes killed with -9 half-way
        plan["faults"].append({"at": round(rng.uniform(2.0, duration), 2), "target": "porter",
                               "kind": "kill" if rng.random() < 0.5 else "run", "down": round(rng.uniform(0.3, 2.0), 2)})
    plan["faults"].sort(key=lambda f: f["at"])
    return plan


def replay_command(plan: dict) -> str:
    return (f"cd {ROOT} && PYTHONPATH=$PWD {sys.executable} -m tests.torture --seed {plan['seed']} "
            f"--variant {plan['variant']} --duration {plan['duration']}")


# --------------------------------------------------------------------------- the writer (its own process)

COMPRESSORS = {"gz": (".gz", lambda p: gzip.open(p, "wb", compresslevel=1)),
               "bz2": (".bz2", lambda p: bz2.open(p, "wb", compresslevel=1))}


def _zstd_open(path):
    import zstandard

    return zstandard.ZstdCompressor(level=3).stream_writer(open(path, "wb"), closefd=True)


COMPRESSORS["zst"] = (".zst", _zstd_open)


class Writer:
    """Writes numbered lines to ``DIR/app.log`` and rotates it as the plan says."""

    def __init__(self, plan: dict, logs: Path) -> None:
        self.plan, self.logs = plan, logs
        self.app = logs / "app.log"
        self.rng = random.Random(plan["writer_seed"])
        self.n = 0
        self.seg = 0
        self.segments: dict[int, dict] = {}
        self.rotated: list[list] = []   # newest first: [segment, extension]; index i is app.log.{i+1}{ext}
        self.big: list[int] = []
        self._new_segment()

    def _new_segment(self) -> None:
        self.seg += 1
        self.segments[self.seg] = {"first": self.n, "last": self.n - 1, "gone": None, "how": None,
                                   "names": [str(self.app)]}
        self.app.touch()

    def _gone(self, seg: int, how: str) -> None:
        self.segments[seg].update(gone=time.monotonic(), how=how)

    def line(self, stamp: bytes) -> bytes:
        n = self.n
        head = b"%s torture app[7]: line %08d seg %04d " % (stamp, n, self.seg)
        if self.rng.randrange(self.plan["big_every"]) == 0:
            self.big.append(n)
            body = b"y" * BIG_LINE + b" end %08d" % n
        elif self.rng.randrange(self.plan["binary_every"]) == 0:
            body = bytes(self.rng.choice([b for b in range(256) if b != 10]) for _ in range(self.rng.randint(8, 40)))
        else:
            body = b"x" * self.rng.randint(0, 80)
        self.n += 1
        self.segments[self.seg]["last"] = n
        return head + body

    def name(self, i: int, ext: str) -> Path:
        return self.logs / f"app.log.{i + 1}{ext}"

    def _named(self, seg: int, path: Path) -> None:
        if str(path) not in self.segments[seg]["names"]:
            self.segments[seg]["names"].append(str(path))

    def rotate(self, method: str) -> None:
        if method in ("rename", "copytruncate"):
            for i in reversed(range(len(self.rotated))):          # .1 -> .2, ... oldest first
                os.rename(self.name(i, self.rotated[i][1]), self.name(i + 1, self.rotated[i][1]))
                self._named(self.rotated[i][0], self.name(i + 1, self.rotated[i][1]))
            if method == "rename":
                os.rename(self.app, self.name(0, ""))
                self.rotated.insert(0, [self.seg, ""])
                self._named(self.seg, self.name(0, ""))
                self._new_segment()                                   # logrotate's create
            else:
                shutil.copyfile(self.app, self.name(0, ""))
                with open(self.app, "r+b") as f:
                    f.truncate(0)
                self.rotated.insert(0, [self.seg, ""])
                self._named(self.seg, self.name(0, ""))
                self._new_segment()
            self._compress()
            while len(self.rotated) > self.plan["keep"]:
                seg, ext = self.rotated.pop()
                os.unlink(self.name(len(self.rotated), ext))
                self._gone(seg, "deleted")
        elif method == "truncate":
            # Truncation in place loses what was not read yet, whoever reads: the writer's pace
            # gives a live tailer a moment, as a real truncating program would not wait at all.
            time.sleep(0.3)  # the writer's pace, not a wait for a result
            with open(self.app, "r+b") as f:
                f.truncate(0)
            self._gone(self.seg, "truncated")
            self._new_segment()
        elif method == "delete":
            os.unlink(self.app)
            self._gone(self.seg, "deleted")
            self._new_segment()

    def _compress(self) -> None:
        ext, opener = COMPRESSORS[self.plan["compress"]]
        first = 1 if self.plan["delaycompress"] else 0
        for i in range(first, len(self.rotated)):
            if self.rotated[i][1] == "":
                plain = self.name(i, "")
                # As gzip(1) does: the compressed file grows under its final name, then the plain one goes.
                with open(plain, "rb") as src, opener(self.name(i, ext)) as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                os.unlink(plain)
                self.rotated[i][1] = ext
                self._named(self.rotated[i][0], self.name(i, ext))

    def run(self, out: Path) -> None:
        plan = self.plan
        rotations = [(float(t), m) for t, m in plan["rotations"]]
        t0 = time.monotonic()
        next_t = t0
        while True:
            now = time.monotonic()
            if now - t0 >= plan["duration"]:
                break
            while rotations and now - t0 >= rotations[0][0]:
                self.rotate(rotations.pop(0)[1])
            due = int((now - next_t) * plan["rate"]) + 1
            stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()
            with open(self.app, "ab") as f:
                f.write(b"".join(self.line(stamp) + b"\n" for _ in range(min(due, 200))))
            next_t += min(due, 200) / plan["rate"]
            time.sleep(max(0.0, min(0.01, next_t - time.monotonic())))
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()
        with open(self.app, "ab") as f:
            f.write(self.line(stamp) + b" the last line has no newline")
        out.write_text(json.dumps({"lines": self.n, "segments": self.segments, "big": self.big,
                                   "t0": t0, "ended": time.monotonic()}))


# --------------------------------------------------------------------------- processes

class Service:
    """A helios command as its own process (its output in a file), with the
    python path of a given code tree (this one, or an older one to upgrade from)."""

    def __init__(self, name: str, args: list[str], out_dir: Path, code: Path = ROOT) -> None:
        self.name, self.args, self.out_dir, self.code = name, args, out_dir, code
        self.p: subprocess.Popen | None = None
        self.stopped = False
        self.start()

    @property
    def log_path(self) -> Path:
        return self.out_dir / f"{self.name}.out"

    def start(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(self.code))
        with open(self.log_path, "ab") as log:
            self.p = subprocess.Popen([sys.executable, "-m", "helios", *self.args], stdout=log,
                                      stderr=subprocess.STDOUT, env=env, cwd=self.code)
        self.stopped = False

    def alive(self) -> bool:
        return self.p is not None and self.p.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            self.p.send_signal(sig)
        self.stopped = sig == signal.SIGSTOP

    def kill(self) -> None:
        if self.alive():
            self.p.kill()
            self.p.wait()

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.alive():
            if self.stopped:
                self.p.send_signal(signal.SIGCONT)
            self.p.terminate()
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return None if self.p is None else self.p.returncode

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


def poll_until(check, timeout: float, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def helios(args: list[str], code: Path = ROOT, timeout: float = 180.0) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(code))
    return subprocess.run([sys.executable, "-m", "helios", *args], capture_output=True, timeout=timeout,
                          env=env, cwd=code)



def bucket_events(path):
    """The events of a bucket file's frames (a frame that does not decode is passed over)."""
    from helios import codec
    from helios.errors import FrameError
    from helios.store.records import RecordReader

    for frame in RecordReader(path):
        try:
            yield from codec.decode(frame)[1]
        except FrameError:
            continue

class Mesh:
    """Two bucks and a tailer following ``DIR/logs/app.log`` (or ``app.log*``),
    a porter run on demand; ``code`` is the tree each service runs from."""

    def __init__(self, work: Path, *, glob: bool = False, encoders: int = 2, code: Path = ROOT) -> None:
        from helios.wire.ports import free_endpoint

        self.work, self.code = work, code
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.glob, self.encoders = glob, encoders
        self.bucks: dict[str, Service] = {}
        self.data: dict[str, Path] = {}
        self.queries: dict[str, str] = {}
        self.ingests: dict[str, str] = {}
        for name in ("buck-a", "buck-b"):
            self.data[name] = work / name
            self.ingests[name], self.queries[name] = free_endpoint(), free_endpoint()
            self.bucks[name] = Service(name, ["buck", "--name", name, "--ingest", self.ingests[name],
                                              "--data-dir", str(self.data[name]), "--window", "1",
                                              "--stats-interval", "0.2", "--publish", free_endpoint(),
                                              "--query", self.queries[name]], work, code)
        self.tailer: Service | None = None
        self.down: list[list[float]] = []     # the tailer's [down, up] times (monotonic)
        self.crashed: dict[str, int] = {}     # services found dead that no fault had stopped: exit code
        for name in self.bucks:
            if not poll_until(lambda: (self.data[name] / "stats.json").exists() or not self.bucks[name].alive(), 20) \
                    or not self.bucks[name].alive():
                self.close()
                raise AssertionError(f"{name} did not start:\n{self.bucks[name].output()}")

    def tailer_args(self) -> list[str]:
        path = str(self.logs / ("app.log*" if self.glob else "app.log"))
        args = ["tailer", "--path", path, "--env", ENV, "--host", "torture-host", "--start-at", "beginning",
                "--state-dir", str(self.work / "state"), "--encoders", str(self.encoders), *TAILER_FAST]
        for ep in self.ingests.values():
            args += ["--buck", ep]
        return args

    def start_tailer(self, code: Path | None = None) -> Service:
        """Start (or restart) the tailer, retried while the last one's state lock is let go."""
        if code is not None:
            self.code = code
        deadline = time.monotonic() + 30
        while True:
            before = self.tailer.output().count("Tailer on") if self.tailer is not None else 0
            saved = self.positions_saved()
            if self.tailer is None or self.tailer.code != self.code:
                self.tailer = Service("tailer", self.tailer_args(), self.work, self.code)
            else:
                self.tailer.start()
            poll_until(lambda: self.tailer.output().count("Tailer on") > before or not self.tailer.alive(), 20)
            # Up means it has looked at its files and saved where it is (its first save, at once after its
            # first scan), not "Tailer on": that is said before its first scan (and was said before its encoders
            # started, seconds on a loaded host), and a tailer killed before its first scan never knew app.log,
            # so a rename meanwhile was lost (and an older tailer, as test_upgrade runs, still says it early).
            poll_until(lambda: self.positions_saved() != saved or not self.tailer.alive(), 60)
            if self.tailer.alive():
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"the tailer did not start again within 30 s:\n{self.tailer.output()[-3000:]}")
            time.sleep(0.2)  # the old process's lock (its encoders may outlive it a moment): retry
        if self.down and self.down[-1][1] is None:
            self.down[-1][1] = time.monotonic()
        return self.tailer

    def positions_saved(self) -> tuple | None:
        """Which save of positions.json is on disk (each save is a new file, renamed into place)."""
        try:
            st = (self.work / "state" / "positions.json").stat()
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns

    def tailer_down(self) -> None:
        self.down.append([time.monotonic(), None])

    def porter_args(self, cmd: str = "once") -> list[str]:
        args = ["porter", cmd, "--state-dir", str(self.work / "porter"), "--index-dir", str(self.work / "index"),
                "--archive-dir", str(self.work / "archive"), "--grace", "0.5", "--poll-interval", "0.2",
                "--timeout", "3", "--archive-age", "3600", "--prune-age", "7200", "--recent-days", "30",
                "--workers", "0", "--env", ENV]
        # The query endpoint's flag: --query since the one buck address (--buck HOST:PORT) came;
        # the older code an upgrade starts from took it as --buck.
        flag = "--query" if Path(self.code).resolve() == Path(ROOT).resolve() else "--buck"
        for q in self.queries.values():
            args += [flag, q]
        return args

    def porter_status(self) -> dict:
        try:
            return json.loads((self.work / "porter" / "status.json").read_text())
        except (OSError, ValueError):
            return {}

    def port_all(self, since: float, timeout: float = 120.0) -> None:
        """``helios porter once`` until every closed window is indexed."""
        deadline = time.monotonic() + timeout
        while True:
            r = helios(self.porter_args(), self.code)
            s = self.porter_status()
            d = (s.get("environments") or {}).get(ENV) or {}
            if (r.returncode == 0 and (s.get("listed_at") or 0) > since and d.get("open") == 0
                    and d.get("index_behind") == 0):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the porter did not settle: rc {r.returncode}, {d}\n"
                                     f"{r.stderr.decode(errors='replace')[-3000:]}")
            time.sleep(0.3)  # windows close a second after they end

    def export(self, start: float, end: float) -> list:
        from helios.eventform import from_json

        out = self.work / "export.ndjson"
        r = helios(["export", "--index-dir", str(self.work / "index"), "--env", ENV, "--start", str(int(start)),
                    "--end", str(int(end) + 1)], self.code)     # NDJSON on standard output, in every version
        if r.returncode != 0:
            raise AssertionError(f"helios export failed: {r.stderr.decode(errors='replace')}")
        out.write_bytes(r.stdout)
        with open(out, "rb") as f:
            return [from_json(line) for line in f if line.strip()]

    def audit(self) -> subprocess.CompletedProcess:
        args = ["audit"]
        for d in self.data.values():
            args += ["--data-dir", str(d)]
        return helios(args, self.code)

    def audit_index(self) -> subprocess.CompletedProcess:
        """``helios audit --index --content`` (from this tree: older ones have no --index) of the porter's
        index: a content the index holds otherwise than the bucks is a difference too."""
        args = ["audit", "--index", "--content", "--state-dir", str(self.work / "porter"), "--index-dir",
                str(self.work / "index"), "--recent-days", "30", "--env", ENV]
        for q in self.queries.values():
            args += ["--query", q]
        return helios(args, ROOT)

    def held_lines(self) -> tuple[set[int], set[int]]:
        """The line numbers the bucks hold a first piece of, and those they hold a last piece of (1 MiB lines)."""
        from helios.store import layout

        heads: set[int] = set()
        ends: set[int] = set()
        for d in self.data.values():
            for _, path in layout.list_buckets(d / "buckets", ENV):
                for e in bucket_events(path):
                    if m := LINE_RE.search(e.message[:120]):
                        heads.add(int(m.group(1)))
                    elif m := END_RE.search(e.message):
                        ends.add(int(m.group(1)))
        return heads, ends

    def held(self, cache: dict) -> set[int]:
        """Line numbers the bucks hold (bucket files read again only when they grew)."""
        from helios.store import layout

        held: set[int] = set()
        for d in self.data.values():
            for _, path in layout.list_buckets(d / "buckets", ENV):
                try:
                    size = path.stat().st_size
                except OSError:
                    continue
                got = cache.get(path)
                if got is None or got[0] != size:
                    nums = {int(m.group(1)) for e in bucket_events(path) if (m := LINE_RE.search(e.message[:120]))}
                    cache[path] = got = (size, nums)
                held |= got[1]
        return held

    def close(self) -> None:
        for s in [self.tailer, *self.bucks.values()]:
            if s is not None:
                s.stop()


# --------------------------------------------------------------------------- a run

@dataclass
class Result:
    seed: int
    variant: str
    lines: int = 0
    lost: int = 0                 # lines that had to be kept and are not in the index
    lost_by_design: int = 0       # lines whose file left the disk while the tailer was down
    unseen_by_design: int = 0     # ... of files the tailer never saw a line of (no one can name them)
    duplicated: int = 0           # lines in the index more than once (under more than one id)
    garbage: int = 0              # events that are no line written (compressed bytes read as text)
    unmarked_pieces: int = 0      # last pieces of split lines without {"split": n, "last": true}
    inventory: int = 0            # inventory records of the tailer in the index (not lines; not judged)
    audit_rc: int | None = None
    audit_agrees: bool = False
    audit_must_fail: bool = False
    index_audit_rc: int | None = None     # helios audit --index: must fail exactly when a line the bucks hold
    index_audit_agrees: bool = False      # ... is not in the index export
    first_lost: list = field(default_factory=list)
    first_duplicated: list = field(default_factory=list)
    lost_segments: list = field(default_factory=list)   # (segment, how it left the disk, lines lost)
    replay: str = ""
    seconds: float = 0.0
    work: str = ""
    error: str = ""
    tracebacks: list = field(default_factory=list)   # the first lines of each service's first traceback

    @property
    def ok(self) -> bool:
        return (not self.error and not self.lost and not self.duplicated and not self.garbage
                and not self.unmarked_pieces and self.audit_agrees and self.index_audit_agrees)

    def line(self) -> str:
        state = "PASS" if self.ok else "FAIL"
        text = (f"{state} seed={self.seed} variant={self.variant} lines={self.lines} lost={self.lost} "
                f"lost_by_design={self.lost_by_design} (unseen {self.unseen_by_design}) "
                f"duplicated={self.duplicated} garbage={self.garbage} unmarked_pieces={self.unmarked_pieces} "
                f"audit_rc={self.audit_rc} audit_agrees={self.audit_agrees} index_audit_rc={self.index_audit_rc} "
                f"index_audit_agrees={self.index_audit_agrees} in {self.seconds:.0f} s")
        if self.error:
            text += f" error={self.error!r}"
        for tb in self.tracebacks:
            text += "\n  " + tb.replace("\n", "\n    ")
        if not self.ok:
            text += f"\n  replay: {self.replay}"
        return text


def run(plan: dict, work: Path, code: Path = ROOT, upgrade_to: Path = ROOT) -> Result:
    """Run ``plan`` in ``work`` (an empty directory); the result of its checks.
    The services start from the code tree ``code``; a fault of kind
    ``upgrade`` stops its target (SIGTERM) and starts it again from
    ``upgrade_to``, and the porter, export and audit run from there after."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "plan.json").write_text(json.dumps(plan, indent=1))
    res = Result(plan["seed"], plan["variant"], replay=plan.get("replay") or replay_command(plan), work=str(work))
    began = time.monotonic()
    wall0 = time.time()
    mesh = writer = None
    porters: list[Service] = []
    try:
        mesh = Mesh(work, glob=plan["glob"], encoders=plan["encoders"], code=code)
        mesh.start_tailer()
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        with open(work / "writer.out", "ab") as log:
            writer = subprocess.Popen([sys.executable, "-m", "tests.torture", "writer", str(work / "plan.json"),
                                       str(mesh.logs), str(work / "written.json")], stdout=log,
                                      stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        t0 = time.monotonic()
        _run_faults(plan, mesh, t0, porters, work, upgrade_to)
        if writer.wait(plan["duration"] + 120) != 0:
            raise AssertionError(f"the writer failed:\n{(work / 'writer.out').read_text(errors='replace')}")
        written = json.loads((work / "written.json").read_text())
        res.lines = written["lines"]
        for p in porters:
            p.stop()
        # Everything is up again; wait until the bucks hold every line, or nothing new arrives for a while.
        cache: dict = {}
        last, stable_since = -1, time.monotonic()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            held = mesh.held(cache)
            if len(held) != last:
                last, stable_since = len(held), time.monotonic()
            if len(held) >= res.lines and time.monotonic() - stable_since > 1.0:
                break
            if time.monotonic() - stable_since > 8.0:
                break
            time.sleep(0.5)  # a look at the bucks' files every half second
        stopped_at = time.time()
        for name, svc in [("tailer", mesh.tailer), *mesh.bucks.items()]:
            if not svc.alive():
                mesh.crashed.setdefault(name, svc.p.returncode)
        if mesh.crashed:
            res.error = "exited by itself: " + ", ".join(f"{n} (exit {rc})" for n, rc in sorted(mesh.crashed.items()))
        mesh.tailer.stop()
        mesh.port_all(since=stopped_at + 1.5)
        events = mesh.export(wall0 - 60, time.time() + 60)
        audit = mesh.audit()
        (work / "audit.out").write_bytes(audit.stdout + audit.stderr)
        res.audit_rc = audit.returncode
        index_audit = mesh.audit_index()
        (work / "audit-index.out").write_bytes(index_audit.stdout + index_audit.stderr)
        res.index_audit_rc = index_audit.returncode
        _check(res, plan, written, mesh.down, events, audit.stdout.decode(errors="replace"), mesh.held_lines())
    except Exception as exc:  # a run that could not finish is a failing run, with its replay command
        res.error = f"{type(exc).__name__}: {str(exc)[:2000]}"
    finally:
        if writer is not None and writer.poll() is None:
            writer.kill()
            writer.wait()
        for p in porters:
            p.kill()
        if mesh is not None:
            mesh.close()
        res.tracebacks = _tracebacks(work)
        res.seconds = time.monotonic() - began
        (work / "result.json").write_text(json.dumps(asdict(res), indent=1))
    return res


def keep_failed(res: Result, name: str) -> str:
    """Copy a failing run's files (logs, plan, export, audit; not the index) to
    TMP/helios-torture-failed/NAME-TIME, where pytest's clean-up leaves them; the path."""
    import tempfile

    kept = Path(tempfile.gettempdir()) / "helios-torture-failed" / f"{name}-{int(time.time())}"
    shutil.copytree(res.work, kept, ignore=shutil.ignore_patterns("index", "archive"))
    return str(kept)


def _tracebacks(work: Path) -> list[str]:
    """Each service's first traceback (a crash the run's figures may not show), shortened."""
    out = []
    for path in sorted(work.glob("*.out")):
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        i = text.find("Traceback (most recent call last)")
        if i >= 0:
            lines = text[i:].splitlines()
            end = next((k for k, ln in enumerate(lines[1:], 1) if not ln.startswith(" ")), len(lines) - 1)
            out.append(f"{path.stem}: " + "\n".join(lines[max(0, end - 6):end + 1]))
    return out


def _run_faults(plan: dict, mesh: Mesh, t0: float, porters: list, work: Path, upgrade_to: Path = ROOT) -> None:
    """Play the plan's faults at their times (the schedule's own pace, not waits for results)."""
    actions = []
    for i, f in enumerate(plan["faults"]):
        actions.append((f["at"], i, "begin", f))
        actions.append((f["at"] + f["down"], i, "end", f))
    actions.sort(key=lambda a: (a[0], a[1]))
    down: set[str] = set()   # the services a fault holds down (killed or stopped) right now
    for at, _, what, f in actions:
        time.sleep(max(0.0, t0 + at - time.monotonic()))
        target, kind = f["target"], f["kind"]
        # A service that died by itself between faults is a failure the figures might not show.
        for name, svc in [("tailer", mesh.tailer), *mesh.bucks.items()]:
            if name not in down and svc is not None and not svc.alive() and name not in mesh.crashed:
                mesh.crashed[name] = svc.p.returncode
        if target != "porter":
            (down.add if what == "begin" else down.discard)(target)
        if target == "porter":
            if what == "begin":
                porters.append(Service(f"porter-{len(porters)}", mesh.porter_args(), work, mesh.code))
            elif kind == "kill":
                porters[-1].kill()
            continue
        svc = mesh.tailer if target == "tailer" else mesh.bucks[target]
        if kind in ("upgrade", "upgrade-kill"):   # stopped with SIGTERM (or kill -9), started from upgrade_to
            if what == "begin" and kind == "upgrade-kill":
                svc.kill()
                if target == "tailer":
                    mesh.tailer_down()
            elif what == "begin":
                rc = svc.stop()
                if rc != 0:
                    raise AssertionError(f"{target} exited with {rc} on SIGTERM:\n{svc.output()[-3000:]}")
                if target == "tailer":
                    mesh.tailer_down()
            elif target == "tailer":
                mesh.start_tailer(code=upgrade_to)
            else:
                svc.code = mesh.code = upgrade_to
                svc.start()
            continue
        if what == "begin":
            if target == "tailer":
                mesh.tailer_down()
            if kind == "kill":
                svc.kill()
            else:
                svc.signal(signal.SIGSTOP)
        elif kind == "kill":
            mesh.start_tailer() if target == "tailer" else svc.start()
        else:
            svc.signal(signal.SIGCONT)
            if target == "tailer":
                mesh.down[-1][1] = time.monotonic()


def _check(res: Result, plan: dict, written: dict, down: list, events: list, audit_text: str,
           held: tuple[set[int], set[int]] | None = None) -> None:
    lines = written["lines"]
    segments = {int(k): v for k, v in written["segments"].items()}
    big = set(written["big"])
    windows = [(a, (b if b is not None else float("inf")) + CATCH_UP_S) for a, b in down]
    allowed_segments = {s for s, v in segments.items()
                        if v["gone"] is not None and any(a <= v["gone"] <= b for a, b in windows)}
    seg_of = {}
    for s, v in segments.items():
        for n in range(v["first"], v["last"] + 1):
            seg_of[n] = s
    heads: Counter[int] = Counter()
    ends: Counter[int] = Counter()
    for e in events:
        if (e.fields or {}).get("inventory"):
            res.inventory += 1   # the tailer's inventory of what it saw (for the audit), not a line
            continue
        m = LINE_RE.search(e.message[:120])
        if m:
            heads[int(m.group(1))] += 1
            continue
        m = END_RE.search(e.message)
        if m:
            ends[int(m.group(1))] += 1
            f = e.fields or {}
            if not (f.get("split") and f.get("last")):
                res.unmarked_pieces += 1
            continue
        res.garbage += 1
    seen_segments = {seg_of[n] for n in heads if n in seg_of}
    lost, lost_design, lost_per_seg = [], [], Counter()
    for n in range(lines):
        missing = heads[n] == 0 or (n in big and ends[n] == 0)
        if not missing:
            continue
        lost_per_seg[seg_of.get(n)] += 1
        (lost_design if seg_of.get(n) in allowed_segments else lost).append(n)
    res.lost, res.lost_by_design = len(lost), len(lost_design)
    res.unseen_by_design = sum(1 for n in lost_design if seg_of.get(n) not in seen_segments)
    res.first_lost = lost[:10]
    res.lost_segments = [(s, segments[s]["how"] if s in segments else None, c) for s, c in sorted(lost_per_seg.items())]
    dup = sorted({n for n, c in heads.items() if c > 1} | {n for n, c in ends.items() if c > 1}
                 | {n for n in heads if n >= lines})
    res.duplicated = len(dup)
    res.first_duplicated = dup[:10]
    # The audit must fail (naming the file) when a line of a file it saw is missing; it must pass when nothing
    # is missing; a loss by design of files the tailer never saw cannot be named, so either answer is taken.
    must_fail = bool(lost) or res.lost_by_design > res.unseen_by_design
    res.audit_must_fail = must_fail
    if must_fail:
        # Named: a line of the audit that is not "OK" holds one of the names the lost file had.
        named = [s for s in lost_per_seg if s in seen_segments or any(seg_of.get(n) == s for n in lost)]
        res.audit_agrees = res.audit_rc == 1 and all(_named(segments.get(s, {}), audit_text) for s in named)
    elif res.lost_by_design or allowed_segments & seen_segments:
        # Nothing it could name was lost; but a file it saw left the disk while it was down, so the tailer
        # cannot know whether it had read it to its end: saying so (exit 1) is as right as exit 0.
        res.audit_agrees = res.audit_rc in (0, 1)
    else:
        res.audit_agrees = res.audit_rc == 0
    # Between the bucks and the index: `helios audit --index` must fail exactly when a line (or the last
    # piece of a 1 MiB line) the bucks hold is not in the index (not judged without what the bucks hold).
    if held is None:
        res.index_audit_agrees = True
    else:
        lost_on_the_way = bool(held[0] - heads.keys()) or bool(held[1] - ends.keys())
        res.index_audit_agrees = res.index_audit_rc == (1 if lost_on_the_way else 0)


def _named(segment: dict, audit_text: str) -> bool:
    names = segment.get("names") or ["app.log"]
    pattern = re.compile("|".join(re.escape(n) + r"(?![\w.-])" for n in names))
    return any(pattern.search(line) and not line.rstrip().endswith("OK") for line in audit_text.splitlines())


# --------------------------------------------------------------------------- command line

def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "writer":
        plan = json.loads(Path(argv[1]).read_text())
        Writer(plan, Path(argv[2])).run(Path(argv[3]))
        return 0
    ap = argparse.ArgumentParser(prog="python -m tests.torture", description="Replay one seed of the fault harness.")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--variant", choices=VARIANTS, default="mixed")
    ap.add_argument("--duration", type=float, default=None, help="Seconds of writing (default: drawn from the seed).")
    ap.add_argument("--work", default=None, help="Directory of the run (default: a new temporary one, kept).")
    ap.add_argument("--show-plan", action="store_true", help="Print the plan and exit.")
    a = ap.parse_args(argv)
    plan = make_plan(a.seed, a.variant, a.duration)
    if a.show_plan:
        print(json.dumps(plan, indent=1))
        return 0
    import tempfile

    work = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix=f"torture-{a.seed}-"))
    res = run(plan, work)
    print(res.line())
    print(f"  the run's files: {work}")
    return 0 if res.ok else 1


if __name__ == "__main__":
    sys.exit(main())
