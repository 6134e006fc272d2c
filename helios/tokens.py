"""Bearer tokens: made once, stored only as hashes, checked in constant time.

A token is shown once, to the operator who made it (``helios keygen --token
ENV``); the config holds only ``hash_token(token)``, a string
``"sha256:<64 hex digits>"``, so a leaked config file does not leak a token.
A token is 32 random bytes (256 bits), so an unsalted SHA-256 is enough: there
is nothing to guess by brute force, and a hash can be compared without
knowing which token it belongs to.

    new_token() -> str                       "hlt_" + 43 URL-safe characters
    hash_token(token) -> str                 "sha256:<hex>"
    check_token(token, hashes) -> bool       token's hash is one of hashes
    bearer(header) -> str | None             the token of an ``Authorization: Bearer`` header;
                                             HeaderError if the header is not printable ASCII

``check_token`` compares against every hash with ``hmac.compare_digest``
and never stops early, so how long it takes says nothing about which hash,
or how much of one, matched.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable

from helios.errors import HeaderError

PREFIX = "hlt_"  # recognisable in a leak scan, and in a mistaken config value
HASH_RE = re.compile(r"sha256:[0-9a-f]{64}")

__all__ = ["HASH_RE", "bearer", "check_token", "hash_token", "is_hash", "new_token"]


def new_token() -> str:
    """A new random token (256 bits), printable and safe in an HTTP header."""
    return PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """What the config stores for ``token``: ``"sha256:<hex>"``."""
    # surrogatepass: a str made from undecodable bytes (surrogateescape) still
    # hashes (to nothing stored) instead of raising.
    return "sha256:" + hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def is_hash(value: str) -> bool:
    """Whether ``value`` is a hash as ``hash_token`` writes it (for config checks)."""
    return isinstance(value, str) and HASH_RE.fullmatch(value) is not None


def check_token(token: str, hashes: Iterable[str]) -> bool:
    """Whether ``token`` hashes to one of ``hashes``, in time that depends
    only on how many hashes there are."""
    mine = hash_token(token).encode("ascii")
    found = False
    for h in hashes:
        # Every hash is compared, even after a match: no early exit to time.
        found |= hmac.compare_digest(mine, h.encode("ascii", "replace"))
    return found


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization`` header value, or None when there is
    no header or it is not ``Bearer TOKEN``. A header that is not printable
    ASCII (what ``new_token`` makes, and what RFC 9110 allows a token) raises
    HeaderError, which a server answers with 400: HTTP servers decode header
    bytes as Latin-1 or UTF-8 with escapes, so such a value is bytes nobody
    meant as a token."""
    if not header:
        return None
    if not (header.isascii() and header.isprintable()):
        raise HeaderError("the Authorization header must be printable ASCII (Bearer TOKEN)")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token
