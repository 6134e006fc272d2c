"""Fixtures every test may use. Shared helpers live in tests/helpers.py;
fixtures live here, never in a test module another one imports."""

import os
import subprocess

import pytest

from helios.wire.ports import free_run
from tests.helpers import ANY_PORT, MotoServer, Proc, bound_endpoints, poll_until, require


@pytest.fixture
def procs(tmp_path, request):
    """Start helios processes; all are stopped (SIGTERM) at teardown, and the
    test fails if one did not exit 0, hung, or logged a traceback, unless the
    test said it meant that (``Proc.expect_exit``, ``Proc.expect_traceback``;
    see ``tests.helpers.Proc``). Their output is printed when the test failed."""
    started: list[Proc] = []

    def start(*args: str, name: str | None = None) -> Proc:
        name = name or f"{args[0]}-{len(started)}"
        p = Proc(list(args), tmp_path / f"{name}.out")
        started.append(p)
        return p

    yield start
    for p in started:
        try:
            p.stop()
        except AssertionError:
            pass  # noted in p.problems()
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    if failed:
        for p in started:
            print(f"--- output of helios {' '.join(p.args)}\n{p.output()[-5000:]}")
        return
    problems = [(p, p.problems()) for p in started]
    problems = [(p, why) for p, why in problems if why]
    if problems:
        pytest.fail("\n".join(f"helios {' '.join(p.args)}: {'; '.join(why)}\n--- its output:\n{p.output()[-3000:]}"
                              for p, why in problems), pytrace=False)


@pytest.fixture
def buck(procs, tmp_path):
    """Start a buck; returns (proc, ingest endpoint, data dir). Without an
    ``endpoint``, its ingest port P comes from ``free_run(3)`` and its live
    feed and query endpoints are "auto" (P + 1, P + 2), so that the ingest
    endpoint is also the buck's one address (``--buck``) for every command.
    With an ``endpoint``, the live feed and query ports are ones the OS picks
    (stats.json "publish" and "query"; tests.helpers.buck_query); an
    ``--publish``/``--query`` in ``extra`` wins either way. A restart
    (``proc.stop(); proc.start()``) binds the same ports."""
    taken: set[int] = set()

    def start(name: str = "a", endpoint: str | None = None, *extra: str):
        data = tmp_path / f"buck-{name}"
        for attempt in range(3):
            ingest, others = endpoint, ANY_PORT
            if endpoint is None:
                port = free_run(3, taken=taken)
                taken.update(range(port, port + 3))
                ingest, others = f"tcp://127.0.0.1:{port}", "auto"
            args = ["buck", "--name", f"buck-{name}", "--ingest", ingest, "--data-dir", str(data),
                    "--stats-interval", "0.2", "--publish", others, "--query", others, *extra]
            p = procs(*args, name=f"buck-{name}" + (f"-{attempt}" if attempt else ""))
            # The buck writes its stats file once it has bound its sockets.
            poll_until(lambda: (data / "stats.json").exists() or not p.alive(), what=f"buck-{name} to start")
            if p.alive() or endpoint is not None or "in use" not in p.output():
                break
            p.expect_exit(1)   # another process took a port between free_run and the bind: try others
        if not p.alive():
            return p, endpoint, data
        stats = bound_endpoints(data, pid=p.p.pid)
        # The ports it got, for a restart: the last --ingest/--publish/--query given wins.
        for flag, key in (("--ingest", "ingest"), ("--publish", "publish"), ("--query", "query")):
            for i, arg in enumerate(p.args):
                if arg == flag and p.args[i + 1] == ANY_PORT and stats.get(key):
                    p.args[i + 1] = stats[key]
        return p, stats["ingest"], data
    return start


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def pytest_runtest_setup(item):
    for mark in item.iter_markers("needs"):
        component, missing = mark.args
        if missing is not None:
            require(component, missing)


@pytest.fixture(scope="session")
def osmem():
    """The session's osmem-server process (an in-memory server speaking the
    OpenSearch REST API; PyPI osmem-server) on 127.0.0.1, frozen: tests use
    copy-on-write clones of it (``osmem_url``)."""
    try:
        from osmem_server import OsmemServer
    except ImportError:
        require("osmem-server", "osmem-server is not installed (the [test] extra)")
    server = OsmemServer.start(freeze=True, japanese=False)
    yield server
    server.close()
    server.process.stdout.close()       # OsmemServer.close leaves its end of the pipe open


