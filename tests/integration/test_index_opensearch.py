"""The Elasticsearch/OpenSearch index against real servers: the shared
behavioural suite on an ``osmem-server`` process (an in-memory server
speaking the OpenSearch REST API; PyPI ``osmem-server``) through
opensearch-py, and on a real Elasticsearch through elasticsearch-py when
``HELIOS_TEST_ES_URL`` is set (skipped otherwise). Plus what only a server
backend does: backpressure (429) is waited out, and a server that is down
is reported clearly."""

from __future__ import annotations

import http.server
import os
import threading
import urllib.error
import urllib.request
import uuid

import pytest

from helios.errors import IndexStoreError
from helios.index import open_index
from helios.wire.ports import free_port

pytest.register_assert_rewrite("tests.index_suite")
from tests.index_suite import *  # noqa: E402,F401,F403  (the shared suite)
from tests.index_suite import ENV, corpus, expected, query  # noqa: E402
from tests.helpers import require  # noqa: E402

ES_URL = os.environ.get("HELIOS_TEST_ES_URL")


class _ElasticFront(http.server.ThreadingHTTPServer):
    """A real HTTP proxy that lets elasticsearch-py talk to an osmem-server:
    it takes the client's Elasticsearch media types (``compatible-with=8``),
    forwards plain JSON, and answers with the ``X-Elastic-Product`` header
    the client checks. It notes the Accept header of every request: the
    pinned client (``elasticsearch>=8,<9``) must ask for version 8
    compatibility, which Elasticsearch 8 and 9 servers both accept (a 9.x
    client asks for 9, which Elasticsearch 8 refuses)."""

    def __init__(self, upstream: str) -> None:
        self.upstream, self.accepts = upstream, set()
        front = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                front.accepts.add(self.headers.get("Accept"))
                ctype = "application/x-ndjson" if "_bulk" in self.path else "application/json"
                req = urllib.request.Request(front.upstream + self.path, data=body or None, method=self.command,
                                             headers={"Content-Type": ctype} if body else {})
                try:
                    with urllib.request.urlopen(req, timeout=30) as resp:
                        status, data = resp.status, resp.read()
                except urllib.error.HTTPError as exc:
                    status, data = exc.code, exc.read()
                self.send_response(status)
                self.send_header("Content-Type", "application/vnd.elasticsearch+json;compatible-with=8")
                self.send_header("X-Elastic-Product", "Elasticsearch")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        super().__init__(("127.0.0.1", 0), Handler)          # an OS-assigned port


@pytest.fixture
def elastic_front(osmem_url):
    front = _ElasticFront(osmem_url)
    thread = threading.Thread(target=front.serve_forever, daemon=True)
    thread.start()
    host, port = front.server_address[:2]
    yield front, f"http://{host}:{port}"
    front.shutdown()
    front.server_close()
    # Every request asked for Elasticsearch 8 compatibility (which 9.x servers accept too).
    assert all("compatible-with=8" in (a or "") for a in front.accepts), front.accepts


@pytest.fixture(params=["opensearch", "elasticsearch-client", "elasticsearch"])
def index(request):
    if request.param == "opensearch":
        ix = open_index("opensearch", request.getfixturevalue("osmem_url"), name="helios-test")
        yield ix
        ix.close()
    elif request.param == "elasticsearch-client":
        # The Elasticsearch code path (elasticsearch-py, its errors) on osmem-server.
        _, url = request.getfixturevalue("elastic_front")
        ix = open_index("elasticsearch", url, name="helios-test")
        yield ix
        ix.close()
    else:
        if not ES_URL:
            require("elasticsearch", "set HELIOS_TEST_ES_URL to run the suite against a real Elasticsearch")
        ix = open_index("elasticsearch", ES_URL, name=f"helios-test-{uuid.uuid4().hex[:12]}")
        yield ix
        ix.drop()
        ix.close()


def test_daily_indices_are_named_by_prefix_environment_and_day(osmem_url):
    from opensearchpy import OpenSearch

    index = open_index("opensearch", osmem_url, name="helios-recent")
    index.load("Prod", corpus("Prod")[:12])
    names = sorted(r["index"] for r in OpenSearch(hosts=[osmem_url]).cat.indices(format="json"))
    assert names == ["helios-recent-prod-2023.11.15", "helios-recent-prod-2023.11.16"]
    assert index.environments() == ["Prod"]                     # the exact name, from the documents


def test_the_elasticsearch_client_asks_for_version_8_compatibility_which_8_and_9_servers_accept(elastic_front):
    front, url = elastic_front
    index = open_index("elasticsearch", url, name="helios-test")
    events = corpus()
    assert index.load(ENV, events) == len(events)
    assert index.search(query()) == expected(query(), events)
    index.close()
    assert front.accepts and all("compatible-with=8" in (a or "") for a in front.accepts), front.accepts


def test_substrings_that_are_not_utf8_are_refused_clearly(index):
    with pytest.raises(IndexStoreError, match="not UTF-8"):
        index.search(query('"\\xff\\xfe"'))


class _Throttle(http.server.ThreadingHTTPServer):
    """A real HTTP proxy in front of the server that answers the first
    ``refuse`` bulk requests with 429 Too Many Requests, as a busy cluster does."""

    def __init__(self, upstream: str, refuse: int) -> None:
        self.upstream, self.refuse, self.refused, self.bulks = upstream, refuse, 0, 0
        throttle = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if "_bulk" in self.path:
                    throttle.bulks += 1
                    if throttle.refused < throttle.refuse:
                        throttle.refused += 1
                        self.send_response(429)
                        data = b'{"error":{"type":"es_rejected_execution_exception","reason":"busy"},"status":429}'
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        self.wfile.write(data)
                        return
                req = urllib.request.Request(throttle.upstream + self.path, data=body or None, method=self.command,
                                             headers={k: v for k, v in self.headers.items()
                                                      if k.lower() in ("content-type", "accept")})
                try:
                    with urllib.request.urlopen(req, timeout=30) as resp:
                        status, data, ctype = resp.status, resp.read(), resp.headers.get("Content-Type")
                except urllib.error.HTTPError as exc:
                    status, data, ctype = exc.code, exc.read(), exc.headers.get("Content-Type")
                self.send_response(status)
                self.send_header("Content-Type", ctype or "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        super().__init__(("127.0.0.1", 0), Handler)          # an OS-assigned port


def test_a_busy_server_is_waited_out_and_nothing_is_lost(osmem_url):
    throttle = _Throttle(osmem_url, refuse=2)
    thread = threading.Thread(target=throttle.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = throttle.server_address[:2]
        index = open_index("opensearch", f"http://{host}:{port}", name="helios-test", initial_backoff=0.05)
        events = corpus()
        assert index.load(ENV, events) == len(events)
        assert throttle.refused == 2 and throttle.bulks >= 3
        assert index.search(query()) == expected(query(), events)
    finally:
        throttle.shutdown()
        throttle.server_close()


@pytest.mark.parametrize("kind", ["opensearch", "elasticsearch"])
def test_a_server_that_is_down_is_reported_with_its_address(kind):
    url = f"http://127.0.0.1:{free_port()}"                        # nothing listens there
    index = open_index(kind, url, name="helios-test", timeout=2)
    with pytest.raises(IndexStoreError, match=f"{kind} at {url}: .* failed"):
        index.load(ENV, corpus()[:2])
    with pytest.raises(IndexStoreError, match="cannot reach it"):
        index.search(query())
