"""The live page's "missed" counts only what that page missed: events read
by `helios subscribe` while no page was open are not a gap of the page
opened later (issue 21: "6,310 missed" in orange after a subscribe)."""

from __future__ import annotations

import json

from tests.helpers import poll_until
from tests.integration.test_web_mesh import append, payload, syslog, until_payload, warm_up
from tests.integration.webpage import start_web


def test_a_page_opened_after_a_subscriber_read_the_feed_shows_nothing_missed(tmp_path, procs, buck, page_of):
    _, ingest, data = buck("a")
    pub = json.loads((data / "stats.json").read_text())["publish"]
    log = tmp_path / "app.log"
    log.write_bytes(b"")
    procs("tailer", "--path", str(log), "--env", "prod", "--start-at", "beginning",
          "--state-dir", str(tmp_path / "tailer-state"), "--buck", ingest, "--copies", "1")
    web = start_web(procs, pub)

    first = page_of(web.url)
    warm_up(first, log)
    append(log, syslog(0, 20))
    until_payload(first, 20)
    first.context.close()  # no page open now: the web process unsubscribes
    poll_until(lambda: web.status()["counts"]["sessions"] == 0, what="the page to be gone")

    # A subscriber reads the feed meanwhile: the buck publishes for it alone.
    sub = procs("subscribe", "--feed", pub, "-o", "raw", name="subscribe")
    poll_until(lambda: append(log, syslog(100, 1, word="sub-warm-up")) or "sub-warm-up" in sub.output(),
               timeout=20, interval=0.3, what="the subscriber to read")
    append(log, syslog(1000, 300))
    poll_until(lambda: "line 001299" in sub.output(), timeout=20, what="the subscriber to read every line")
    sub.stop()

    second = page_of(web.url)
    warm_up(second, log)
    append(log, syslog(2000, 20))
    poll_until(lambda: sum("line 0020" in m for m in payload(second)) >= 20, what="the second page's lines")
    before = web.status()["bucks"][0]["events"]
    append(log, syslog(3000, 20))
    status = poll_until(lambda: (s := web.status())["bucks"][0]["events"] >= before + 20 and s,
                        what="the web's status to count the second page's lines")
    assert [b["missed"] for b in status["bucks"]] == [0], status
    assert second.locator(".missed").count() == 0
