"""CURVE for the mesh's ZeroMQ sockets: key files, the allow-list, ZAP.

CurveZMQ is NaCl's box (Curve25519, XSalsa20, Poly1305) applied to each
ZeroMQ connection: every byte after the handshake is encrypted and
authenticated, the server proves it holds the secret half of the key its
clients expect, and each client shows its own public key, which the server
checks against an allow-list through ZAP (the ZeroMQ authentication
protocol). ``helios.wire.sockets.SocketFactory`` is the one place that
applies it; this module holds what it needs.

Keys
----
A key pair lives in two files, written by ``helios keygen NAME``, in the
format of ZeroMQ's own tools (``zmq.auth.create_certificates``, CZMQ's
zcert), z85-encoded::

    NAME.key             public half (0644)      public-key = "<40 z85 characters>"
    private/NAME.key_secret   both halves (0600, in a 0700 directory)
                                                 public-key = "..." / secret-key = "..."

A secret key file is refused, naming it, if it is missing, malformed, its
halves do not belong together, or it is readable (or writable) by group or
others. A public key file may also be a single line of 40 z85 characters.

Which key where (``[security]`` of the config, ``helios.config.Security``):
a process *connects* with its own pair (``secret_key``) and checks the
server by ``server_key``; a process that *binds* (a buck, a relay) serves
with ``server_secret_key`` and lets in only the clients whose public key
file is in ``allow_dir``. So one config file can describe one environment's
whole mesh: the same paths, a different key behind them on each host.

The allow-list
--------------
``ZapHandler`` answers ZAP requests for every CURVE server socket of one
ZeroMQ context, from a thread of its own, against the public keys found in
``allow_dir`` (every ``*.key`` file). ``reload`` re-reads the directory
(SIGHUP); the set is swapped whole, so a request sees the old list or the
new one. ZAP runs only during a connection's handshake: to refuse a key
removed from the list *now*, its owner's open connections must end, which
is what ``SocketFactory.reload_allow_list`` does (it rebinds the server
sockets, and every client handshakes again).

Each key has a role and environments (``helios.wire.rights``: sender,
reader, porter, admin), read from its key file with it. ZAP answers with
the key itself (z85) as the connection's User-Id, so that a buck looks up
the *current* rights of whoever sent a message (``ZapHandler.rights_of``):
a key's rights changed in its file count from the next SIGHUP, for open
connections too. The live feed's sockets use their own ZAP domain
(``LIVE_DOMAIN``), where a key is let in only if it may subscribe
(``Rights.may("subscribe")``): an XPUB cannot refuse one subscription, so
the handshake is where a sender's key is turned away.

A client refused during the handshake is not reconnected by ZeroMQ (it ends
the connection for good); ``helios.wire.fanout`` reports it and tries again
after a while, so a key added later is picked up without a restart.

The process's security
----------------------
The CLI loads ``[security]`` once (``use``) before it builds a service, and
every ``SocketFactory`` made without an explicit ``curve=`` takes it
(``installed``). So a socket made by code that does not know about CURVE is
still a CURVE socket, or is refused: with CURVE on, there is no way to a
plaintext tcp:// or ipc:// socket.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import zmq
import zmq.utils.z85 as z85

from helios.errors import ConfigError, ServiceError
from helios.wire import rights as rights_mod
from helios.wire.rights import Rights

log = logging.getLogger(__name__)

ZAP_ENDPOINT = "inproc://zeromq.zap.01"
ZAP_DOMAIN = b"helios"
LIVE_DOMAIN = b"helios.live"   # the live feed's sockets: only keys that may subscribe
PUBLIC_SUFFIX = ".key"
SECRET_SUFFIX = ".key_secret"
PRIVATE_DIR = "private"

# Commands (config sections) whose process binds sockets that clients
# connect to, and so serves with server_secret_key and an allow-list.
SERVES = frozenset({"buck", "relay"})
# ... and those whose whole job is to connect to bucks (or to a relay), so
# their keys are required at start. Other commands (history, search, export)
# get the keys that are set, and a socket they make without keys is refused
# when it is made.
CONNECTS = frozenset({"tailer", "relay", "web", "subscribe", "graphite", "query", "porter", "client"})

_KEY_LINE = re.compile(r'^\s*(public|secret)-key\s*=\s*"([^"]*)"\s*$', re.M)
_Z85 = re.compile(r"[0-9a-zA-Z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}")

__all__ = ["Curve", "KeyPair", "ZapHandler", "installed", "load", "read_public", "read_secret", "use",
           "write_keypair", "zap_handler"]


# --------------------------------------------------------------------------- key files

@dataclass(frozen=True)
class KeyPair:
    public: bytes   # z85, 40 bytes, as libzmq's socket options take it
    secret: bytes
    path: str       # where it was read, for messages

    def __repr__(self) -> str:  # never show the secret half, even in a traceback
        return f"KeyPair(public={self.public.decode()!r}, path={self.path!r})"


def _z85_key(text: str, path: str, what: str) -> bytes:
    if not _Z85.fullmatch(text):
        raise ServiceError(f"{path}: the {what} key is not 40 z85 characters (a CURVE key as "
                           "`helios keygen` writes it)")
    return text.encode("ascii")


def _read_text(path: str | os.PathLike) -> str:
    try:
        with open(path, encoding="ascii") as f:
            return f.read(64 * 1024)
    except FileNotFoundError:
        raise ServiceError(f"{path}: no such key file") from None
    except UnicodeDecodeError:
        raise ServiceError(f"{path}: not a key file (it is not ASCII text)") from None
    except OSError as exc:
        raise ServiceError(f"{path}: cannot read the key file ({exc.strerror or exc})") from None


def _keys_in(text: str) -> dict[str, str]:
    return {kind: value for kind, value in _KEY_LINE.findall(text)}


def read_public(path: str | os.PathLike) -> bytes:
    """The public key in a ``NAME.key`` file (or a ``.key_secret`` one, or a
    file of one z85 line); ``ServiceError`` naming the file otherwise."""
    path = str(path)
    text = _read_text(path)
    found = _keys_in(text)
    if "public" in found:
        return _z85_key(found["public"], path, "public")
    if _Z85.fullmatch(text.strip()):
        return text.strip().encode("ascii")
    raise ServiceError(f'{path}: no public key in it (expected a line public-key = "..." as '
                       "`helios keygen` writes)")


def read_secret(path: str | os.PathLike) -> KeyPair:
    """The key pair in a ``NAME.key_secret`` file, refused (``ServiceError``
    naming the file) if others may read it, or it is malformed."""
    path = str(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ServiceError(f"{path}: no such secret key file") from None
    except OSError as exc:
        raise ServiceError(f"{path}: cannot read the secret key file ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise ServiceError(f"{path}: a secret key must be a regular file")
    if st.st_mode & 0o077:
        # Like ssh with a private key: a secret others could read is no longer secret.
        raise ServiceError(f"{path}: the secret key file is accessible to group or others (mode "
                           f"{stat.S_IMODE(st.st_mode):04o}); make it readable by its owner only: chmod 600 {path}")
    found = _keys_in(_read_text(path))
    if "secret" not in found:
        raise ServiceError(f'{path}: no secret key in it (expected a line secret-key = "..."; is this '
                           "the public .key file?)")
    secret = _z85_key(found["secret"], path, "secret")
    try:
        public = zmq.curve_public(secret)
    except (zmq.ZMQError, ValueError):
        raise ServiceError(f"{path}: the secret key is not a valid CURVE key") from None
    if "public" in found and _z85_key(found["public"], path, "public") != public:
        raise ServiceError(f"{path}: its public key is not the one of its secret key (the file was edited?)")
    return KeyPair(public, secret, path)


_BANNER = """#   ****  Generated on {when} by helios keygen  ****
#   ZeroMQ CURVE {kind} Certificate ({name})
#   {advice}

