"""What the analyses in this folder share: a markdown report with its PNG
figures, the run's provenance, medians, and helios processes to start and stop.

An analysis builds a ``Report``, adds text, tables and figures (matplotlib,
Agg backend: no display needed), and ``write``s it as ``OUT/NAME.md`` with
the figures under ``OUT/NAME/``; the report names the exact command that
produced it, so anyone can run it again.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_OUT = ROOT / "docs" / "analyses"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def median(xs):
    xs = list(xs)
    return statistics.median(xs) if xs else float("nan")


def provenance() -> str:
    """One sentence: when, at which commit, on what machine, how loaded."""
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip() or "unknown"
    return (f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC at commit {rev} (plus the "
            f"working tree) on {platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"load average {os.getloadavg()[0]:.1f} at the end (other work shared the machine).")


def command_line() -> str:
    """The command that ran this analysis, as typed from the repository root."""
    script = Path(sys.argv[0]).resolve()
    try:
        script = script.relative_to(ROOT)
    except ValueError:
        pass
    return " ".join([".venv/bin/python", shlex.quote(str(script)), *map(shlex.quote, sys.argv[1:])])


class Report:
    """A markdown document and its figures, written by ``write``."""

    def __init__(self, name: str, out: Path, title: str) -> None:
        self.name = name
        self.out = Path(out)
        self.fig_dir = self.out / name
        self.fig_dir.mkdir(parents=True, exist_ok=True)
        self.parts: list[str] = [f"# {title}\n"]
        self.figures: list[Path] = []
        self.data: dict = {}

    def text(self, *paragraphs: str) -> None:
        self.parts.extend(p.strip("\n") + "\n" for p in paragraphs)

    def table(self, header: list[str], rows: list[list], align: str | None = None) -> None:
        align = align or "l" + "r" * (len(header) - 1)
        rule = ["---:" if a == "r" else "---" for a in align]
        lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
        lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
        self.parts.append("\n".join(lines) + "\n")

    def figure(self, fig, stem: str, caption: str) -> Path:
        path = self.fig_dir / f"{stem}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        self.figures.append(path)
        self.parts.append(f"![{caption}]({self.name}/{path.name})\n\n*{caption}*\n")
        return path

    def write(self) -> Path:
        path = self.out / f"{self.name}.md"
        path.write_text("\n".join(self.parts))
        (self.fig_dir / "results.json").write_text(json.dumps(self.data, indent=1, default=str))
        return path


def fmt_int(x) -> str:
    return f"{x:,.0f}"


def fmt_pct(x, digits: int = 2) -> str:
    return f"{100 * x:.{digits}f} %"


def helios(args: list[str], logfile: Path, **kw) -> subprocess.Popen:
    """A helios command as its own process, its output in ``logfile``."""
    out = open(logfile, "ab")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "helios", "--log-level", "warning", *args], stdout=out,
                            stderr=subprocess.STDOUT, cwd=ROOT, env=env, **kw)


def stop(procs: list[subprocess.Popen], timeout: float = 30.0) -> None:
    """SIGTERM each (by its own pid), then wait; kill what does not stop."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def wait_for(check, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
