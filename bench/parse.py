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

CPU time (process_time), best of ``--repeat`` runs: on a busy machine the
figures are noisy; compare the ratios.

    python bench/parse.py [--lines 100000] [--repeat 5] [--against /work/main]
"""

from __future__ import annotations

import argparse
import json
import pickle
import random
import re
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


def chunks_of(lines: list[bytes]) -> list[bytes]:
    return [b"".join(line + b"\n" for line in lines[i:i + CHUNK]) for i in range(0, len(lines), CHUNK)]


def best(fn, chunks: list[bytes], repeat: int) -> float:
    fn(chunks[0])
    b = float("inf")
    for _ in range(repeat):
        t = time.process_time()
        for c in chunks:
            fn(c)
        b = min(b, time.process_time() - t)
    return b


_SPLIT = re.compile(rb"^(\S+) (\S+) (\S+)", re.M)


def bare(chunk: bytes) -> None:
    _SPLIT.findall(chunk)
    chunk.split(b"\n")


def time_cases(cases: list, repeat: int) -> dict[str, float]:
    """Best CPU seconds of each case with the imported parser; a rule case
    that this parser cannot run (it has no rules) is left out."""
    took = {}
    for name, lines, rule in cases:
        chunks = chunks_of(lines)
        if rule:
            try:
                from helios.parsing.rules import compile_rules
                parser = Parser("auto", rules=compile_rules([rule]))
            except (ImportError, TypeError):
                continue
        else:
            parser = Parser("auto")
        took[name] = best(lambda c: parser.parse_chunk(c, NOW), chunks, repeat)
    return took


def time_in_child(tree: str, cases_file: str, repeat: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", tree, "--cases", cases_file, "--repeat", str(repeat)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--against", metavar="TREE", help="also time the parser of this checkout (e.g. /work/main)")
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
    head = f"{'layout':<44} {'lines/s':>11} {'÷ re split':>10}"
    if args.against:
        head += f" {'other lines/s':>14} {'this ÷ other':>12}"
        # Both trees in processes of their own, alternating (this, other, other, this, ...).
        with tempfile.NamedTemporaryFile(suffix=".pickle") as f:
            pickle.dump(cases, f)
            f.flush()
            this: dict[str, float] = {}
            other: dict[str, float] = {}
            for r in range(args.repeat):
                for tree, into in ((str(ROOT), this), (args.against, other))[::1 if r % 2 == 0 else -1]:
                    for name, took in time_in_child(tree, f.name, 1).items():
                        into[name] = min(took, into.get(name, float("inf")))
    else:
        this, other = time_cases(cases, args.repeat), {}
    print(head)
    for name, lines, _ in cases:
        floor = best(bare, chunks_of(lines), args.repeat)
        took = this[name]
        row = f"{name:<44} {len(lines) / took:>11,.0f} {floor / took:>10.2f}"
        if name in other:
            row += f" {len(lines) / other[name]:>14,.0f} {other[name] / took:>12.2f}"
        print(row, flush=True)


if __name__ == "__main__":
    main()
