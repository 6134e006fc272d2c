"""The browser live tail in headless Chromium, fed by live feeds of our own.

Each test starts a real ``helios web`` process and opens its page in Debian's
Chromium, driven by Playwright. The bucks are stood in for by XPUB sockets
that publish real live messages (``helios.wire.live``): an XPUB sees the
page's subscription arrive, so a test publishes only once it would be heard.
The whole mesh (tailer, bucks, web, browser) is in ``test_web_mesh.py``.

Set HELIOS_SCREENSHOTS=DIR to keep the screenshots the tests take.
"""

from __future__ import annotations

import time

from tests.helpers import poll_until
from tests.integration.webpage import all_delivered, event, messages, screenshot, set_filter, start_web, until_shown, visible

# --- the tests ---

def test_published_events_appear_in_the_page_with_their_fields_and_a_colour_by_severity(procs, fake_buck, page_of,
                                                                                        tmp_path):
    buck = fake_buck()
    web = start_web(procs, buck.endpoint)
    page = page_of(web.url)
    buck.wait_subscribed()
    sevs = [0, 2, 3, 4, 5, 6, 7, None]
    buck.publish([event(i, f"message {i} severity {s}", host=f"db-{i}", app="postgres", severity=s)
                  for i, s in enumerate(sevs)])
    assert until_shown(page, len(sevs)) == [f"message {i} severity {s}" for i, s in enumerate(sevs)]
    poll_until(lambda: len(visible(page)) == len(sevs), what="every line drawn")
    rows = visible(page)
    assert [cls for cls, _, _ in rows] == ["l s0", "l s2", "l s3", "l s4", "l s5", "l s6", "l s7", "l sx"]
    assert rows[3][1][1:] == ["prod", "db-3", "postgres", "warning", "message 3 severity 4"]
    colours = page.eval_on_selector_all("#lines .l:not([style*='none']) > .v",
                                        "els => els.map(e => getComputedStyle(e).color)")
    assert len(set(colours)) >= 5, colours  # emerg, err, warning, notice, info, debug differ
    screenshot(page, "live-tail-severities.png", tmp_path)


def test_markup_in_a_message_is_shown_as_text_never_run(procs, fake_buck, page_of):
    buck = fake_buck()
    web = start_web(procs, buck.endpoint)
    page = page_of(web.url)
    buck.wait_subscribed()
    evil = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script> & "quotes"'
    buck.publish([event(1, evil, host="<b>h</b>")])
    assert until_shown(page, 1) == [evil]
    poll_until(lambda: visible(page), what="the line drawn")
    [(_, columns, _)] = visible(page)
    assert columns[2] == "<b>h</b>" and columns[5] == evil
    assert page.evaluate("window.pwned === undefined")
    page.fill("#highlight", "img")  # the highlight writes markup of its own around the text
    poll_until(lambda: "<mark>" in visible(page)[0][2], what="the highlight")
    assert visible(page)[0][1][5] == evil and page.evaluate("window.pwned === undefined")


def test_the_copy_of_an_event_from_the_second_buck_is_shown_once_and_streams_merge_in_time_order(
        procs, fake_buck, page_of):
    a, b = fake_buck(name="a"), fake_buck(name="b")
    web = start_web(procs, a.endpoint, b.endpoint)
    page = page_of(web.url)
    a.wait_subscribed()
    b.wait_subscribed()
    t0 = time.time_ns()
    evs = [event(i, f"line {i}", t=t0 + i * 1000) for i in range(40)]
    a.publish(evs[1::2])          # a has the odd lines first...
    b.publish(evs[0::2])          # ... b the even ones: within the merge delay, they interleave
    a.publish(evs[0::2])          # then each sends the other's: every line twice
    b.publish(evs[1::2])
    poll_until(lambda: web.status()["counts"].get("duplicates", 0) == 40, what="40 copies dropped")
    assert until_shown(page, 40) == [f"line {i}" for i in range(40)]
    all_delivered(page, web)      # nothing more can come
    assert len(messages(page)) == 40


def test_a_filter_typed_in_the_page_is_applied_on_the_server(procs, fake_buck, page_of):
    buck = fake_buck()
    web = start_web(procs, buck.endpoint)
    page = page_of(web.url)
    buck.wait_subscribed()
    set_filter(page, host="web-2", severity="4", text="disk")
    buck.publish([event(1, "disk full", host="web-1", severity=3),     # other host
                  event(2, "disk full", host="web-2", severity=3),     # shown
                  event(3, "disk ok", host="web-2", severity=6),       # info: not severe enough
                  event(4, "cpu hot", host="web-2", severity=4),       # no "disk"
                  event(5, "DISK slow", host="web-2", severity=4)])    # shown: case ignored
    assert until_shown(page, 2) == ["disk full", "DISK slow"]
    all_delivered(page, web, lambda s: s["counts"].get("unique", 0) >= 5)  # all five reached the server
    assert messages(page) == ["disk full", "DISK slow"]
    [session] = web.status()["sessions"]
    assert session["sent"] == 2  # the others never left the server
    assert "host=web-2" in page.text_content(".l.marker .m")


