"""The live tail end to end: lines appended to a file, a tailer, two bucks,
``helios web`` and headless Chromium, all real processes.

Every line reaches both bucks, so the page hears it twice and must show it
once; a buck restart must not break the page.
"""

from __future__ import annotations

import json

from tests.helpers import poll_until
from tests.integration.webpage import all_delivered, messages, screenshot, set_filter, start_web


def append(path, lines):
    with open(path, "ab") as f:
        f.write(b"".join(lines))


def syslog(start, count, host="web-1", app="app", word="payload"):
    """Lines whose times grow with their number (the page shows lines in time order)."""
    return [b"Nov 23 10:%02d:%02d %s %s[42]: line %06d %s\n" % (i // 60 % 60, i % 60, host.encode(), app.encode(),
                                                              i, word.encode())
            for i in range(start, start + count)]


def text(line: bytes) -> str:
    return line.decode().rstrip("\n")


def mesh(tmp_path, procs, buck):
    """Two bucks, a tailer following an empty app.log, and helios web."""
    bucks = [buck("a"), buck("b")]
    pubs = [json.loads((data / "stats.json").read_text())["publish"] for _, _, data in bucks]
    log = tmp_path / "app.log"
    log.write_bytes(b"")
    args = ["tailer", "--path", str(log), "--env", "prod", "--start-at", "beginning",
            "--state-dir", str(tmp_path / "tailer-state")]
    for _, ep, _ in bucks:
        args += ["--buck", ep]
    procs(*args)
    web = start_web(procs, *pubs)
    return log, bucks, web


def warm_up(page, log, host="web-1") -> None:
    """Append warm-up lines until one shows in the page: the page's
    subscription has then reached the bucks. (Lines appended before that are
    never published; tests leave warm-up lines out of what they compare.)"""
    n = iter(range(10**6))
    poll_until(lambda: page.evaluate("window.heliosLive.received") or append(log, syslog(next(n), 1, host, word="warm-up")),
               timeout=20, interval=0.3, what="a first line in the page")


def payload(page) -> list[str]:
    """The tailed lines shown (not warm-up lines, nor the tailer's inventory records, live events too)."""
    return [m for m in messages(page) if "warm-up" not in m and " bytes seen, " not in m]


def until_payload(page, count: int, timeout: float = 20) -> list[str]:
    return poll_until(lambda: len(m := payload(page)) >= count and m, timeout=timeout, what=f"{count} lines in the page")


def test_lines_appended_to_a_tailed_file_appear_in_the_page_once_each(tmp_path, procs, buck, page_of):
    log, bucks, web = mesh(tmp_path, procs, buck)
    page = page_of(web.url)
    warm_up(page, log)
    lines = syslog(1000, 300)
    for i in range(0, 300, 50):
        append(log, lines[i:i + 50])
    until_payload(page, 300)
    # Every line came from both bucks (the status is refreshed once a second): once the
    # second copies have all arrived and the page has all the server sent, none may show.
    all_delivered(page, web, lambda s: s["counts"].get("duplicates", 0) >= 300)
    assert payload(page) == [text(ln) for ln in lines]
    screenshot(page, "live-tail-from-file.png", tmp_path)


def test_a_filter_applies_to_lines_from_the_tailed_file(tmp_path, procs, buck, page_of):
    log, bucks, web = mesh(tmp_path, procs, buck)
    page = page_of(web.url)
    set_filter(page, host="db-1")
    warm_up(page, log, host="db-1")
    # The last line (latest in the file and in time) shows once every line before it went through.
    shown = syslog(30, 5, host="db-1") + syslog(60, 1, host="db-1", word="last")
    append(log, syslog(10, 20, host="web-1") + shown[:5] + syslog(40, 20, host="web-2") + shown[5:])
    assert until_payload(page, 6) == [text(ln) for ln in shown]
    all_delivered(page, web)
    assert payload(page) == [text(ln) for ln in shown]


def test_a_buck_restart_does_not_break_the_page(tmp_path, procs, buck, page_of):
    log, bucks, web = mesh(tmp_path, procs, buck)
    (proc_a, _, data_a), (proc_b, _, data_b) = bucks
    page = page_of(web.url)
    warm_up(page, log)
    pub_b = json.loads((data_b / "stats.json").read_text())["publish"]
    chip = f'.buck[data-endpoint="{pub_b}"]'

    assert proc_b.stop() == 0
    poll_until(lambda: page.get_attribute(chip, "data-state") == "down", what="buck b shown down")
    during = syslog(100, 50, word="while-b-is-down")
    append(log, during)
    assert until_payload(page, 50) == [text(ln) for ln in during]  # through buck a

    proc_b.start()
    poll_until(lambda: page.get_attribute(chip, "data-state") == "connected", timeout=20,
               what="buck b shown connected again")
    after = syslog(200, 50, word="after-restart")
    append(log, after)
    assert until_payload(page, 100) == [text(ln) for ln in during + after]
    # Both bucks publish again: buck b's copies arrive and are dropped as duplicates.
    poll_until(lambda: next(b for b in web.status()["bucks"] if b["endpoint"] == pub_b)["events"] > 0,
               timeout=20, what="events from the restarted buck b")
    all_delivered(page, web)
    assert len(payload(page)) == 100
