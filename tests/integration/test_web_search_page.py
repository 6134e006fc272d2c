"""The search page as a user works it, in headless Chromium against a real
``helios web`` reading a real sqlite recent index: the volume histogram
(stacked by severity; a drag zooms the range and the hits follow), the field
sidebar (a click filters), column headers, UTC or local time, a hit's
context (the lines around it in its source), an address that restores the
same search, links between the pages, and clear messages for bad input.

Set HELIOS_SCREENSHOTS=DIR to keep the screenshots (docs/screenshots/ holds them).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request

from collections import Counter

import pytest

from helios.index import open_index
from helios.model import Event, severity_name
from helios.wire.ports import free_endpoint, free_port
from tests.helpers import poll_until
from tests.integration.webpage import screenshot, wait_js

NS = 1_000_000_000
HOUR0 = (int(time.time()) // 3600 - 3) * 3600          # a whole hour, 3 to 4 hours ago
HOSTS = ("web-1", "web-2", "db-1")
APPS = ("nginx", "api")


def corpus() -> list[Event]:
    """An hour of prod: two tailed files (sources) of 360 lines each, a line
    every 10 s per file; severities vary, a burst of errors in minutes
    40-44; every 3rd line of the api file has a field user."""
    out = []
    for k, (host, app, source) in enumerate((("web-1", "nginx", "/var/log/nginx.log"),
                                             ("db-1", "api", "/var/log/api.log"))):
        sid = bytes([0xA0 + k]) * 16
        for i in range(360):
            t = (HOUR0 + i * 10) * NS + k * 1000
            burst = 40 <= i * 10 // 60 < 45
            sev = 3 if burst else (6 if i % 5 else 4)
            fields = {"user": ("alice", "bob", "carol")[i // 3 % 3]} if app == "api" and i % 3 == 0 else None
            msg = f"{source.rsplit('/', 1)[1]} line {i:03d} GET /orders/{i} {'500 failed' if burst else '200 ok'}"
            out.append(Event(sid[:8] + i.to_bytes(8, "big"), t, t, host if k else HOSTS[i % 2], app, sev, source,
                             i * 80, msg.encode(), fields, sid, "prod"))
    return out


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A config and a recent index of ``corpus()`` (and two events of env dev)."""
    tmp = tmp_path_factory.mktemp("search-page")
    index = open_index("sqlite", str(tmp / "index"), name="helios-recent")
    events = corpus()
    index.load("prod", events)
    index.load("dev", [e._replace(environment="dev", id=b"d" * 8 + e.id[8:]) for e in events[:2]])
    index.close()
    port = free_port()
    config = tmp / "helios.toml"
    config.write_text(f"""
[porter]
state_dir = "{tmp / 'porter'}"
index_dir = "{tmp / 'index'}"
recent_days = 30

[history]
dir = "{tmp / 'history'}"

[web]
listen = "127.0.0.1:{port}"
bucks_pub = ["{free_endpoint()}"]
""")
    return config, f"http://127.0.0.1:{port}/", events


@pytest.fixture
def web(site, procs):
    return _start(site, procs)


def _start(site, procs, config=None):
    config_, url, events = site
    proc = procs("web", "-c", str(config or config_), name="web")

    def answers():
        assert proc.alive(), proc.output()
        try:
            urllib.request.urlopen(url + "api/environments", timeout=2).close()
            return True
        except urllib.error.HTTPError:      # a login is asked for: it answers
            return True
        except OSError:
            return False
    poll_until(answers, timeout=20, what="helios web to answer")
    return url, events


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1400, "height": 900}, timezone_id="Asia/Kolkata")
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    yield p
    context.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


def iso(s: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(s))


def hour_url(url: str, q: str = "", **extra) -> str:
    args = {"env": "prod", "start": iso(HOUR0), "end": iso(HOUR0 + 3600), "q": q, **extra}
    return f"{url}search?{urllib.parse.urlencode(args)}"


