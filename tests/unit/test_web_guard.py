"""The web app's Host allow-list and security headers (helios.web.guard), and
its bookkeeping of failed logins and ended sessions (helios.web.throttle)."""

from __future__ import annotations

import pytest

from helios.web.guard import HEADERS, Hosts, guard, split_host
from helios.web.throttle import Logouts, Throttle


@pytest.mark.parametrize("value, parts", [
    ("Example.COM", ("example.com", "")), ("example.com.:8080", ("example.com", "8080")),
    ("[::1]:7390", ("::1", "7390")), ("[::1]", ("::1", "")), ("::1", ("::1", "")),
    ("127.0.0.1:7390", ("127.0.0.1", "7390")),
])
def test_a_host_header_splits_into_a_lower_case_name_and_a_port(value, parts):
    assert split_host(value) == parts


def test_local_names_the_listen_address_and_configured_names_are_allowed_and_nothing_else():
    hosts = Hosts("10.1.2.3:7390", ("logs.example.com", "tail.example.com:8443"))
    for ok in ("localhost", "LOCALHOST:1", "127.0.0.1:7390", "[::1]:7390", "10.1.2.3:7390", "10.1.2.3",
               "logs.example.com", "logs.example.com:443", "Logs.Example.Com.", "tail.example.com:8443", None):
        assert hosts.allows(ok), ok
    for bad in ("rebind.attacker.example", "rebind.attacker.example:7390", "127.0.0.2", "10.1.2.4:7390",
                "tail.example.com", "tail.example.com:443", "logs.example.com.evil", "localhost.evil", "",
                "[::2]:7390", "example.com@localhost"):
        assert not hosts.allows(bad), bad


def test_a_wildcard_listen_address_is_nobodys_name_and_a_star_allows_every_host():
    assert not Hosts("0.0.0.0:7390").allows("0.0.0.0:7390")
    assert not Hosts("[::]:7390").allows("[::]:7390")
    assert Hosts("0.0.0.0:7390", ("*",)).allows("anything.example")


def run(app, host):
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"], seen["headers"] = status, dict(headers)
    body = b"".join(app({"HTTP_HOST": host} if host else {}, start_response))
    return seen["status"], seen["headers"], body


def test_the_middleware_refuses_other_hosts_with_421_before_the_app_runs_and_adds_the_headers():
    called = []

    def app(environ, start_response):
        called.append(1)
        start_response("200 OK", [("Content-Type", "text/html"), ("X-Frame-Options", "SAMEORIGIN")])
        return [b"page"]
    wrapped = guard(app, Hosts("127.0.0.1:7390"))
    status, headers, body = run(wrapped, "rebind.attacker.example:7390")
    assert status.startswith("421") and b"allowed_hosts" in body and not called
    assert headers["Content-Security-Policy"] == dict(HEADERS)["Content-Security-Policy"]
    status, headers, body = run(wrapped, "localhost:7390")
    assert status == "200 OK" and body == b"page" and called
    assert headers["X-Frame-Options"] == "SAMEORIGIN"  # a route's own header wins
    assert headers["Referrer-Policy"] == "no-referrer" and "frame-ancestors 'none'" in headers["Content-Security-Policy"]


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_failures_past_the_free_ones_wait_twice_as_long_each_time_up_to_the_cap():
    clock = Clock()
    t = Throttle(free=3, backoff=1.0, max_backoff=5.0, clock=clock)
    for _ in range(3):
        assert t.wait("u") == 0
        t.failed("u")
    assert t.wait("u") == 1.0
    waits = []
    for _ in range(4):
        clock.now += t.wait("u")
        assert t.wait("u") == 0
        t.failed("u")
        waits.append(t.wait("u"))
    assert waits == [2.0, 4.0, 5.0, 5.0]
    assert t.wait("other") == 0 and t.wait("other", "u") == 5.0  # the longest of the keys
    t.succeeded("u")
    assert t.wait("u") == 0


def test_the_throttle_remembers_at_most_max_keys_forgetting_the_oldest():
    t = Throttle(free=1, backoff=10.0, max_backoff=10.0, max_keys=3, clock=Clock())
    for k in "abcd":
        t.failed(k)
    assert t.wait("a") == 0 and all(t.wait(k) == 10.0 for k in "bcd")


def test_an_ended_login_stays_ended_until_its_cookie_has_expired_and_across_restarts(tmp_path):
    clock = Clock()
    path = tmp_path / "key.logouts"
    ended = Logouts(100.0, path, clock=clock)
    ended.end("login-1")
    assert ended.ended("login-1") and not ended.ended("login-2") and not ended.ended(None)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    clock.now += 50
    again = Logouts(100.0, path, clock=clock)  # a restart
    assert again.ended("login-1")
    clock.now += 51
    assert not again.ended("login-1")
    Logouts(100.0, path, clock=clock)  # the next start drops what expired from the file
    assert path.read_text() == ""
    path.write_text("garbage\n12 \n")
    assert not Logouts(100.0, path, clock=clock).ended("")


def test_the_config_shows_the_new_keys_with_their_defaults_and_names_a_bad_host(tmp_path):
    from helios import config
    from helios.errors import ConfigError

    example = config.describe()
    for key in ("allowed_hosts = []", "header_timeout = 10.0", "body_timeout = 30.0", "max_waiting = 4096",
                "max_connections_per_client = 64", "login_max_failures = 5", "http_header_timeout = 10.0",
                "http_body_timeout = 30.0", "http_max_connections_per_client = 128"):
        assert key in example, key
    path = tmp_path / "h.toml"
    path.write_text('[web]\nallowed_hosts = ["logs.example.com", "bad host", "[::1]:7390"]\nheader_timeout = 0\n')
    with pytest.raises(ConfigError) as err:
        config.load(str(path))
    assert "web.allowed_hosts[1]" in str(err.value) and "web.header_timeout" in str(err.value)


def test_the_gate_reads_a_request_heads_body_length_and_refuses_what_it_cannot_take():
    from helios.web.gate import BAD_LENGTH, LENGTH_REQUIRED, body_length

    assert body_length(b"GET / HTTP/1.1\r\nHost: x") == (0, False)
    assert body_length(b"POST / HTTP/1.1\r\ncontent-length:  42 \r\nExpect: 100-Continue") == (42, True)
    assert body_length(b"POST / HTTP/1.1\nContent-Length: 7") == (7, False)  # bare LF line ends
    assert body_length(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked") == LENGTH_REQUIRED
    assert body_length(b"POST / HTTP/1.1\r\nContent-Length: -1") == BAD_LENGTH
    assert body_length(b"POST / HTTP/1.1\r\nContent-Length: 1e3") == BAD_LENGTH
    assert body_length(b"GET /content-length: 5 HTTP/1.1\r\nHost: x") == (0, False)  # the request line is no header


def test_the_gate_raises_the_descriptor_limit_or_waits_for_fewer_connections():
    import subprocess
    import sys

    # In a child process: a lowered hard limit cannot be raised again without root.
    code = """if True:
        import resource
        from helios.web.gate import fit_fd_limit
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
        if hard == resource.RLIM_INFINITY or hard >= 4096 + 200 + 256:
            assert fit_fd_limit(4096, 200) == 4096  # raised towards the hard limit
            assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= 4096 + 200 + 256
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))  # cannot be raised: fewer wait
        assert fit_fd_limit(4096, 200) == 1024 - 200 - 256
    """
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "raise it (LimitNOFILE" in r.stderr
