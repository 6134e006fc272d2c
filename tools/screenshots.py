"""Take README's screenshots of the web pages over a real small mesh.

    PYTHONPATH=. .venv/bin/python tools/screenshots.py [--out docs/screenshots] [--seconds 60]

Starts ``helios demo`` (two bucks, a tailer, the porter, a history server and
the web, with its generator), lets it run ``--seconds``, then drives Debian's
Chromium (Playwright) over its pages and saves:

  live-tail.png        the live tail, following
  search-page.png      the search page: histogram by severity, field sidebar, hits
  search-context.png   a hit opened on its context (the lines around it in its source)
  archie.png           archie with a history request built and ready

Then stops the demo (Ctrl-C, as a user would). Nothing is mocked: what the
pictures show is what ``make demo`` shows.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
VIEW = {"width": 1400, "height": 900}


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def until(check, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"screenshots: gave up waiting for {what} after {timeout:.0f} s")
        time.sleep(interval)


class DemoRun:
    """``helios demo`` in a folder of its own; its output is kept and parsed."""

    def __init__(self, workdir: str, rate: int) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "helios", "demo", "--dir", workdir, "--rate", str(rate), "--no-journal"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def url(self) -> str | None:
        if self.proc.poll() is not None:
            raise SystemExit("screenshots: the demo stopped:\n" + "\n".join(self.lines[-20:]))
        for line in self.lines:
            m = re.search(r"live tail (http://\S+/)", line)
            if m:
                return m.group(1)
        return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def wait_js(page, expression: str, timeout: float, what: str):
    # page.evaluate, not wait_for_function: the pages' CSP refuses eval.
    return until(lambda: page.evaluate(expression), timeout, what)


def settled(page) -> None:
    wait_js(page, "window.heliosSearch && heliosSearch.searches > 0 && heliosSearch.histograms > 0 "
                  "&& heliosSearch.facets > 0 && !heliosSearch.busy", 60, "the search page's answers")


def shoot(url: str, out: Path, started: float) -> None:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        context = browser.new_context(viewport=VIEW, timezone_id="UTC")
        page = context.new_page()

        page.goto(url)
        page.locator("#lines .l").nth(40).wait_for(timeout=30_000)
        page.wait_for_timeout(1000)  # a second of lines/s on the meter
        page.screenshot(path=str(out / "live-tail.png"))
        print("live-tail.png")

        start, end = iso(started), iso(time.time())
        page.goto(f"{url}search?env=demo&start={start}&end={end}")
        settled(page)
        page.screenshot(path=str(out / "search-page.png"))
        print("search-page.png")

        page.goto(f"{url}search?env=demo&start={start}&end={end}&q=declined")
        settled(page)
        page.locator("#s-results .hit .ctx-btn").nth(2).click()
        wait_js(page, "heliosSearch.contexts >= 1", 30, "a hit's context")
        page.screenshot(path=str(out / "search-context.png"))
        print("search-context.png")

        page.goto(f"{url}archie")
        page.fill("#a-env", "demo")
        page.fill("#a-start", start)
        page.fill("#a-end", iso(time.time() - 30))
        page.click("#a-go")
        until(lambda: "ready" in page.inner_text("#a-rows"), 180, "the history request to be ready")
        page.wait_for_timeout(500)
        page.set_viewport_size({"width": VIEW["width"], "height": 200})  # one request: no empty page below it
        page.screenshot(path=str(out / "archie.png"))
        print("archie.png")
        browser.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="docs/screenshots", help="folder of the PNGs (default: %(default)s)")
    ap.add_argument("--seconds", type=float, default=60.0, help="how long the demo runs first (default: %(default)s)")
    ap.add_argument("--rate", type=int, default=100, help="the generator's lines/s (default: %(default)s)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="helios-shots-") as workdir:
        started = time.time()
        demo = DemoRun(workdir, args.rate)
        try:
            url = until(demo.url, 120, "the demo's web address")
            print(f"demo at {url}; running {args.seconds:.0f} s", flush=True)
            until(lambda: time.time() - started >= args.seconds, args.seconds + 5, "the demo to run", 1.0)
            shoot(url, Path(args.out), started)
        finally:
            demo.stop()


if __name__ == "__main__":
    main()
