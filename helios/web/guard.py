"""What every answer of the web app passes through, socket.io included: the
Host allow-list (DNS rebinding) and the browser security headers.

DNS rebinding: a page on ``rebind.attacker.example`` makes its name resolve
to 127.0.0.1 once the page is loaded; the browser then treats the web app as
the attacker's own origin, so its scripts read every page and API answer
(same-origin), cookies or not. What the browser cannot change is the
``Host`` header: it names the attacker's domain. So a request whose Host is
not one of ours gets 421 before anything else runs, on every route
(``/socket.io/`` too: this wraps the WSGI app outside Flask-SocketIO's
middleware). Ours: the listen address, ``localhost``, ``127.0.0.1``,
``[::1]`` (on any port) and ``[web] allowed_hosts`` (a bare name on any
port, ``NAME:PORT`` on that port only; ``"*"`` turns the check off). A
request without a Host header (HTTP/1.0 scripts) is no browser's and passes.

Headers on every answer (unless a route set its own): a Content-Security-
Policy that allows scripts, styles, fetches and websockets from this origin
only, no inline script or style, no plugins, no framing, forms posting only
here; ``X-Frame-Options: DENY`` for browsers without CSP's frame-ancestors;
``Referrer-Policy: no-referrer`` (search terms in URLs stay here);
``X-Content-Type-Options: nosniff``.
"""

from __future__ import annotations

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
)
LOCAL = frozenset({"localhost", "127.0.0.1", "::1"})
_MISDIRECTED = b"this server does not answer to that Host name (see [web] allowed_hosts)\n"


def split_host(value: str) -> tuple[str, str]:
    """(lower-case host without brackets or a trailing dot, port or "") of a
    Host header or a HOST:PORT."""
    value = value.strip().lower()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = value.partition(":") if value.count(":") == 1 else (value, "", "")
    return host.rstrip("."), port


class Hosts:
    """The Host names a web app answers to."""

    def __init__(self, listen: str, allowed: tuple[str, ...] = ()) -> None:
        self.any = "*" in allowed
        self.names: set[str] = set(LOCAL)  # on any port
        self.exact: set[tuple[str, str]] = set()  # (host, port)
        host, port = split_host(listen)
        if host and host not in ("0.0.0.0", "::", "*"):  # a wildcard address is nobody's name
            self.names.add(host)
        for entry in allowed:
            if entry == "*":
                continue
            h, p = split_host(entry)
            if p:
                self.exact.add((h, p))
            else:
                self.names.add(h)

    def allows(self, header: str | None) -> bool:
        if self.any or header is None:
            return True
        host, port = split_host(header)
        return host in self.names or (host, port) in self.exact


def guard(app, hosts: Hosts):
    """WSGI middleware: 421 for a Host not in ``hosts``; the security
    headers on every answer."""
    def wrapped(environ, start_response):
        if not hosts.allows(environ.get("HTTP_HOST")):
            start_response("421 Misdirected Request", [("Content-Type", "text/plain"),
                                                       ("Content-Length", str(len(_MISDIRECTED))),
                                                       *HEADERS])
            return [_MISDIRECTED]

        def start(status, headers, exc_info=None):
            have = {k.lower() for k, _ in headers}
            headers = list(headers) + [(k, v) for k, v in HEADERS if k.lower() not in have]
            return start_response(status, headers, exc_info)
        return app(environ, start)
    return wrapped
