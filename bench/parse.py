"""Parser throughput: lines/s per layout and per rule kind, in one run.

Each layout is a made-up file of 100,000 lines of a real shape, parsed in
chunks of 2,000 lines (what a tailer batch holds) by ``Parser("auto")``; rule
kinds run the same RAS-style lines through a regex rule, a grok rule, and
rules whose time is epoch or strptime. Same-run comparisons:

- ``re split``: a bare ``findall`` of ``^(\\S+) (\\S+) (\\S+)`` over the chunk
  plus ``split(b"\\n")``: the floor any regex parser pays;
- with ``--against TREE``: the parser of another checkout (say the main
  branch, to see what a change costs), on the same chunks. Each tree runs
  in a process of its own (``helios.parse`` imports ``helios.parsing``, so
  the two cannot share one), the two alternating, once per repeat.

Also the ingest bench's syslog input (``--input``, by default
bench/out/input-20mb.log when bench/ingest.py has made it; its first 20 MB),
in reads of 256 KiB as the tailer reads a file: the parse of what
``bench/ingest.py`` feeds the tailer's encoders.

CPU time (process_time) per line, the median of ``--repeat`` runs (and the
best), with the garbage collector set as in the tailer's encoder workers;
each run parses with a new ``Parser``, as a tailer reading a stream
meets each second's timestamps for the first time. On a busy machine the
figures are noisy; compare the ratios.

    python bench/parse.py [--lines 100000] [--repeat 5] [--against /work/main] [--input FILE]
"""

from __future__ import annotations

import argparse
import gc
import json
import pickle
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# ``--child TREE`` times the parser of TREE (see time_cases): its helios first.
_CHILD = sys.argv[sys.argv.index("--child") + 1] if "--child" in sys.argv[:-1] else None
sys.path.insert(0, _CHILD or str(ROOT))

from helios import loadgen  # noqa: E402
from helios.parse import Parser  # noqa: E402

T0 = 1_764_000_000
NOW = T0 * 10**9
CHUNK = 2000


