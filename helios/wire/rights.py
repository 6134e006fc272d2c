"""Rights per key: what each allow-listed CURVE key may do, and where.

A key on a buck's allow-list (``[security] allow_dir``) has one or more
*roles* and the *environments* they apply to, declared in the metadata
section of its public key file, which ``helios keygen --role --env`` writes::

    metadata
        name = "porter"
        role = "porter"
        environments = "prod staging"      # or "*": every environment
    curve
        public-key = "..."

Roles (``may``)::

    role     send   subscribe   list/fetch/stats   prune, record, report
    sender   yes    -           -                  -
    reader   -      yes (*)     yes                -
    porter   -      yes (*)     yes                yes
    admin    yes    yes (*)     yes                yes

each only for its environments. (*) The live feed cannot refuse one
subscription prefix and keep another (libzmq applies an XPUB subscription
before the application sees it), so a key may connect to it only if it may
read *every* environment; a reader of some environments lists and fetches
them on the query socket instead.

A key file without ``role`` (every key made before roles existed) is a
**sender of every environment**: what a pushing key could do before, so
tailers and relays keep working after an upgrade; it may not subscribe,
list, fetch, prune or report, so a key that was never given a role cannot
read or delete anything. ``role`` without ``environments`` is an error, not
a default: a reader of everything is something to write down.

Who asks, on a socket: ``Peer`` (the rights of the key ZAP authenticated,
or none with CURVE off, and the peer's address). Pure: no sockets.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

__all__ = ["ACTIONS", "ALL", "DEFAULT", "NOBODY", "ROLES", "Peer", "Rights", "format_metadata", "parse"]

ROLES = ("sender", "reader", "porter", "admin")
ALL = "*"
ACTIONS = ("send", "subscribe", "read", "prune")
# What each role allows; admin is every role.
_GRANTS = {"sender": {"send"}, "reader": {"read", "subscribe"}, "porter": {"read", "subscribe", "prune"},
           "admin": set(ACTIONS)}
_ENV = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_LINE = re.compile(r'^\s*(role|environments)\s*=\s*"([^"]*)"\s*(?:#.*)?$', re.MULTILINE)


@dataclass(frozen=True)
class Rights:
    """The roles of one key and its environments (None: every one)."""

    roles: frozenset[str]
    environments: frozenset[str] | None
    declared: bool = True   # False: the key file names no role (the default, DEFAULT)
    name: str = ""          # the key file's name, for messages

    def may(self, action: str, environment: str | None = None) -> bool:
        """Whether this key may ``action`` (one of ACTIONS) in ``environment``
        (None: regardless of which; for subscribe: in every one)."""
        if not any(action in _GRANTS[r] for r in self.roles):
            return False
        if action == "subscribe":
            return self.environments is None
        return environment is None or self.environments is None or environment in self.environments

    def describe(self) -> str:
        envs = "every environment" if self.environments is None else ", ".join(sorted(self.environments))
        what = "/".join(sorted(self.roles))
        return f"{self.name or 'a key'} ({what} of {envs}{'' if self.declared else '; no role declared'})"

    def named(self, name: str) -> Rights:
        return Rights(self.roles, self.environments, self.declared, name)


DEFAULT = Rights(frozenset({"sender"}), None, declared=False)
# The rights of a message whose key has left the allow-list (a SIGHUP before
# its connection was ended), or that came without one: nothing.
NOBODY = Rights(frozenset(), frozenset(), name="a key no longer on the allow-list")


def _split(text: str) -> list[str]:
    return [w for w in re.split(r"[\s,]+", text) if w]


def parse_values(role: str, environments: str) -> Rights:
    """Rights from the words of ``role`` and ``environments`` (space or comma
    separated). ``ValueError`` saying what is wrong."""
    roles = _split(role)
    if not roles:
        raise ValueError(f"role is empty: one or more of {', '.join(ROLES)}")
    bad = [r for r in roles if r not in ROLES]
    if bad:
        raise ValueError(f"unknown role {bad[0]!r}: one or more of {', '.join(ROLES)}")
    envs = _split(environments)
    if not envs:
        raise ValueError('environments is empty: name them, or "*" for every environment')
    if ALL in envs:
        if len(envs) > 1:
            raise ValueError('environments: "*" (every environment) goes alone')
        return Rights(frozenset(roles), None)
    bad = [e for e in envs if not _ENV.fullmatch(e)]
    if bad:
        raise ValueError(f"{bad[0]!r} is not an environment name (letters, digits and _.-)")
    return Rights(frozenset(roles), frozenset(envs))


def parse(text: str) -> Rights:
    """The rights declared in a public key file's text: ``DEFAULT`` when it
    declares none. ``ValueError`` for a role or environment list that is
    wrong, repeated, or one without the other."""
    found: dict[str, str] = {}
    for key, value in _LINE.findall(text):
        if key in found:
            raise ValueError(f"{key} is given twice")
        found[key] = value
    if not found:
        return DEFAULT
    if "role" not in found:
        raise ValueError('environments without role: add role = "sender", "reader", "porter" or "admin"')
    if "environments" not in found:
        raise ValueError('role without environments: add environments = "ENV ..." (or "*" for every one)')
    return parse_values(found["role"], found["environments"])


def format_metadata(rights: Rights) -> str:
    """The metadata lines ``parse`` reads back (``helios keygen`` writes them)."""
    envs = ALL if rights.environments is None else " ".join(sorted(rights.environments))
    return f'    role = "{" ".join(r for r in ROLES if r in rights.roles)}"\n    environments = "{envs}"\n'


@dataclass(frozen=True)
class Peer:
    """Who sent a message: the rights of its CURVE key (None without CURVE)
    and its address (the ZeroMQ ``Peer-Address``; "" when there is none, as
    over ipc://, which only this host can reach)."""

    rights: Rights | None
    address: str = ""

    @property
    def local(self) -> bool:
        """The peer is on this host: a loopback address, or none (ipc://, inproc://)."""
        if not self.address:
            return True
        try:
            ip = ipaddress.ip_address(self.address.strip("[]").split("%")[0])
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return ip.is_loopback

    def who(self) -> str:
        if self.rights is not None:
            return f"key {self.rights.describe()}"
        return f"a client at {self.address}" if self.address else "a local client"
