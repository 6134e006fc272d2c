"""The soak: the fault harness (``tests/torture.py``) over many seeds.

Each seed is one run of the harness: a writer rotating app.log every way
(rename, copytruncate, truncation, deletion; old rotations gzip, bzip2 or
zstd compressed and deleted), 1 MiB and binary lines, while the tailer, the
bucks and the porter are killed with -9 or SIGSTOPped, all drawn from the
seed; then every line must be in the index export exactly once and
``helios audit`` must agree. The variants cycle: ``mixed`` (follow
app.log), ``glob`` (follow ``app.log*``: the rotated and compressed siblings
match too), ``down2gz`` (the tailer down across two gzipped rotations),
``stop2ct`` (the tailer SIGSTOPped, behind, across two copytruncates),
``killct`` (kill -9 of the tailer within a second of each rotation),
``stopct`` (the tailer SIGSTOPped just after a rename, app.log copytruncated
and written past its offset before SIGCONT).

    python bench/torture.py                      # >= 100 seeds and >= 30 minutes (make soak)
    python bench/torture.py --seeds 3 --minutes 0 --first-seed 1000

It prints one line per seed (a failing one with its replay command), then a
summary: seeds passed and failed, lines written, lost (and lost by design:
a file deleted while the tailer was down), duplicated, garbage events,
and how often the audit agreed, with the ratio of lines lost per million
written. Run directories of failing seeds are kept under ``--keep``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests import torture  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=100, help="At least this many seeds. [100]")
    ap.add_argument("--minutes", type=float, default=30.0, help="... and at least this many minutes. [30]")
    ap.add_argument("--first-seed", type=int, default=int(time.time()) % 1_000_000,
                    help="The first seed; the next ones follow. [from the clock]")
    ap.add_argument("--variants", default="mixed,glob,mixed,down2gz,mixed,stop2ct,mixed,killct,mixed,stopct",
                    help="The variants, cycled over the seeds. [mixed,glob,mixed,down2gz,mixed,stop2ct,mixed,killct,"
                    "mixed,stopct]")
    ap.add_argument("--duration", type=float, default=None, help="Seconds of writing per seed. [drawn]")
    ap.add_argument("--keep", default=str(Path(tempfile.gettempdir()) / "helios-soak"),
                    help="Where the run directories of failing seeds are kept.")
    a = ap.parse_args(argv)
    variants = [v.strip() for v in a.variants.split(",") if v.strip()]
    keep = Path(a.keep)
    keep.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    results = []
    seed = a.first_seed
    while len(results) < a.seeds or time.monotonic() - began < a.minutes * 60:
        variant = variants[len(results) % len(variants)]
        work = Path(tempfile.mkdtemp(prefix=f"soak-{seed}-"))
        res = torture.run(torture.make_plan(seed, variant, a.duration), work)
        results.append(res)
        print(res.line(), flush=True)
        if res.ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            dest = keep / work.name
            shutil.move(str(work), dest)
            print(f"  the run's files: {dest}", flush=True)
        seed += 1
    return summary(results, time.monotonic() - began)


def summary(results: list, seconds: float) -> int:
    failed = [r for r in results if not r.ok]
    lines = sum(r.lines for r in results)
    lost = sum(r.lost for r in results)
    print()
    print(f"soak: {len(results)} seeds in {seconds / 60:.1f} min: {len(results) - len(failed)} passed, "
          f"{len(failed)} failed")
    print(f"  lines written      {lines:,}")
    print(f"  lost               {lost:,}  ({lost / max(lines, 1) * 1e6:,.1f} per million written)")
    print(f"  lost by design     {sum(r.lost_by_design for r in results):,}  (files gone while the tailer was down; "
          f"{sum(r.unseen_by_design for r in results):,} of files it never saw)")
    print(f"  duplicated         {sum(r.duplicated for r in results):,}")
    print(f"  garbage events     {sum(r.garbage for r in results):,}")
    print(f"  unmarked pieces    {sum(r.unmarked_pieces for r in results):,}")
    print(f"  audit agreed       {sum(r.audit_agrees for r in results)} of {len(results)} "
          f"(ratio {sum(r.audit_agrees for r in results) / max(len(results), 1):.2f})")
    print(f"  index audit agreed {sum(r.index_audit_agrees for r in results)} of {len(results)} "
          f"(ratio {sum(r.index_audit_agrees for r in results) / max(len(results), 1):.2f})")
    print(f"  runs that broke    {sum(bool(r.error) for r in results)}")
    by_variant: dict[str, list] = {}
    for r in results:
        by_variant.setdefault(r.variant, []).append(r)
    for v, rs in sorted(by_variant.items()):
        print(f"  {v:<8} {sum(r.ok for r in rs)}/{len(rs)} passed")
    for r in failed[:20]:
        print(f"  failed seed {r.seed} ({r.variant}): {r.replay}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