def layouts(n: int) -> dict[str, list[bytes]]:
    rng = random.Random(1)
    hosts = [f"web-{i}" for i in range(9)]

    def s(i):                               # seconds advancing, 2,000 lines a second
        return T0 + i // 2000

    def clock(i):
        return time.strftime("%H:%M:%S", time.gmtime(s(i))).encode()

    out = {
        "rfc3164 (loadgen, the ingest bench's)": [loadgen.rfc3164_line(rng, T0 + i / 2000).encode().rstrip(b"\n") for i in range(n)],
        "rfc3164 loose (no host, unpadded day)": [
            b"<134>Mar 1 %s dhcpd[%d]: DHCPACK on 10.0.%d.%d" % (clock(i), 4000 + i % 50, i % 250, i % 200)
            for i in range(n)],
        "rfc5424 with structured data": [
            b'<165>1 2026-11-24T16:00:%02d.%03dZ %s app %d ID47 [origin@123 ip="10.0.0.%d"] message %d'
            % (i // 1000 % 60, i % 1000, hosts[i % 9].encode(), 300 + i % 40, i % 250, i) for i in range(n)],
        "log4j (ISO, level, [thread], logger)": [
            b"2026-11-24 16:00:%02d,%03d INFO [main] org.example.Service: request %d done"
            % (i // 1000 % 60, i % 1000, i) for i in range(n)],
        "log4j with separators (' - WARN [t:C@1] - ')": [
            b"2026-11-24 16:00:%02d,%03d - WARN  [main:Connector@212] - connection %d reset"
            % (i // 1000 % 60, i % 1000, i) for i in range(n)],
        "ECS JSON": [json.dumps({"@timestamp": f"2026-11-24T16:00:{i // 1000 % 60:02d}.{i % 1000:03d}Z",
                                 "log.level": "info", "host.name": hosts[i % 9], "service.name": "api",
                                 "message": f"request {i}", "trace.id": f"{i:016x}"}).encode() for i in range(n)],
        "Docker json-file": [json.dumps({"log": f"2026-11-24 16:00:{i // 1000 % 60:02d} INFO web: hit {i}\n",
                                         "stream": "stdout",
                                         "time": f"2026-11-24T16:00:{i // 1000 % 60:02d}.{i % 10**9:09d}Z"}).encode() for i in range(n)],
        "logfmt": [b'time=2026-11-24T16:00:%02dZ level=info msg="request %d" host=%s dur=%dms'
                   % (i // 1000 % 60, i, hosts[i % 9].encode(), i % 700) for i in range(n)],
        # What a syslog receiver gets: the loadgen lines with a PRI (the severity is the PRI's).
        "rfc3164 with PRI (a syslog receiver's)": [b"<%d>" % (8 + i % 8) + loadgen.rfc3164_line(rng, T0 + i / 2000)
                                                   .encode().rstrip(b"\n") for i in range(n)],
        # Layouts read since the "wild layouts" change (tests/unit/test_parse_wild_layouts.py),
        # and text no layout reads (every pass runs over it).
        "Redis": [b"%d:M 24 Nov 2026 16:00:%02d.%03d * DB saved on disk %d" % (1 + i % 3, i // 1000 % 60, i % 1000, i)
                  for i in range(n)],
        "Rust tracing (target a module path)": [
            b"2026-11-24T16:00:%02d.%06dZ  INFO my_crate::db: query %d done" % (i // 1000 % 60, i % 10**6, i)
            for i in range(n)],
        "Tomcat (JULI one line)": [
            b"24-Nov-2026 16:00:%02d.%03d INFO [main] org.apache.catalina.startup.Catalina.start request %d"
            % (i // 1000 % 60, i % 1000, i) for i in range(n)],
        "plain text (no layout)": [b"the quick brown fox %d jumps over the lazy dog" % i for i in range(n)],
    }
    return out


RULES = {
    "rule: regex, epoch": {"regex": r"\[(?P<host>\w+)\] (?P<time>[\d.]+) (?P<facility>\w+)\.(?P<severity>\w+) "
                                    r"(?P<app>[^:]+):", "time_format": "epoch"},
    "rule: grok, epoch": {"grok": r"\[%{WORD:host}\] %{NUMBER:time} %{WORD:facility}\.%{LOGLEVEL:severity} "
                                  r"%{NOTSPACE:app}: %{GREEDYDATA}", "time_format": "epoch"},
    "rule: regex, strptime": {"regex": r"(?P<time>\d\d/\d\d/\d{4} \d\d:\d\d:\d\d) (?P<severity>\w+) (?P<app>\S+)",
                              "time_format": "%d/%m/%Y %H:%M:%S"},
}


def ras_lines(n: int) -> list[bytes]:
    return [b"[n%03d] %d.%03d kern.err disk%d: media error at sector %d" % (i % 200, T0 + i // 2000, i % 1000, i % 4, i)
            for i in range(n)]


def strptime_lines(n: int) -> list[bytes]:
    return [b"24/11/2026 16:%02d:%02d warning backup-%d done" % (i // 60000 % 60, i // 1000 % 60, i % 9)
            for i in range(n)]


READ = 256 * 1024           # what the tailer reads from a file per turn (helios.services.tailer.READ_LIMIT)
INPUT_BYTES = 20_000_000
INGEST = "ingest bench's input ({})"


def chunks_of(lines: list[bytes]) -> list[bytes]:
    return [b"".join(line + b"\n" for line in lines[i:i + CHUNK]) for i in range(0, len(lines), CHUNK)]


def reads_of(path: str) -> list[bytes]:
    """The first INPUT_BYTES of a file in reads of READ bytes, each cut after its last newline."""
    with open(path, "rb") as f:
        data = f.read(INPUT_BYTES)
    out, pos = [], 0
    while True:
        end = data.rfind(b"\n", pos, pos + READ) + 1
        if end <= pos:
            return out
        out.append(data[pos:end])
        pos = end


def runs(make, chunks: list[bytes], repeat: int) -> list[float]:
    """CPU seconds of each of ``repeat`` runs over ``chunks``, each with a new ``make()``."""
    make()(chunks[0])
    took = []
    for _ in range(repeat):
        fn = make()
        t = time.process_time()
        for c in chunks:
            fn(c)
        took.append(time.process_time() - t)
    return took


def best(fn, chunks: list[bytes], repeat: int) -> float:
    return min(runs(lambda: fn, chunks, repeat))


_SPLIT = re.compile(rb"^(\S+) (\S+) (\S+)", re.M)


def bare(chunk: bytes) -> None:
    _SPLIT.findall(chunk)
    chunk.split(b"\n")


def case_chunks(lines) -> list[bytes]:
    return reads_of(lines) if isinstance(lines, str) else chunks_of(lines)   # (a path: the ingest input)


def time_cases(cases: list, repeat: int) -> dict[str, list[float]]:
    """CPU seconds of each run of each case with the imported parser; a rule
    case that this parser cannot run (it has no rules) is left out. The
    collector is set as in the tailer's encoder workers (helios.gctune)."""
    gc.collect()
    try:
        from helios.gctune import tune_gc
        tune_gc()
    except ImportError:                     # (a tree from before it)
        pass
    took = {}
    for name, lines, rule in cases:
        chunks = case_chunks(lines)
        if rule:
            try:
                from helios.parsing.rules import compile_rules
                compiled = compile_rules([rule])
            except (ImportError, TypeError):
                continue
        else:
            compiled = ()

        def make():
            parser = Parser("auto", rules=compiled) if compiled else Parser("auto")
            return lambda c: parser.parse_chunk(c, NOW)

        took[name] = runs(make, chunks, repeat)
    return took


def time_in_child(tree: str, cases_file: str, repeat: int) -> dict[str, list[float]]:
    out = subprocess.run([sys.executable, __file__, "--child", tree, "--cases", cases_file, "--repeat", str(repeat)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--against", metavar="TREE", help="also time the parser of this checkout (e.g. /work/main)")
    ap.add_argument("--input", default=str(ROOT / "bench" / "out" / "input-20mb.log"),
                    help="the ingest bench's input (its first 20 MB; left out if missing)")
    ap.add_argument("--child", metavar="TREE", help=argparse.SUPPRESS)
    ap.add_argument("--cases", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:                          # one tree's timings, as JSON on the last line
        with open(args.cases, "rb") as f:
            print(json.dumps(time_cases(pickle.load(f), args.repeat)))
        return
    cases = [(name, lines, None) for name, lines in layouts(args.lines).items()]
    cases += [(name, strptime_lines(args.lines) if "strptime" in name else ras_lines(args.lines), rule)
              for name, rule in RULES.items()]
    if Path(args.input).is_file():
        cases.append((INGEST.format(Path(args.input).name), args.input, None))
    head = f"{'layout':<44} {'lines/s':>11} {'us/line':>8} {'(best)':>7} {'÷ re split':>10}"
    if args.against:
        head += f" {'other us/line':>13} {'(best)':>7} {'this ÷ other':>12}"
        # Both trees in processes of their own, alternating (this, other, other, this, ...).
        with tempfile.NamedTemporaryFile(suffix=".pickle") as f:
            pickle.dump(cases, f)
            f.flush()
            this: dict[str, list[float]] = {}
            other: dict[str, list[float]] = {}
            for r in range(args.repeat):
                for tree, into in ((str(ROOT), this), (args.against, other))[::1 if r % 2 == 0 else -1]:
                    for name, took in time_in_child(tree, f.name, 1).items():
                        into.setdefault(name, []).extend(took)
    else:
        this, other = time_cases(cases, args.repeat), {}
    print(head)
    for name, lines, _ in cases:
        chunks = case_chunks(lines)
        n = sum(c.count(b"\n") for c in chunks)
        floor = best(bare, chunks, args.repeat)
        took = statistics.median(this[name])
        row = (f"{name:<44} {n / took:>11,.0f} {took / n * 1e6:>8.3f} {min(this[name]) / n * 1e6:>7.3f}"
               f" {floor / took:>10.2f}")
        if name in other:
            was = statistics.median(other[name])
            row += f" {was / n * 1e6:>13.3f} {min(other[name]) / n * 1e6:>7.3f} {was / took:>12.2f}"
        print(row, flush=True)


if __name__ == "__main__":
    main()