def test_a_regex_filter_shows_only_matching_lines(procs, fake_buck, page_of):
    buck = fake_buck()
    web = start_web(procs, buck.endpoint)
    page = page_of(web.url)
    buck.wait_subscribed()
    set_filter(page, text=r"status=5\d\d", regex=True)
    buck.publish([event(i, f"GET /x status={code}") for i, code in enumerate([200, 503, 404, 500])])
    assert until_shown(page, 2) == ["GET /x status=503", "GET /x status=500"]


def test_a_bad_regex_is_refused_with_the_reason_and_the_previous_filter_stays(procs, fake_buck, page_of):
    buck = fake_buck()
    web = start_web(procs, buck.endpoint)
    page = page_of(web.url)
    buck.wait_subscribed()
    set_filter(page, host="web-2")
    set_filter(page, text="(unclosed", regex=True)
    assert page.is_visible("#filter-error")
    assert "not a valid regular expression: missing )" in page.text_content("#filter-error")
    buck.publish([event(1, "a", host="web-1"), event(2, "(unclosed b", host="web-2")])
    assert until_shown(page, 1) == ["(unclosed b"]
    set_filter(page, text="(unclosed", regex=False)
    assert not page.is_visible("#filter-error")


def test_pause_holds_new_lines_and_resume_shows_every_one(procs, fake_buck, page_of):
    buck = fake_buck()
    web = start_web(procs, buck.endpoint)
    page = page_of(web.url)
    buck.wait_subscribed()
    buck.publish([event(i) for i in range(10)])
    until_shown(page, 10)
    page.click("#pause")
    buck.publish([event(i) for i in range(10, 510)])
    poll_until(lambda: "500 lines held" in page.text_content("#paused"), what="500 lines held")
    assert len(messages(page)) == 10
    page.click("#pause")
    shown = until_shown(page, 510)
    assert shown == [f"line {i:06d} GET /index.html 200" for i in range(510)]
    assert not page.is_visible("#dropped")


def test_clear_empties_the_page_and_new_lines_follow(procs, fake_buck, page_of):
    buck = fake_buck()
    web = start_web(procs, buck.endpoint)
    page = page_of(web.url)
    buck.wait_subscribed()
    buck.publish([event(i) for i in range(5)])
    until_shown(page, 5)
    page.click("#clear")
    assert messages(page) == []
    poll_until(lambda: page.text_content("#shown") == "0" and visible(page) == [], what="an empty page")
    buck.publish([event(5, "after clear")])
    assert until_shown(page, 1) == ["after clear"]


def test_highlight_marks_the_word_in_shown_and_new_lines(procs, fake_buck, page_of):
    buck = fake_buck()
    web = start_web(procs, buck.endpoint)
    page = page_of(web.url)
    buck.wait_subscribed()
    buck.publish([event(1, "user Alice logged in"), event(2, "user bob logged in")])
    until_shown(page, 2)
    page.fill("#highlight", "alice")
    poll_until(lambda: any("hl" in cls for cls, _, _ in visible(page)), what="the highlight")
    assert [html for _, _, html in visible(page)] == ["user <mark>Alice</mark> logged in", "user bob logged in"]
    buck.publish([event(3, "alice again")])
    until_shown(page, 3)
    poll_until(lambda: len(visible(page)) == 3, what="3 lines drawn")
    assert [cols[5] for cls, cols, _ in visible(page) if "hl" in cls.split()] == ["user Alice logged in", "alice again"]


def test_the_page_keeps_at_most_max_lines_the_newest(procs, fake_buck, page_of):
    buck = fake_buck()
    web = start_web(procs, buck.endpoint, extra=("--max-lines", "100"))
    page = page_of(web.url)
    buck.wait_subscribed()
    for start in range(0, 1000, 100):
        buck.publish([event(i) for i in range(start, start + 100)])
    poll_until(lambda: page.evaluate("window.heliosLive.received") == 1000, what="1000 lines received")
    poll_until(lambda: messages(page)[-1:] == ["line 000999 GET /index.html 200"], what="the last line")
    assert messages(page) == [f"line {i:06d} GET /index.html 200" for i in range(900, 1000)]
    # The page follows the newest line: it is the last one drawn.
    poll_until(lambda: visible(page)[-1][1][5] == "line 000999 GET /index.html 200", what="the newest line in view")


