"""Who may use the web app, and which environments each may see.

Two modes, from ``[web]``:

- **open**: no ``users`` and no ``tokens``. Everybody who reaches the port
  is the anonymous account, which sees every environment. Allowed only on a
  loopback address (``helios web`` refuses to start otherwise): on
  127.0.0.1 only people already on the machine get in.
- **login**: with users or tokens, every page, API call and socket.io
  connection needs a logged-in session. A user logs in with a password
  (stored as a PyNaCl argon2id hash, ``helios hash-password``) or a token
  (stored as its SHA-256, ``helios keygen --token NAME``; scripts may send it
  as ``Authorization: Bearer TOKEN`` to ``/api/...`` instead of logging in).
  An account may be limited to named environments (``NAME:HASH:prod,staging``).

What protects what:

- The session is Flask's signed cookie (HttpOnly, SameSite=Lax, Secure with
  ``secure_cookies``), signed with the key in ``secret_file`` or one made at
  start. It holds the account name, a fingerprint of the stored credential it
  logged in with (so that changing a password or removing a token ends the
  sessions opened with the old one), a CSRF token and a login id.
- CSRF: every POST (PUT, PATCH, DELETE) must carry the session's token, as
  the form field ``csrf_token`` or the header ``X-CSRF-Token``, in both
  modes (a page on another site can make a browser POST to 127.0.0.1 too).
  Pages get it from ``csrf_token()`` in templates (``<meta name="csrf-token">``).
  Requests authenticated by a bearer token carry no cookie, so no CSRF check.
- Logout ends the login on the server: its id is recorded as ended
  (``helios.web.throttle.Logouts``), so a copy of the cookie taken before
  is refused. Failed logins are limited per user name and per client
  address, with a backoff (``login_max_failures``, ``login_backoff``,
  ``login_max_backoff``): a try too early gets 429 without a check.
- socket.io: ``connect`` is refused without a logged-in session (or a
  valid token in the socket.io ``auth`` data); python-engineio refuses
  cross-origin connections by default. Logging out disconnects the sockets
  opened by that login.
- Environments: an account's limit is applied on the server, to the filter
  of each of its live sessions (``helios.web.sessions.restricted``): the feed
  never hands such a session a line of another environment, whatever the
  browser asks.

For pages added later (search, archie): routes are protected by the
``before_request`` hook here without anything more; use ``current()`` for
the account and ``current().environments`` to limit what a query returns,
and put ``csrf_token()`` in every form or ``fetch`` that POSTs.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import os
import secrets
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import nacl.exceptions
import nacl.pwhash
from flask import Flask, abort, g, jsonify, redirect, render_template, request, session, url_for

from helios import tokens
from helios.errors import ConfigError, HeaderError, ServiceError
from helios.web.throttle import Logouts, Throttle

log = logging.getLogger(__name__)

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
OPEN_ENDPOINTS = frozenset({"login", "static"})
# argon2id as PyNaCl does it by default costs ~64 MiB and ~0.1 s a check: at
# most this many at once, so a flood of logins cannot take the machine's memory.
PASSWORD_CHECKS = 2


@dataclass(frozen=True)
class Account:
    name: str
    environments: frozenset[str] | None  # None: every environment
    kind: str = "password"  # password, token, or open (nobody logs in)

    def may_see(self, environment: str) -> bool:
        return self.environments is None or environment in self.environments


ANONYMOUS = Account("anonymous", None, "open")


def hash_password(password: str) -> str:
    """The argon2id hash of a password, as ``[web] users`` holds it."""
    return nacl.pwhash.argon2id.str(password.encode()).decode()


def loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _environments(text: str) -> frozenset[str] | None:
    names = frozenset(n for n in text.split(",") if n)
    return None if not names or "*" in names else names


class Auth:
    """The accounts of ``[web]`` and the Flask side of logging in."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg
        self.passwords: dict[str, tuple[bytes, Account]] = {}
        self.tokens: list[tuple[bytes, Account]] = []
        problems = []
        for i, entry in enumerate(cfg.users):
            name, _, rest = entry.partition(":")
            hashed, _, envs = rest.partition(":")
            if name in self.passwords:
                problems.append(f"web.users[{i}]: user {name!r} is listed twice")
            self.passwords[name] = (hashed.encode(), Account(name, _environments(envs), "password"))
        for i, entry in enumerate(cfg.tokens):
            name, algo, digest, *envs = entry.split(":")
            self.tokens.append((f"{algo}:{digest}".encode(), Account(name, _environments(envs[0] if envs else ""),
                                                                     "token")))
        if problems:
            raise ConfigError(problems)
        self.required = bool(self.passwords or self.tokens)
        self._checks = threading.BoundedSemaphore(PASSWORD_CHECKS)
        # Checked against when a user name is unknown, so that the answer takes
        # as long as for a known one (no guessing user names by timing).
        self._dummy = nacl.pwhash.argon2id.str(secrets.token_bytes(16))
        self.throttle = Throttle(cfg.login_max_failures, cfg.login_backoff, cfg.login_max_backoff)
        self.logouts = Logouts(cfg.session_max_age, cfg.logouts_file or (cfg.secret_file + ".logouts"
                                                                         if cfg.secret_file else None))

    # --- who is this

    def check_password(self, name: str, password: str) -> Account | None:
        return self._login_password(name, password)[0]

    def check_token(self, token: str) -> Account | None:
        return self._login_token(token)[0]

    def _login_password(self, name: str, password: str) -> tuple[Account | None, str]:
        """The account and the fingerprint of its stored hash, or (None, "")."""
        hashed, account = self.passwords.get(name, (self._dummy, None))
        with self._checks:
            try:
                nacl.pwhash.argon2id.verify(hashed, password.encode("utf-8", "surrogateescape"))
            except (nacl.exceptions.InvalidkeyError, nacl.exceptions.CryptoError, ValueError):
                return None, ""
        return account, _fingerprint(hashed) if account is not None else ""

    def _login_token(self, token: str) -> tuple[Account | None, str]:
        mine = tokens.hash_token(token.strip()).encode()
        found, key = None, ""
        for hashed, account in self.tokens:  # every one compared: constant time in which matched
            if hmac.compare_digest(mine, hashed):
                found, key = account, _fingerprint(hashed)
        return found, key

    def current(self) -> Account | None:
        """The account of this request (or socket.io event), None if nobody is logged in."""
        if not self.required:
            return ANONYMOUS
        account = g.get("helios_account")
        if account is not None:
            return account
        name, kind, key = session.get("user"), session.get("kind"), session.get("key")
        if self.logouts.ended(session.get("login")):  # a copy of a cookie from before its logout
            return None
        if kind == "password" and name in self.passwords:
            hashed, account = self.passwords[name]
            return account if key == _fingerprint(hashed) else None
        if kind == "token":
            return next((a for h, a in self.tokens if key == _fingerprint(h)), None)
        return None

    def bearer(self) -> Account | None:
        """The account of an ``Authorization: Bearer TOKEN`` header, if valid."""
        token = tokens.bearer(request.headers.get("Authorization"))  # HeaderError: 400 in _before
        return None if token is None else self.check_token(token)

    # --- Flask

    def install(self, app: Flask, on_logout=None) -> None:
        """Session settings, the CSRF and login checks, /login and /logout.
        ``on_logout(login_id)`` is told when a login ends (to close its sockets)."""
        app.secret_key = self._secret()
        app.config.update(
            SESSION_COOKIE_NAME="helios_session", SESSION_COOKIE_HTTPONLY=True,
            SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=self.cfg.secure_cookies,
            PERMANENT_SESSION_LIFETIME=self.cfg.session_max_age,
            MAX_CONTENT_LENGTH=self.cfg.max_message_bytes,  # no form or JSON body needs more
        )
        app.jinja_env.globals["csrf_token"] = csrf_token
        app.jinja_env.globals["account"] = self.current
        app.jinja_env.globals["login_required"] = self.required
        app.before_request(self._before)

        @app.route("/login", methods=["GET", "POST"])
        def login():
            if not self.required:
                return redirect(url_for("page"))
            error = None
            if request.method == "POST":
                token = request.form.get("token", "")
                user = request.form.get("user", "")
                # Guesses are limited per client address and per user name (tokens
                # are 256 bits: per client only), before anything is checked.
                keys = [("client", request.remote_addr)] + ([] if token else [("user", user)])
                wait = self.throttle.wait(*keys)
                if wait > 0:
                    log.warning("A login to the web app from %s (user %r) was refused: too many failed "
                                "logins, %.0f s to wait.", request.remote_addr, user[:64] if not token else "(token)",
                                wait)
                    error = f"Too many failed logins: try again in {math.ceil(wait)} s."
                    return render_template("login.html", error=error, next=request.args.get("next", "")), \
                        429, {"Retry-After": str(math.ceil(wait))}
                if token:
                    account, key = self._login_token(token)
                else:
                    account, key = self._login_password(user, request.form.get("password", ""))
                if account is None:
                    self.throttle.failed(*keys)
                else:
                    self.throttle.succeeded(*keys)
                if account is not None:
                    session.clear()  # a new session: nothing carried over from before the login
                    session.permanent = True
                    session.update(user=account.name, kind=account.kind, key=key, csrf=secrets.token_urlsafe(32),
                                   login=secrets.token_urlsafe(16))
                    log.info("%s logged in to the web app from %s (%s).", account.name, request.remote_addr,
                             account.kind)
                    return redirect(_local(request.args.get("next")))
                log.warning("A login to the web app failed from %s (user %r).", request.remote_addr,
                            request.form.get("user", "")[:64] if not token else "(token)")
                error = "Wrong user name, password or token."
            return render_template("login.html", error=error, next=request.args.get("next", "")), \
                401 if error else 200

        @app.post("/logout")
        def logout():
            login_id = session.get("login")
            if login_id:
                self.logouts.end(login_id)  # a copy of the cookie is refused from now on
            session.clear()
            if login_id and on_logout is not None:
                on_logout(login_id)
            return redirect(url_for("login"))

    def _before(self):
        try:
            tokens.bearer(request.headers.get("Authorization"))
        except HeaderError as exc:
            return jsonify(error=str(exc)), 400
        if request.method in UNSAFE and not (request.authorization and "Cookie" not in request.headers):
            sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
            expected = session.get("csrf") or ""
            if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
                abort(403, "The form is missing its CSRF token or it is out of date: reload the page.")
        if not self.required or request.endpoint in OPEN_ENDPOINTS:
            return None
        if self.current() is not None:
            return None
        account = self.bearer()
        if account is not None:
            g.helios_account = account
            return None
        if request.path.startswith("/api/"):
            return jsonify(error="log in first, or send Authorization: Bearer TOKEN"), 401
        return redirect(url_for("login", next=request.full_path if request.query_string else request.path))

    def _secret(self) -> bytes:
        path = self.cfg.secret_file
        if not path:
            return secrets.token_bytes(32)
        try:
            st = os.stat(path)
            if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise ServiceError(f"the session key file {path} is readable by others (mode "
                                   f"{stat.S_IMODE(st.st_mode):o}): chmod 600 {path}")
            key = Path(path).read_bytes().strip()
        except OSError as exc:
            raise ServiceError(f"cannot read the session key file {path}: {exc.strerror or exc}") from None
        if len(key) < 32:
            raise ServiceError(f"the session key file {path} holds {len(key)} bytes; it needs at least 32 "
                               "(head -c 48 /dev/urandom | base64 > FILE)")
        return key


def _fingerprint(stored: bytes) -> str:
    """Names a stored credential (a hash) in a session without giving it away."""
    return hashlib.sha256(b"helios-web-session\0" + stored).hexdigest()[:24]


def csrf_token() -> str:
    """This session's CSRF token (made on first use)."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def _local(target: str | None) -> str:
    """Where to go after login: a path on this site only (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    u = urlsplit(target)
    return target if not u.scheme and not u.netloc else "/"
