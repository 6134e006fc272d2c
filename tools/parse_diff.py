"""What a parser change changes: ``helios parse-test`` over log files, by
another revision's parser and by this tree's, and the difference.

    python tools/parse_diff.py [--base REV | --base-tree DIR] [--tree DIR] [--now TIME] [FILE ...]

``REV`` (default ``HEAD``) is exported with ``git archive`` into a temporary
directory and run from there (``PYTHONPATH``), so the tree of a running
change is compared with its last commit without touching the checkout;
``--base-tree`` and ``--tree`` name the two trees (holding ``helios/``) instead.
The files default to every loghub sample (``../shared/data/loghub/*.log``).
Both runs use the same ``--now`` and ``TZ=UTC``, so the output depends on
nothing but the parser. Prints a unified diff per file that changed and a
count; exit code 0 when nothing changed, 1 when something did.
"""

from __future__ import annotations

import argparse
import difflib
import glob
import os
import pathlib
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent.parent
LOGHUB = HERE.parent / "shared" / "data" / "loghub"


def parse_test(tree: pathlib.Path, file: str, now: str) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(tree), "TZ": "UTC"}
    out = subprocess.run([sys.executable, "-m", "helios", "parse-test", file, "--now", now],
                         env=env, capture_output=True, check=False, cwd=tree)
    if out.returncode not in (0, 1):
        raise SystemExit(f"parse-test {file} failed in {tree}:\n{out.stderr.decode()}")
    return out.stdout.decode("utf-8", "replace").splitlines(keepends=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*")
    ap.add_argument("--base", default="HEAD", help="git revision whose parser is the 'before' (default HEAD)")
    ap.add_argument("--base-tree", metavar="DIR", help="a tree whose helios/ is the 'before' (instead of --base)")
    ap.add_argument("--tree", metavar="DIR", default=str(HERE), help="the tree whose helios/ is the 'after' (this one)")
    ap.add_argument("--now", default="2026-12-06T12:00:00Z", help="the read time both runs use")
    args = ap.parse_args(argv)
    files = args.files or sorted(glob.glob(str(LOGHUB / "*.log")))
    if not files:
        raise SystemExit(f"no files given and none in {LOGHUB}")
    changed = 0
    with tempfile.TemporaryDirectory(prefix="parse-diff-") as tmp:
        if args.base_tree:
            base, label = pathlib.Path(args.base_tree), args.base_tree
        else:
            base, label = pathlib.Path(tmp), args.base
            archive = subprocess.run(["git", "-C", str(HERE), "archive", args.base, "helios"],
                                     capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
        tree = pathlib.Path(args.tree)
        for file in files:
            before = parse_test(base, os.path.abspath(file), args.now)
            after = parse_test(tree, os.path.abspath(file), args.now)
            diff = list(difflib.unified_diff(before, after, f"{label}:{file}", f"{tree}:{file}", n=1))
            if diff:
                changed += sum(1 for d in diff if d.startswith("+") and not d.startswith("+++"))
                sys.stdout.writelines(diff)
    print(f"# {len(files)} files, {changed} output lines changed")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
