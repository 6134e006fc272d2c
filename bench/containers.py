"""Container logs in the tailer's reading process: what joining costs, and
what a read with nothing to join costs instead.

The tailer joins the records the runtime split (``containers.join_lines``:
a JSON decode or a regex per record, in Python) only for reads that hold a
split record; a read of whole records is passed on as it is after
``containers.nothing_to_join`` looked at it (a few C scans), and the
encoders unwrap each record as they parse. This prints records/s of both on
the same chunks (256 KiB reads of Docker json-file and of CRI records) and
their ratio: what the scan saves a Docker host whose lines are short.

CPU time (process_time), best of ``--repeat`` runs: noisy on a busy machine.

    python bench/containers.py [--records 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helios.parsing import containers  # noqa: E402

READ = 256 * 1024   # the tailer's read per file and turn (helios.services.tailer.READ_LIMIT)


def records(kind: str, n: int) -> list[bytes]:
    text = "2024-03-11 08:15:02,118 INFO [main] com.example.Handler: request %d served in 12 ms"
    if kind == "docker":
        return [json.dumps({"log": text % i + "\n", "stream": "stdout", "time": "2024-03-11T08:15:02.118123456Z"},
                           separators=(",", ":")).encode() for i in range(n)]
    return [b"2024-03-11T08:15:02.118123456Z stdout F " + (text % i).encode() for i in range(n)]


def chunks(lines: list[bytes]) -> list[list[tuple[int, bytes]]]:
    out, cur, size, off = [], [], 0, 0
    for line in lines:
        cur.append((off, line))
        off += len(line) + 1
        size += len(line) + 1
        if size >= READ:
            out.append(cur)
            cur, size = [], 0
    return out + ([cur] if cur else [])


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"{'records':<8} {'join_lines':>16} {'nothing_to_join':>18} {'ratio':>8}")
    for kind in ("docker", "cri"):
        parts = chunks(records(kind, args.records))
        datas = [b"".join(line + b"\n" for _, line in part) for part in parts]
        assert all(containers.nothing_to_join(d) for d in datas)

        def join():
            pending: list = []
            for part in parts:
                _, pending = containers.join_lines(pending, part)

        def scan():
            for d in datas:
                containers.nothing_to_join(d)

        j, s = best(join, args.repeat), best(scan, args.repeat)
        print(f"{kind:<8} {args.records / j:>12,.0f} r/s {args.records / s:>14,.0f} r/s {j / s:>7.0f}x")


if __name__ == "__main__":
    main()
