"""The search page and archie in headless Chromium, and archie's JSON API,
against real processes: two bucks, the porter, `helios history serve` and
`helios web`. Events older than the recent index are found on the page only
after the page asked archie for a history index of the range.

Set HELIOS_SCREENSHOTS=DIR to keep the screenshots (docs/screenshots/ holds them).
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import urllib.error
import urllib.request

import pytest

from tests.helpers import poll_until
from tests.integration import historymesh
from tests.integration.historymesh import OLD, iso
from tests.integration.webpage import screenshot, wait_js


def start_web(procs, mesh) -> str:
    web = procs("web", "-c", str(mesh.config), name="web")
    url = f"http://127.0.0.1:{mesh.web_port}/"

    def answers():
        assert web.alive(), web.output()
        try:
            urllib.request.urlopen(url + "api/history", timeout=2).close()
            return True
        except OSError:
            return False
    poll_until(answers, timeout=20, what="helios web to answer")
    return url


@pytest.fixture
def page(chromium):  # noqa: F811
    context = chromium.new_context(viewport={"width": 1400, "height": 760})
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    yield p
    context.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


def searches(page) -> int:
    return page.evaluate("window.heliosSearch ? window.heliosSearch.searches : 0")


def test_old_events_are_found_on_the_search_page_after_it_asks_for_a_history_index(tmp_path, procs, page):
    mesh = historymesh.build(tmp_path, procs)
    procs("history", "serve", "-c", str(mesh.config), name="history-serve")
    url = start_web(procs, mesh)
    want = sorted((e for e in mesh.old if b"incident=old1" in e.message), key=lambda e: (e.time, e.id))

    page.goto(f"{url}search?env=prod&start={iso(OLD)}&end={iso(OLD + 180)}&q=incident%3Dold1")
    wait_js(page, "window.heliosSearch && window.heliosSearch.searches >= 1")
    assert page.locator("#s-none").is_visible(), "old events were found in the recent index"
    older = page.locator("#s-older")
    assert older.is_visible() and "older events are only in the archive" in older.inner_text()
    screenshot(page, "search-older-than-recent-index.png", tmp_path)

    page.click("#s-history")
    page.locator("#s-history-open").wait_for(state="visible", timeout=30_000)
    assert "ready 100%" in page.inner_text("#s-history-progress")
    done = searches(page)
    page.click("#s-history-open")
    wait_js(page, f"window.heliosSearch.searches > {done}")
    hits = page.locator(".hit")
    assert hits.count() == len(want) > 0
    assert [page.inner_text(f".hit:nth-child({i + 1}) .m") for i in range(len(want))] == [
        e.message.decode() for e in want]
    assert page.locator(".hit mark").first.inner_text() == "incident=old1"   # what matched, highlighted
    assert "history index helios-history-" in page.inner_text("#s-source")
    screenshot(page, "search-history-results.png", tmp_path)

    # Paging: every old event of the range, a page of 100 at a time.
    page.fill("#s-q", "")
    done = searches(page)
    page.click("#s-go")
    wait_js(page, f"window.heliosSearch.searches > {done}")
    assert page.locator(".hit").count() == 100
    assert "100 of 1,200 event(s)" in page.inner_text("#s-summary")
    done = searches(page)
    page.click("#s-more")
    wait_js(page, f"window.heliosSearch.searches > {done}")
    assert page.locator(".hit").count() == 200
    times = page.locator(".hit .t").all_inner_texts()
    assert times == sorted(times)

    page.goto(f"{url}archie")
    wait_js(page, "window.heliosArchie && window.heliosArchie.polls >= 1")
    row = page.locator("#a-rows tr").first
    assert row.get_attribute("data-state") == "ready"
    assert row.locator("a.search-link").get_attribute("href").startswith("/search?history=")
    assert "1,200" in row.inner_text() and "3/3 windows" in row.inner_text()
    read = row.locator("td").nth(7).inner_text()   # what was read, not "21.3 MiB of 21.4 MiB" when done
    assert read.endswith("iB") and " of " not in read
    screenshot(page, "archie.png", tmp_path)


def test_archie_takes_a_request_from_its_page_and_shows_its_progress_until_ready(tmp_path, procs, page):
    mesh = historymesh.build(tmp_path, procs, per_window=100)
    url = start_web(procs, mesh)
    page.goto(f"{url}archie")
    wait_js(page, "window.heliosArchie && window.heliosArchie.polls >= 1")
    assert page.locator("#a-empty").is_visible()
    page.fill("#a-env", "prod")
    page.fill("#a-start", iso(OLD))
    page.fill("#a-end", iso(OLD + 120))
    page.click("#a-go")
    row = page.locator("#a-rows tr").first
    row.wait_for(timeout=10_000)
    assert row.get_attribute("data-state") == "queued"        # nobody builds yet
    procs("history", "serve", "-c", str(mesh.config), name="history-serve")
    wait_js(page, "document.querySelector('#a-rows tr').dataset.state === 'ready'", timeout=30_000)
    assert page.locator("#a-rows tr .bar .fill").first.get_attribute("style") == "width: 100%;"
    # A bad range is refused on the page with the server's reason.
    page.fill("#a-end", iso(OLD - 60))
    page.click("#a-go")
    page.locator("#a-error").wait_for(state="visible")
    assert "the range ends before it starts" in page.inner_text("#a-error")


class Client:
    """An HTTP client with the page's cookie and CSRF token, as a browser has them."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        html = self.opener.open(url + "archie", timeout=5).read().decode()
        self.csrf = re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)

    def call(self, method: str, path: str, body=None, csrf: bool = True) -> tuple[int, dict]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json",
                                              **({"X-CSRF-Token": self.csrf} if csrf else {})})
        try:
            with self.opener.open(req, timeout=10) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as exc:
            return exc.code, json.load(exc)


