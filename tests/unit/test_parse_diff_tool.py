"""tools/parse_diff.py, the before/after check of a parser change, caught
breaking the parser on purpose: the same parser twice shows no change; a
tree whose Redis severities were swapped shows exactly the lines it misreads."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
TOOL = ROOT / "tools" / "parse_diff.py"

LINES = (b"23888:M 06 Apr 2020 18:29:27.394 * Ready to accept connections\n"
         b"Dec  5 17:42:15 web-1 sshd[42]: Accepted publickey for root\n"
         b"23888:M 06 Apr 2020 18:29:27.392 # Server initialized\n")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True, timeout=120)


def test_same_parser_shows_no_change_and_a_broken_one_shows_its_lines(tmp_path):
    sample = tmp_path / "redis.log"
    sample.write_bytes(LINES)
    before, after = tmp_path / "before", tmp_path / "after"
    for tree in (before, after):
        shutil.copytree(ROOT / "helios", tree / "helios", ignore=shutil.ignore_patterns("__pycache__"))

    same = run("--base-tree", str(before), "--tree", str(after), str(sample))
    assert same.returncode == 0, same.stdout + same.stderr
    assert "0 output lines changed" in same.stdout

    layouts = after / "helios" / "parsing" / "layouts.py"
    text = layouts.read_text()
    assert 'REDIS_SEVERITY = {b".": 7, b"-": 6, b"*": 5, b"#": 4}' in text
    layouts.write_text(text.replace('b"*": 5', 'b"*": 3'))     # notice misread as error

    broken = run("--base-tree", str(before), "--tree", str(after), str(sample))
    assert broken.returncode == 1
    changed = [line for line in broken.stdout.splitlines() if line.startswith("+") and not line.startswith("+++")]
    assert len(changed) == 1 and "severity=err" in changed[0], broken.stdout
    assert "1 output lines changed" in broken.stdout