def settled(page, before: dict | None = None) -> dict:
    """Wait for the search, its histogram and its sidebar to be answered (after ``before``'s counts)."""
    before = before or {"searches": 0, "histograms": 0, "facets": 0}
    wait_js(page, "window.heliosSearch && window.heliosSearch.searches > %d && window.heliosSearch.histograms > %d "
            "&& window.heliosSearch.facets > %d && !window.heliosSearch.busy" % (
                before["searches"], before["histograms"], before["facets"]))
    return counts(page)


def counts(page) -> dict:
    return page.evaluate("({searches: heliosSearch.searches, histograms: heliosSearch.histograms, "
                         "facets: heliosSearch.facets})")


def messages(page) -> list[str]:
    return page.locator("#s-results .hit .m").all_inner_texts()


def facet(page, field: str) -> dict[str, int]:
    rows = page.locator(f'.facet[data-field="{field}"] .fv')
    return {rows.nth(i).get_attribute("data-value"): int(rows.nth(i).locator(".fv-n").inner_text().replace(",", ""))
            for i in range(rows.count())}


def test_the_histogram_shows_the_range_by_severity_and_a_drag_zooms_into_it(web, page, tmp_path):
    url, events = web
    page.goto(hour_url(url))
    settled(page)
    hist = page.evaluate("heliosSearch.hist")
    step = hist["step_ns"]
    assert step in (30 * NS, 60 * NS)                       # an hour in round buckets, a few pixels wide each
    assert sum(sum(c.values()) for _, c in hist["buckets"]) == len(events) == 720
    burst = [c for t, c in hist["buckets"] if HOUR0 + 40 * 60 <= t // NS < HOUR0 + 45 * 60]
    assert burst and all(set(c) == {"err"} for c in burst)   # the error burst stands out in its colour
    legend = page.inner_text("#s-legend")
    assert "err" in legend and "info" in legend and "warning" in legend
    assert page.locator("#s-canvas").is_visible()
    screenshot(page, "search-page.png", tmp_path)

    # Drag from minute 40 to minute 45 of the chart: the range and the hits become those minutes.
    box = page.locator("#s-canvas").bounding_box()
    x = lambda minute: box["x"] + box["width"] * minute / 60   # noqa: E731
    before = counts(page)
    page.mouse.move(x(40.05), box["y"] + 40)
    page.mouse.down()
    page.mouse.move(x(42), box["y"] + 40, steps=4)
    assert page.locator("#s-sel").is_visible()               # the selection is drawn while dragging
    page.mouse.move(x(44.95), box["y"] + 40, steps=4)
    page.mouse.up()
    settled(page, before)
    start, end = page.input_value("#s-start"), page.input_value("#s-end")
    assert start.startswith(iso(HOUR0 + 40 * 60)[:16]) and end.startswith(iso(HOUR0 + 44 * 60)[:16]), (start, end)
    shown = messages(page)
    assert shown and all("500 failed" in m for m in shown)
    hist = page.evaluate("heliosSearch.hist")
    assert hist["step_ns"] < step and all(set(c) == {"err"} for _, c in hist["buckets"])
    assert "start=" in page.url and urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)["start"] == [start]
    page.go_back()                                          # the wider range is one step back
    settled(page, before)
    assert page.input_value("#s-start") == iso(HOUR0)


def test_a_click_on_a_sidebar_value_filters_the_hits_by_it(web, page):
    url, events = web
    page.goto(hour_url(url))
    settled(page)
    assert facet(page, "host") == {"db-1": 360, "web-1": 180, "web-2": 180}
    assert facet(page, "app") == {"nginx": 360, "api": 360}
    assert facet(page, "severity") == dict(Counter(severity_name(e.severity) for e in events))
    assert facet(page, "environment") == {"prod": 720, "dev": 2}
    assert facet(page, "user") == {"alice": 40, "bob": 40, "carol": 40}
    before = counts(page)
    page.click('.facet[data-field="user"] .fv[data-value="bob"]')
    before = settled(page, before)
    assert page.input_value("#s-q") == "user:bob"
    assert "of 40 event(s)" in page.inner_text("#s-summary")
    assert facet(page, "host") == {"db-1": 40} and facet(page, "user") == {"bob": 40}
    page.click('.facet[data-field="host"] .fv[data-value="db-1"]')
    settled(page, before)
    assert page.input_value("#s-q") == "user:bob host:db-1"
    assert len(messages(page)) == 40 and all(m.startswith("api.log") for m in messages(page))