def test_archie_api_takes_requests_and_refuses_bad_ones_with_clear_json_errors(tmp_path, procs):
    mesh = historymesh.build(tmp_path, procs, per_window=20)
    c = Client(start_web(procs, mesh))
    rng = {"environment": "prod", "start": iso(OLD), "end": iso(OLD + 60)}

    status, made = c.call("POST", "api/history", rng)
    assert status == 201 and made["state"] == "queued" and made["index"] == f"helios-history-{made['id']}"
    status, again = c.call("POST", "api/history", rng)
    assert status == 200 and again["id"] == made["id"] and not again["queued"]     # one build for both
    status, one = c.call("GET", f"api/history/{made['id']}")
    assert status == 200 and one["state"] == "queued" and set(one["progress"]) >= {
        "windows_done", "windows_total", "events_loaded", "bytes_read", "bytes_total", "fraction", "eta_s"}
    status, listing = c.call("GET", "api/history")
    assert status == 200 and [r["id"] for r in listing["requests"]] == [made["id"]]

    for body, code, words in [
        ({**rng, "end": iso(OLD - 60)}, 400, "the range ends before it starts"),
        ({**rng, "end": iso(OLD + 30 * 86400)}, 400, "more than one request may ([history] max_range is 7 days)"),
        ({**rng, "environment": "nowhere"}, 400, "unknown environment 'nowhere'"),
        ({**rng, "environment": "../etc"}, 400, "is not an environment name"),
        ({**rng, "start": "last tuesday"}, 400, "start: 'last tuesday' is not a time"),
        ({"environment": "prod", "end": "now"}, 400, "give start"),
    ]:
        status, err = c.call("POST", "api/history", body)
        assert (status, set(err)) == (code, {"error"}) and words in err["error"], (body, status, err)
    assert c.call("GET", "api/history/000000000000") == (
        404, {"error": "no history request has the id '000000000000' (`helios history list` lists them)"})
    status, err = c.call("POST", f"api/history/{made['id']}/retry")
    assert status == 409 and "only a failed or expired request can be retried" in err["error"]
    status, err = c.call("POST", "api/history", rng, csrf=False)
    assert status == 403 and "CSRF" in err["error"]
