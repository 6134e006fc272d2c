"""Parser throughput: lines/s per layout and per rule kind, in one run.

Each layout is a made-up file of 100,000 lines of a real shape, parsed in
chunks of 2,000 lines (what a tailer batch holds) by ``Parser("auto")``; rule
kinds run the same RAS-style lines through a regex rule, a grok rule, and
rules whose time is epoch or strptime. Same-run comparisons:

- ``re split``: a bare ``findall`` of ``^(\\S+) (\\S+) (\\S+)`` over the chunk
  plus ``split(b"\\n")``: the floor any regex parser pays;
- with ``--against TREE``: the parser of another checkout (say the main
  branch, to see what a change costs), on the same chunks.

CPU time (process_time), best of ``--repeat`` runs: on a busy machine the
figures are noisy; compare the ratios.

    python bench/parse.py [--lines 100000] [--repeat 5] [--against /work/main]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from helios import loadgen
from helios.parse import Parser
from helios.parsing.rules import compile_rules

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


def other_parser(tree: str):
    spec = importlib.util.spec_from_file_location("other_parse", Path(tree) / "helios" / "parse.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, tree)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(tree)
    return module.Parser


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--against", metavar="TREE", help="also time the parser of this checkout (e.g. /work/main)")
    args = ap.parse_args()
    other = other_parser(args.against) if args.against else None
    cases = [(name, lines, None) for name, lines in layouts(args.lines).items()]
    cases += [(name, strptime_lines(args.lines) if "strptime" in name else ras_lines(args.lines), rule)
              for name, rule in RULES.items()]
    head = f"{'layout':<44} {'lines/s':>11} {'÷ re split':>10}"
    if other:
        head += f" {'other lines/s':>14} {'this ÷ other':>12}"
    print(head)
    for name, lines, rule in cases:
        chunks = chunks_of(lines)
        parser = Parser("auto", rules=compile_rules([rule]) if rule else ())
        took = best(lambda c: parser.parse_chunk(c, NOW), chunks, args.repeat)
        floor = best(bare, chunks, args.repeat)
        rate = len(lines) / took
        row = f"{name:<44} {rate:>11,.0f} {floor / took:>10.2f}"
        if other and rule is None:
            old = other("auto")
            other_took = best(lambda c: old.parse_chunk(c, NOW), chunks, args.repeat)
            row += f" {len(lines) / other_took:>14,.0f} {other_took / took:>12.2f}"
        print(row, flush=True)


if __name__ == "__main__":
    main()