def test_column_headers_and_times_in_utc_or_local_time(web, page):
    url, events = web
    page.goto(hour_url(url, q="line 000"))
    settled(page)
    assert page.locator("#s-cols").inner_text().lower().split() == ["time", "host", "app", "severity", "message"]
    first = page.locator("#s-results .hit .t").first
    assert first.inner_text() == iso(HOUR0).replace("Z", ".000Z")
    # Columns line up with their headers.
    for col in ("t", "h", "a", "v", "m"):
        head = page.locator(f"#s-cols .{col}").bounding_box()["x"]
        cell = page.locator(f"#s-results .hit .{col}").first.bounding_box()["x"]
        assert abs(head - cell) < 2, col
    page.uncheck("#s-utc")                                  # the browser's zone: Asia/Kolkata, +05:30
    local = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(HOUR0 + 5 * 3600 + 1800)) + ".000+05:30"
    assert first.inner_text() == local
    assert "tz=local" in page.url
    page.reload()                                           # the address keeps the choice
    settled(page)
    assert not page.is_checked("#s-utc") and page.locator("#s-results .hit .t").first.inner_text() == local


def test_a_hit_opens_the_lines_before_and_after_it_in_its_source(web, page, tmp_path):
    url, events = web
    page.goto(hour_url(url, q="line 100"))
    settled(page)
    hit = page.locator("#s-results .hit", has_text="api.log line 100")
    hit.locator(".ctx-btn").click()
    wait_js(page, "heliosSearch.contexts >= 1")
    lines = page.locator(".ctx .ctx-line .m").all_inner_texts()
    # Ten lines each side from the same file (api.log), not the nginx lines interleaved in time.
    assert [m.split(" GET")[0] for m in lines] == [f"api.log line {i:03d}" for i in range(90, 111)]
    assert page.locator(".ctx .ctx-line.this .m").inner_text().startswith("api.log line 100")
    assert "/var/log/api.log" in page.inner_text(".ctx .ctx-head")
    screenshot(page, "search-context.png", tmp_path)
    hit.locator(".ctx-btn").click()                         # and closes again
    assert page.locator(".ctx").count() == 0


def test_a_copied_address_shows_the_same_search_in_a_new_page(web, page, chromium):
    url, events = web
    page.goto(f"{url}search")
    page.fill("#s-env", "prod")
    page.fill("#s-start", iso(HOUR0 + 600))
    page.fill("#s-end", iso(HOUR0 + 1200))
    page.fill("#s-q", "GET user:alice")
    page.click("#s-go")
    settled(page)
    shown = messages(page)
    assert shown and page.inner_text("#s-summary").startswith(f"{len(shown)} of {len(shown)} event(s)")
    other = chromium.new_context().new_page()
    other.goto(page.url)
    settled(other)
    assert messages(other) == shown
    assert other.input_value("#s-q") == "GET user:alice" and other.input_value("#s-start") == iso(HOUR0 + 600)
    other.context.close()


def test_the_live_tail_search_and_archie_link_to_each_other(web, page):
    url, _ = web
    for path, here in (("", "live"), ("search", "search"), ("archie", "archie")):
        page.goto(url + path)
        links = page.locator("header nav a")
        assert links.all_inner_texts() == ["live", "search", "archie"], path
        assert page.locator("header nav a.here").inner_text() == here
        for name, target in (("live", "/"), ("search", "/search"), ("archie", "/archie")):
            assert page.locator(f"header nav a:text-is('{name}')").get_attribute("href") == target