def test_a_page_that_cannot_keep_up_is_told_how_many_lines_were_dropped(procs, fake_buck, page_of, tmp_path):
    buck = fake_buck()
    # At most 200 lines/s to this page, and none older than 0.2 s: a burst of 5,000 cannot all be shown.
    web = start_web(procs, buck.endpoint, extra=("--session-rate", "200", "--max-lag", "0.2"))
    page = page_of(web.url)
    buck.wait_subscribed()
    for start in range(0, 5000, 500):
        buck.publish([event(i, severity=i % 8) for i in range(start, start + 500)])

    def accounted():
        st = page.evaluate("[window.heliosLive.received, window.heliosLive.droppedServer]")
        return sum(st) == 5000 and st

    received, dropped = poll_until(accounted, what="every line shown or counted as dropped")
    assert dropped > 4000 and received > 0
    assert page.is_visible("#dropped")
    assert f"{dropped:,} lines dropped to keep up" in page.text_content("#dropped")
    screenshot(page, "live-tail-dropped.png", tmp_path)


def test_lines_that_come_later_than_max_delay_are_counted_as_dropped_and_stale_re_sends_are_not_shown(
        procs, fake_buck, page_of):
    buck = fake_buck()
    web = start_web(procs, buck.endpoint, extra=("--max-delay", "0.5", "--max-age", "60"))
    page = page_of(web.url)
    buck.wait_subscribed()
    subscribed = time.time_ns()
    # Read after the page asked for it (and its subscription settled, 2 s), reaching the web more than
    # max_delay later: the mesh is behind.
    poll_until(lambda: time.time_ns() - subscribed > 2.2e9, what="the subscription to settle")
    read_at = time.time_ns()
    poll_until(lambda: time.time_ns() - read_at > 1e9, what="the line to be a second late")
    late = event(1, "late")._replace(received=read_at)
    buck.publish([late, event(2, "re-sent", age=120), event(3, "on time")])
    assert until_shown(page, 1) == ["on time"]
    poll_until(lambda: "1 line dropped to keep up" in (page.text_content("#dropped") or ""), what="the late line counted")
    # The status is refreshed once a second.
    poll_until(lambda: (c := web.status()["counts"]).get("late") == 1 and c.get("too_old") == 1,
               what="one late and one stale line counted")


def test_a_re_send_of_lines_read_before_the_page_was_opened_is_not_counted_as_dropped(procs, fake_buck, page_of):
    """A spool window re-sent soon after a page opened (the demo's 10 s windows) holds lines read
    before anyone watched: not live, and no line the page failed to keep up with."""
    buck = fake_buck()
    web = start_web(procs, buck.endpoint, extra=("--max-delay", "5", "--max-age", "60"))
    page = page_of(web.url)
    buck.wait_subscribed()
    buck.publish([event(i, f"re-sent {i}", age=10) for i in range(1, 50)] + [event(50, "on time")])
    assert until_shown(page, 1) == ["on time"]
    poll_until(lambda: web.status()["counts"].get("before_watched") == 49, what="the re-sent lines counted apart")
    assert page.is_hidden("#dropped") and web.status()["counts"].get("late", 0) == 0


def test_a_buck_that_goes_away_is_shown_down_and_its_lines_come_again_when_it_is_back(procs, fake_buck,
                                                                                      page_of, tmp_path):
    a, b = fake_buck(name="a"), fake_buck(name="b")
    web = start_web(procs, a.endpoint, b.endpoint)
    page = page_of(web.url)
    a.wait_subscribed()
    b.wait_subscribed()
    chip = f'.buck[data-endpoint="{b.endpoint}"]'
    poll_until(lambda: page.get_attribute(chip, "data-state") == "connected", what="buck b shown connected")
    b.close()
    poll_until(lambda: page.get_attribute(chip, "data-state") == "down", what="buck b shown down")
    a.publish([event(1, "while b is away")])
    until_shown(page, 1)
    screenshot(page, "live-tail-buck-down.png", tmp_path)
    b2 = fake_buck(b.endpoint, name="b")   # the same endpoint, a new process
    b2.wait_subscribed()                   # the web process subscribed again by itself
    poll_until(lambda: page.get_attribute(chip, "data-state") == "connected", what="buck b shown connected again")
    b2.publish([event(2, "b is back")])
    assert until_shown(page, 2) == ["while b is away", "b is back"]