@pytest.fixture
def osmem_url(osmem):
    """The URL of an empty OpenSearch server of this test alone (a clone of ``osmem``)."""
    clone = osmem.clone()
    yield clone.url
    clone.close()


# --- the browser tests (tests/integration/webpage.py has what they share besides)

@pytest.fixture(scope="module")
def chromium():
    """One headless Chromium per test module (each test gets its own page)."""
    from pathlib import Path

    from tests.integration.webpage import CHROMIUM, CHROMIUM_ARGS

    if not Path(CHROMIUM).exists():
        require("chromium", f"{CHROMIUM} is not installed (Debian packages chromium and chromium-driver; `make sysdeps`)")
    try:
        from playwright import sync_api
    except ImportError:
        require("playwright", "the playwright package is not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page_of(chromium):
    """Open a live tail page; fails the test if the page has a JavaScript error."""
    opened, errors = [], []

    from tests.integration.webpage import wait_js

    def open_page(url: str):
        context = chromium.new_context(viewport={"width": 1400, "height": 800})
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        wait_js(page, "window.heliosLive && window.heliosLive.filterSent !== null", timeout=10_000)
        opened.append(context)
        return page

    yield open_page
    for context in opened:
        context.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


@pytest.fixture
def fake_buck():
    """Make stand-in bucks (``tests.integration.webpage.FakeBuck``); all are closed at teardown."""
    from tests.integration.webpage import FakeBuck

    made: list[FakeBuck] = []

    def make(endpoint: str | None = None, name: str = "fake") -> FakeBuck:
        b = FakeBuck(endpoint, name)
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()


@pytest.fixture
def recorders():
    """Make client Recorders; all are closed at teardown."""
    from helios.client import Recorder

    made = []

    def make(**settings):
        r = Recorder(**settings)
        made.append(r)
        return r
    yield make
    for r in made:
        r.close(timeout=0)


def aws_settings(monkeypatch, tmp_path) -> None:
    """The usual AWS settings (environment variables), pointing boto3 at
    dummy credentials and a region, for this process and the helios
    processes it starts; any real ones (and ~/.aws) are kept out."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory):
    """The session's moto_server (``tests.helpers.MotoServer``); its URL.
    Tests keep apart by using their own bucket (``s3_bucket``)."""
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto_server.out")
    try:
        yield server.start().url
    finally:
        server.stop()


@pytest.fixture
def own_moto_server(tmp_path, monkeypatch):
    """A moto_server of this test alone, which it may stop and start again
    (on the same port), with the AWS settings of ``aws_settings``."""
    aws_settings(monkeypatch, tmp_path)
    server = MotoServer(tmp_path / "moto_server.out")
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(moto_server, monkeypatch, tmp_path):
    """A fresh, empty bucket on the session's moto_server, with the AWS
    settings of ``aws_settings``. Returns (endpoint_url, bucket)."""
    import uuid

    import boto3

    aws_settings(monkeypatch, tmp_path)
    bucket = f"helios-test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_server).create_bucket(Bucket=bucket)
    return moto_server, bucket


@pytest.fixture(scope="module")
def users_toml():
    """[web] users and tokens: alice sees everything, bob only prod, the ops token only staging."""
    import json

    from helios import tokens
    from helios.web.auth import hash_password
    from tests.integration.webpage import OPS_TOKEN, PASSWORDS

    alice = f"alice:{hash_password(PASSWORDS['alice'])}"
    bob = f"bob:{hash_password(PASSWORDS['bob'])}:prod"
    ops = f"ops:{tokens.hash_token(OPS_TOKEN)}:staging"
    return f"[web]\nusers = {json.dumps([alice, bob])}\ntokens = {json.dumps([ops])}\n"


@pytest.fixture
def small_disk(tmp_path):
    """An 8 MiB tmpfs at tmp_path/buck-a (the buck fixture's data dir for "a")."""
    where = tmp_path / "buck-a"
    where.mkdir()
    if os.geteuid() != 0:
        require("root", "mounting a small tmpfs needs root; run as root to test a full disk")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(where)], capture_output=True)
    if done.returncode != 0:
        require("root", f"cannot mount a tmpfs here ({done.stderr.decode().strip()}): no full disk to test")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)
