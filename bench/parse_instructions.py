"""Parser cost in CPU instructions per line (valgrind's callgrind), which a
busy machine does not blur as it does time: this tree's parser and, with
``--against TREE``, another checkout's, on the same lines, and the ratio.

Each case is 2,000 lines of one shape parsed ``--chunks`` times by one
``Parser("auto")``; the count of a run that only imports the parser is taken
off, and what is left is divided by the lines. ``PYTHONHASHSEED=0``; counts
still move by a few percent from run to run (allocation, caches), so read a
ratio under about 1.05 as "the same".

    python bench/parse_instructions.py [--against /work/main] [--chunks 10] [CASE ...]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
N = 2000
CASES = {
    "rfc3164": lambda i: b"Nov 24 16:00:%02d web-%d sshd[%d]: Accepted publickey for root" % (
        i // 1000 % 60, i % 9, 100 + i % 50),
    "rfc3164 loose": lambda i: b"<134>Mar 1 16:00:%02d dhcpd[%d]: DHCPACK on 10.0.%d.%d" % (
        i // 1000 % 60, 4000 + i % 50, i % 250, i % 200),
    "log4j": lambda i: b"2026-11-24 16:00:%02d,%03d INFO [main] org.example.Service: request %d done" % (
        i // 1000 % 60, i % 1000, i),
    "tomcat": lambda i: b"24-Nov-2026 16:00:%02d.%03d INFO [main] org.apache.catalina.startup.Catalina.start r %d" % (
        i // 1000 % 60, i % 1000, i),
    "redis": lambda i: b"1:M 24 Nov 2026 16:00:%02d.%03d * DB saved on disk %d" % (i // 1000 % 60, i % 1000, i),
    "rust tracing": lambda i: b"2026-11-24T16:00:%02d.%06dZ  INFO my_crate::db: query %d done" % (
        i // 1000 % 60, i % 10**6, i),
    "plain text": lambda i: b"the quick brown fox %d jumps over the lazy dog" % i,
    "stack trace": lambda i: b"\tat org.apache.catalina.core.StandardEngine.start(StandardEngine.java:%d)" % i,
}


def child(tree: str, case: str, chunks: int) -> None:
    sys.path.insert(0, tree)
    from helios.parse import Parser
    if case == "-":
        return
    chunk = b"\n".join(CASES[case](i) for i in range(N)) + b"\n"
    parser = Parser()
    for k in range(chunks):
        parser.parse_chunk(chunk, 1_764_000_000 * 10**9 + k)


def instructions(tree: str, case: str, chunks: int) -> int:
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                          __file__, "--child", tree, "--case", case, "--chunks", str(chunks)],
                         capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"}, check=True)
    m = re.search(r"Collected : (\d+)", out.stderr)
    if m is None:
        raise SystemExit(f"no count from callgrind:\n{out.stderr[-2000:]}")
    return int(m[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cases", nargs="*", help=f"default: all ({', '.join(CASES)})")
    ap.add_argument("--against", metavar="TREE", help="also count the parser of this checkout")
    ap.add_argument("--chunks", type=int, default=10)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.case, args.chunks)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed")
    trees = [str(ROOT)] + ([str(Path(args.against).resolve())] if args.against else [])
    base = {t: instructions(t, "-", args.chunks) for t in trees}
    lines = N * args.chunks
    print(f"{'case':<16}{'instr/line':>12}" + (f"{'other':>12}{'this ÷ other':>14}" if args.against else ""))
    for case in args.cases or CASES:
        per = [(instructions(t, case, args.chunks) - base[t]) / lines for t in trees]
        print(f"{case:<16}{per[0]:>12,.0f}" + (f"{per[1]:>12,.0f}{per[0] / per[1]:>14.3f}" if args.against else ""))


if __name__ == "__main__":
    main()