metadata
    name = "{name}"
curve
"""


def write_keypair(directory: str | os.PathLike, name: str, rights: Rights | None = None) -> tuple[Path, Path]:
    """Make a key pair: ``DIR/NAME.key`` (public, 0644) and
    ``DIR/private/NAME.key_secret`` (0600; ``private`` is made 0700).
    ``rights``: the role and environments written in the public file's
    metadata (``helios.wire.rights``; None: none, the default sender).
    Never overwrites a key; ``ServiceError`` saying why it could not."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", name) or name.endswith((".key", ".key_secret")):
        raise ServiceError(f"{name!r} is not a key name: letters, digits and _.- (like buck-a or web)")
    top = Path(directory)
    private = top / PRIVATE_DIR
    public_path, secret_path = top / (name + PUBLIC_SUFFIX), private / (name + SECRET_SUFFIX)
    try:
        top.mkdir(parents=True, exist_ok=True)
        private.mkdir(mode=0o700, exist_ok=True)
        st = private.stat()
        if st.st_mode & 0o077:
            raise ServiceError(f"{private}: the directory for secret keys is open to group or others (mode "
                               f"{stat.S_IMODE(st.st_mode):04o}); chmod 700 {private} first")
        for p in (public_path, secret_path):
            if p.exists():
                raise ServiceError(f"{p} exists already; keygen never overwrites a key (remove it first "
                                   "if it is really to be replaced)")
        public, secret = zmq.curve_keypair()
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        secret_text = (_BANNER.format(when=when, kind="**Secret**", name=name,
                                      advice="DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.")
                       + f'    public-key = "{public.decode()}"\n    secret-key = "{secret.decode()}"\n')
        banner = _BANNER.format(when=when, kind="Public", name=name,
                                advice="Copy it to the allow_dir of the bucks this key may connect to.")
        if rights is not None:  # in the metadata section, before "curve"
            banner = banner.replace("\ncurve\n", "\n" + rights_mod.format_metadata(rights) + "curve\n")
        public_text = banner + f'    public-key = "{public.decode()}"\n'

        # The secret is created 0600 (O_EXCL: never through a file or link put there before).
        fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secret_text)
        fd = os.open(public_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(public_text)
        os.chmod(public_path, 0o644)  # whatever the umask: a public key is for others to read
    except OSError as exc:
        raise ServiceError(f"cannot write the key pair {name} under {top}: {exc.strerror or exc}") from None
    return public_path, secret_path


def read_rights(path: str | os.PathLike) -> Rights:
    """The rights declared in a public key file (``helios.wire.rights``),
    named after the file; ``ServiceError`` naming it if they are wrong."""
    try:
        return rights_mod.parse(_read_text(path)).named(os.path.basename(path))
    except ValueError as exc:
        raise ServiceError(f"{path}: {exc}") from None


def read_allow_dir(directory: str | os.PathLike) -> tuple[dict[bytes, Rights], list[str]]:
    """The public keys of every ``*.key`` file in ``directory`` (key -> its
    rights, named after the file), and a problem per file that could not be
    read. ``ServiceError`` if the directory itself cannot be listed."""
    allowed: dict[bytes, Rights] = {}
    problems: list[str] = []
    try:
        names = sorted(os.listdir(directory))
    except OSError as exc:
        raise ServiceError(f"{directory}: cannot list the allow-list directory ({exc.strerror or exc})") from None
    for name in names:
        if not name.endswith(PUBLIC_SUFFIX) or name.startswith("."):
            continue
        try:
            path = os.path.join(directory, name)
            key = read_public(path)
            allowed[key] = read_rights(path)
        except ServiceError as exc:
            problems.append(str(exc))
    return allowed, problems


# --------------------------------------------------------------------------- what a process uses

@dataclass(frozen=True)
class Curve:
    """The CURVE material of one process, loaded and checked (``load``)."""

    own: KeyPair | None = None          # secret_key: what it connects with
    server_public: bytes | None = None  # server_key: who it connects to
    server: KeyPair | None = None       # server_secret_key: what it binds with
    allow_dir: str | None = None        # allow_dir: who may connect to it
    relay_public: bytes | None = None   # relay_key: the host's relay, for the client library

    def to_relay(self) -> "Curve":
        """The same keys, connecting to the host's relay instead of the bucks."""
        return replace(self, server_public=self.relay_public)

    def client_problem(self) -> str | None:
        if self.own is None:
            return "secret_key (this process's own key pair) is not set"
        if self.server_public is None:
            return "server_key (the public key of the server it connects to) is not set"
        return None

    def server_problem(self) -> str | None:
        if self.server is None:
            return "server_secret_key (the key pair bound sockets serve with) is not set"
        if self.allow_dir is None:
            return "allow_dir (the public keys of the clients let in) is not set"
        return None


def load(sec, serve: bool = False, connect: bool = True, what: str = "this command",
         relay: bool = False) -> Curve | None:
    """The ``Curve`` of ``[security]`` ``sec`` (a ``helios.config.Security``),
    or None when CURVE is off. ``serve``/``connect``: whether the process
    binds or connects, so that the keys it needs are required; ``relay``: it
    connects to the host's relay (needs ``relay_key``). Raises ConfigError
    listing every problem, each naming the key and the file."""
    if not sec.curve:
        return None
    problems: list[str] = []
    loaded: dict[str, object] = {}

    def need(key: str, why: str) -> None:
        if not getattr(sec, key):
            problems.append(f"security.{key}: required for {what} when curve = true ({why})")

    if serve:
        need("server_secret_key", "the key pair its bound sockets serve with")
        need("allow_dir", "the directory of the client public keys it lets in")
    if connect:
        need("secret_key", "its own key pair, whose public half is in the servers' allow_dir")
        need("relay_key" if relay else "server_key", "the public key of the relay it sends to" if relay
             else "the public key of the bucks it connects to")
    # Only the keys of the process's role are read: one config file serves a
    # whole mesh, and a tailer host has no server secret key file (nor should).
    # A command of neither role reads those it finds, and refuses a socket
    # that would need one it has not.
    wanted = ({"server_secret_key"} if serve else set()) | (
        {"secret_key", "relay_key" if relay else "server_key"} if connect else set())
    for key, reader in (("secret_key", read_secret), ("server_secret_key", read_secret),
                        ("server_key", read_public), ("relay_key", read_public)):
        path = getattr(sec, key)
        if not path or (wanted and key not in wanted) or (not wanted and not os.path.exists(path)):
            continue
        try:
            loaded[key] = reader(path)
        except ServiceError as exc:
            problems.append(f"security.{key}: {exc}")
    # check-config (neither role) checks an allow-list it finds too: keys and rights.
    if sec.allow_dir and (serve or (not wanted and os.path.isdir(sec.allow_dir))):
        try:
            _, bad = read_allow_dir(sec.allow_dir)
            problems += [f"security.allow_dir: {p}" for p in bad]
        except ServiceError as exc:
            problems.append(f"security.allow_dir: {exc}")
    if problems:
        raise ConfigError(problems, source="[security]")
    return Curve(own=loaded.get("secret_key"), server_public=loaded.get("server_key"),
                 server=loaded.get("server_secret_key"), allow_dir=sec.allow_dir or None,
                 relay_public=loaded.get("relay_key"))


_installed: Curve | None = None


def use(sec, section: str) -> Curve | None:
    """Load ``[security]`` for the command of config section ``section`` and
    make it the process's (``installed``). ConfigError if it cannot be."""
    global _installed
    _installed = load(sec, serve=section in SERVES, connect=section in CONNECTS, what=f"helios {section}")
    return _installed


def installed() -> Curve | None:
    """The process's CURVE settings (None: plaintext), for factories made without any."""
    return _installed


def install(curve: Curve | None) -> None:
    """Set the process's CURVE settings directly (embedding, tests, benchmarks)."""
    global _installed
    _installed = curve


# --------------------------------------------------------------------------- ZAP

class ZapHandler:
    """Answers ZAP requests of one context's CURVE servers from a daemon
    thread: a client is let in if its public key is in ``allow_dir``."""

    REFUSAL_LOG_S = 60.0  # a refused client retries; say so once a minute per key
    # ... and at most this many refusals a minute in all: the key is the client's to choose,
    # so a flood of fresh keys must not become a flood of warnings. The rest are counted.
    REFUSAL_LOG_MAX = 5
    _refusal_window = -1e9   # when the current minute of refusal warnings began
    _refusals_in_window = 0
    _refusals_unlogged = 0   # refusals not logged since the last warning

    def __init__(self, context: zmq.Context, allow_dir: str) -> None:
        self.context = context
        self.allow_dir = allow_dir
        allowed, problems = read_allow_dir(allow_dir)
        if problems:
            raise ServiceError("; ".join(problems))
        # key (z85) -> rights; swapped whole by reload, read by the thread and by rights_of
        self.allowed: dict[bytes, Rights] = allowed
        self.counts = {"allowed": 0, "refused": 0, "refused_role": 0}
        self.changed: list[str] = []  # keys whose rights the last reload changed
        self._refusals_logged: dict[bytes, float] = {}
        self._stopping = threading.Event()
        self._sock = context.socket(zmq.REP)
        self._sock.linger = 0
        try:
            self._sock.bind(ZAP_ENDPOINT)
        except zmq.ZMQError as exc:
            self._sock.close()
            raise ServiceError(f"cannot start the CURVE authenticator: {exc}") from None
        # The socket is handed to the thread before it starts; only it uses it from now on.
        self._thread = threading.Thread(target=self._run, name="helios-zap", daemon=True)
        self._thread.start()
        log.info("CURVE: %d client key(s) allowed, from %s.", len(allowed), allow_dir)
        _log_undeclared(allowed)

    def rights_of(self, user_id: bytes | str | None) -> Rights | None:
        """The current rights of the key ZAP let in as ``user_id`` (the
        User-Id of a message, the z85 key); None if it is no longer listed."""
        if not user_id:
            return None
        return self.allowed.get(user_id.encode("ascii", "replace") if isinstance(user_id, str) else user_id)

    def reload(self) -> tuple[list[str], list[str]]:
        """Re-read ``allow_dir``; returns the names of the keys added and of
        those removed. A file that cannot be read is left out (logged); a
        directory that cannot be listed leaves the running list as it is."""
        try:
            allowed, problems = read_allow_dir(self.allow_dir)
        except ServiceError as exc:
            log.error("CURVE allow-list not reloaded, the running one stays: %s", exc)
            return [], []
        for p in problems:
            log.error("CURVE allow-list: %s; that file is left out.", p)
        old, self.allowed = self.allowed, allowed
        added = sorted(allowed[k].name for k in allowed.keys() - old.keys())
        removed = sorted(old[k].name for k in old.keys() - allowed.keys())
        changed = sorted(allowed[k].describe() for k in allowed.keys() & old.keys()
                         if (allowed[k].roles, allowed[k].environments) != (old[k].roles, old[k].environments))
        # Rights changed: the factory ends every connection as for a removed
        # key, so that the live feed's handshake check is made again.
        self.changed = changed
        log.info("CURVE allow-list reloaded from %s: %d key(s) allowed%s%s%s.", self.allow_dir, len(allowed),
                 f", added {', '.join(added)}" if added else "", f", removed {', '.join(removed)}" if removed else "",
                 f", rights changed: {'; '.join(changed)}" if changed else "")
        _log_undeclared({k: allowed[k] for k in allowed.keys() - old.keys()})
        return added, removed

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(5)

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                if not self._sock.poll(200):
                    continue
                try:
                    request = self._sock.recv_multipart()
                except zmq.ZMQError:
                    return  # context terminated
                self._sock.send_multipart(self._answer(request))
        finally:
            self._sock.close(linger=0)

    def _answer(self, request: list[bytes]) -> list[bytes]:
        if len(request) < 6:
            return [b"1.0", b"", b"500", b"malformed ZAP request", b"", b""]
        version, request_id, domain, address, _identity, mechanism, *credentials = request
        if version != b"1.0":
            return [b"1.0", request_id, b"500", b"unknown ZAP version", b"", b""]
        key = z85.encode(credentials[0]) if mechanism == b"CURVE" and credentials and len(credentials[0]) == 32 else None
        rights = self.allowed.get(key) if key is not None and domain in (ZAP_DOMAIN, LIVE_DOMAIN) else None
        if rights is not None and domain == LIVE_DOMAIN and not rights.may("subscribe"):
            self.counts["refused_role"] += 1
            self._log_role_refusal(rights, address.decode(errors="replace"))
            return [version, request_id, b"400", b"this key may not read the live feed", b"", b""]
        if rights is not None:
            self.counts["allowed"] += 1
            # The User-Id of every message on this connection: the key itself,
            # so that its rights are looked up as they are now (rights_of).
            return [version, request_id, b"200", b"OK", key, b""]
        self.counts["refused"] += 1
        self._log_refusal(key, address.decode(errors="replace"), mechanism.decode(errors="replace"))
        return [version, request_id, b"400", b"client key not allowed", b"", b""]

    def _log_role_refusal(self, rights: Rights, address: str) -> None:
        now = time.monotonic()
        tag = b"role:" + rights.name.encode()
        if now - self._refusals_logged.get(tag, -1e9) < self.REFUSAL_LOG_S:
            return
        self._refusals_logged[tag] = now
        log.warning("CURVE: refused %s from %s on the live feed: only a reader, porter or admin key of every "
                    "environment may subscribe (logged once a minute per key).", rights.describe(), address or "?")

    def _log_refusal(self, key: bytes | None, address: str, mechanism: str) -> None:
        now = time.monotonic()
        tag = key or b""
        if now - self._refusal_window >= self.REFUSAL_LOG_S:
            self._refusal_window, self._refusals_in_window = now, 0
        if (now - self._refusals_logged.get(tag, -1e9) < self.REFUSAL_LOG_S
                or self._refusals_in_window >= self.REFUSAL_LOG_MAX):
            self._refusals_unlogged += 1
            return
        if len(self._refusals_logged) > 10_000:  # a flood of made-up keys must not cost memory
            self._refusals_logged.clear()
        self._refusals_logged[tag] = now
        self._refusals_in_window += 1
        unlogged, self._refusals_unlogged = self._refusals_unlogged, 0
        who = f"public key {key.decode()}" if key else f"mechanism {mechanism}"
        more = f"; {unlogged} more refusals were not logged since the last report" if unlogged else ""
        log.warning("CURVE: refused a client from %s with %s: not in the allow-list %s (logged once a minute "
                    "per key, and at most %d a minute in all%s).", address or "?", who, self.allow_dir,
                    self.REFUSAL_LOG_MAX, more)


def _log_undeclared(allowed: dict[bytes, Rights]) -> None:
    names = sorted(r.name for r in allowed.values() if not r.declared)
    if names:
        log.info("CURVE: %d key(s) declare no role and are senders of every environment (they may push, "
                 "never subscribe, list, fetch or prune): %s. Give a key a role with role = \"...\" and "
                 "environments = \"...\" in its file (docs/security.md).", len(names),
                 ", ".join(names[:20]) + (" ..." if len(names) > 20 else ""))


_handlers: dict[zmq.Context, ZapHandler] = {}
_handlers_lock = threading.Lock()


def zap_handler(context: zmq.Context, allow_dir: str) -> ZapHandler:
    """The ZAP handler of ``context``, started on first use (one per context:
    ZAP's endpoint is one per context)."""
    with _handlers_lock:
        handler = _handlers.get(context)
        if handler is None:
            handler = _handlers[context] = ZapHandler(context, allow_dir)
        elif os.path.abspath(handler.allow_dir) != os.path.abspath(allow_dir):
            raise ServiceError(f"one ZeroMQ context cannot check clients against two allow-lists "
                               f"({handler.allow_dir} and {allow_dir})")
        return handler