@pytest.mark.parametrize("args, message", [
    ({"start": "yesterday-ish"}, "start:"),
    ({"start": iso(HOUR0 + 60), "end": iso(HOUR0)}, "ends"),
    ({"q": 'error "unclosed'}, "unterminated quote"),
    ({"q": "sev:loud"}, "is not a severity"),
    ({"env": "no/such"}, "not a valid environment"),
])
def test_bad_input_gives_a_clear_message_on_the_page_not_a_server_error(web, page, args, message):
    url, _ = web
    target = hour_url(url, **args)
    page.goto(target)
    wait_js(page, "window.heliosSearch && heliosSearch.searches >= 1")
    assert page.locator("#s-error").is_visible() and message in page.inner_text("#s-error")
    for api in ("search", "histogram", "facets"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(target.replace("/search?", f"/api/{api}?"), timeout=10)
        assert err.value.code == 400 and message in json.load(err.value)["error"]


def test_bad_context_and_aggregation_parameters_are_refused_clearly(web):
    url, events = web
    for path, message in (("api/context?env=prod&t=x&id=zz", "give the event"),
                          ("api/context?env=prod&t=1&id=00", "no event of prod"),
                          ("api/context?env=prod&t=1&id=00&before=9999", "before must be 0..500"),
                          ("api/histogram?env=prod&buckets=0", "buckets must be 1..1000"),
                          ("api/facets?env=prod&n=many", "n must be a whole number"),
                          ("api/context?env=prod&t=99999999999999999999999&id=00", "give the event"),
                          ("api/context?env=prod&t=-5&id=00", "give the event"),
                          ("api/histogram?env=prod&start=99999999999999999999", "start:"),
                          ("api/facets?env=prod&start=0&end=99999999999999999999", "end:"),
                          ("api/search?env=prod&start=-99999999999999999999", "start:")):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(url + path, timeout=10)
        assert err.value.code in (400, 404) and message in json.load(err.value)["error"], path


# The live page's rows in view (by their boxes), the scroller's edges, and the newest row's text.
VIEW_ROWS = """() => {
  const s = document.getElementById('scroller').getBoundingClientRect();
  const rows = [...document.querySelectorAll('#lines .l')].filter(r => r.style.display !== 'none')
    .map(r => [r.getBoundingClientRect(), r.textContent]).filter(([b]) => b.bottom > s.top + 1 && b.top < s.bottom - 1);
  rows.sort((a, b) => a[0].top - b[0].top);
  return {top: s.top, bottom: s.bottom, first: rows[0][0].top, last: rows[rows.length - 1][0].bottom,
          newest: rows[rows.length - 1][1]};
}"""
@pytest.mark.parametrize("width", [1400, 700])
def test_the_live_pages_first_row_is_below_its_header_and_its_column_headers(procs, fake_buck, chromium, width):
    from tests.integration.webpage import event, start_web, until_shown

    buck = fake_buck()
    web = start_web(procs, buck.endpoint)
    context = chromium.new_context(viewport={"width": width, "height": 600})
    page = context.new_page()
    page.goto(web.url)
    wait_js(page, "window.heliosLive && window.heliosLive.filterSent !== null")  # as page_of: the server took its filter
    buck.wait_subscribed()
    buck.publish([event(i, f"row {i}", host="web-1" if i != 1 else "a-long-host-name.eu-west-1.compute.internal",
                        app="nginx" if i != 1 else "postfix/smtpd-and-more") for i in range(5)])
    until_shown(page, 5)
    first = page.locator("#lines .l", has_text="row 0")
    first.wait_for()
    cols = page.locator("#cols").bounding_box()
    header = page.locator("header").bounding_box()
    row = first.bounding_box()
    assert [c.lower() for c in page.locator("#cols > span").all_inner_texts()] == ["time", "env", "host", "app", "severity", "message"]
    assert cols["y"] >= header["y"] + header["height"] - 1
    assert row["y"] >= cols["y"] + cols["height"] - 1, (row, cols)
    # The topmost point of the first row is the row itself, not the header drawn over it.
    at = page.evaluate("([x, y]) => document.elementFromPoint(x, y).closest('.l') !== null",
                       [row["x"] + 40, row["y"] + 2])
    assert at
    for col in ("t", "h", "a", "v", "m"):
        assert abs(page.locator(f"#cols .{col}").bounding_box()["x"] - first.locator(f".{col}").bounding_box()["x"]) < 2
    # Every header fits its column (none runs into the next), and a long host or app does not push a row's
    # message out of line.
    assert page.evaluate("[...document.querySelectorAll('#cols > span:not(.m)')]"
                         ".every(c => c.scrollWidth <= c.clientWidth)")
    long_row = page.locator("#lines .l", has_text="row 1")
    assert abs(page.locator("#cols .m").bounding_box()["x"] - long_row.locator(".m").bounding_box()["x"]) < 2

    # Following a page longer than the window, the top row in view is whole (it is not cut by the headers),
    # and the newest row is in view.
    buck.publish([event(i, f"more {i}") for i in range(5, 105)])
    until_shown(page, 105)
    views = []

    def whole_rows():
        views.append(page.evaluate(VIEW_ROWS))
        v = views[-1]
        return v["first"] >= v["top"] - 0.5 and v["last"] <= v["bottom"] + 0.5 and "more 104" in v["newest"]
    try:
        poll_until(whole_rows, timeout=10, what="whole rows at the top and the newest row in view")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the last view: {views[-1]}") from None
    context.close()


def test_an_account_limited_to_one_environment_sees_only_its_counts_and_contexts(site, procs, users_toml, tmp_path):
    from tests.integration.webpage import OPS_TOKEN

    config, url, events = site
    limited = tmp_path / "limited.toml"      # the ops token may see dev only
    limited.write_text(config.read_text() + users_toml.replace("[web]\n", "").replace(":staging", ":dev"))
    _start(site, procs, limited)

    def get(path):
        req = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {OPS_TOKEN}"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as exc:
            return exc.code, json.load(exc)

    args = urllib.parse.urlencode({"start": iso(HOUR0), "end": iso(HOUR0 + 3600)})
    status, facets = get(f"api/facets?env=dev&{args}")
    assert status == 200 and facets["facets"]["environment"] == [["dev", 2]]     # prod is not even named
    e = events[100]
    for path in (f"api/facets?env=prod&{args}", f"api/histogram?env=prod&{args}",
                 f"api/context?env=prod&t={e.time}&id={e.id.hex()}"):
        status, body = get(path)
        assert status == 403 and "may not see environment 'prod'" in body["error"], path


def test_the_search_page_opened_with_no_search_shows_the_last_hour_of_the_only_environment(procs, page, tmp_path):
    """From the live page's link (/search, nothing in the address): with one environment there is nothing
    to choose, so its last hour is shown at once, not an empty page."""
    index = open_index("sqlite", str(tmp_path / "index"), name="helios-recent")
    now = time.time_ns()
    index.load("demo", [e._replace(environment="demo", time=now - (60 - i) * NS, received=now - (60 - i) * NS)
                        for i, e in enumerate(corpus()[:30])])
    index.close()
    port = free_port()
    config = tmp_path / "helios.toml"
    config.write_text(f'[porter]\nindex_dir = "{tmp_path / "index"}"\n\n[history]\ndir = "{tmp_path / "history"}"\n\n'
                      f'[web]\nlisten = "127.0.0.1:{port}"\nbucks_pub = ["{free_endpoint()}"]\n')
    url, _ = _start((config, f"http://127.0.0.1:{port}/", []), procs)
    page.goto(url + "search")
    settled(page)
    assert page.input_value("#s-env") == "demo" and page.locator("#s-results .hit").count() == 30
    assert "env=demo" in page.url                             # and the address holds it, to share


def test_the_search_page_opened_with_no_search_asks_which_environment_when_there_are_several(web, page):
    url, _ = web
    page.goto(url + "search")
    poll_until(lambda: "Pick an environment" in page.inner_text("#s-summary"), what="the hint")
    assert "dev" in page.inner_text("#s-summary") and "prod" in page.inner_text("#s-summary")
    assert page.evaluate("heliosSearch.searches") == 0
