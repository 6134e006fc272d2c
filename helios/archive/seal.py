"""Archive objects sealed at rest with PyNaCl: S3 never holds plaintext.

A sealed object is what ``helios.archive.format.pack`` wrote, encrypted and
authenticated to the archive's public key with NaCl's sealed box (an
ephemeral Curve25519 key, XSalsa20-Poly1305)::

    "HLSEAL1\\n"  |  sealed box of ( key length u16 BE | key (UTF-8) | packed object )

- Writing needs only the public key: a porter that holds nothing but
  ``archive_public_key`` can archive, and cannot read back what it wrote.
- Reading needs the secret key (``archive_secret_key``: history builds,
  ``helios export``). Any change to the bytes (a flipped bit, a truncation,
  an object sealed to another key) fails the Poly1305 check, so it is
  refused, with its key, before a byte of it is unpacked.
- The object's own key is sealed inside it, so an object copied or moved to
  another key (another window) is refused too, though its seal is intact.
- With sealing on, an object that is not sealed is refused: anyone who can
  write to the bucket could otherwise plant plaintext events.

The key files are those of ``helios keygen NAME`` (CURVE keys are Curve25519
keys: the same files serve): the public ``NAME.key`` for the porter, the
secret ``private/NAME.key_secret`` (mode 0600) for the readers.

``Sealer`` implements ``helios.archive.Sealer`` (for ``save``/``load``);
``SealedArchive`` wraps a backend so that its ``put``/``get`` seal and
unseal, which is how the porter and history builds use it.
"""

from __future__ import annotations

import struct
from typing import Iterator

import zmq.utils.z85 as z85
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from helios.archive.store import Stored
from helios.errors import ArchiveError, ServiceError

MAGIC = b"HLSEAL1\n"

__all__ = ["MAGIC", "SealedArchive", "Sealer", "load_sealer"]


class Sealer:
    """Seals to ``public`` (32 bytes); unseals with ``secret`` (32 bytes) if given."""

    def __init__(self, public: bytes | None = None, secret: bytes | None = None) -> None:
        if secret is not None:
            self._private: PrivateKey | None = PrivateKey(secret)
            derived = bytes(self._private.public_key)
            if public is not None and public != derived:
                raise ServiceError("archive_public_key is not the public half of archive_secret_key")
            public = derived
        else:
            self._private = None
        if public is None:
            raise ValueError("a sealer needs a public key or a secret key")
        self._box = SealedBox(PublicKey(public))
        self._opener = SealedBox(self._private) if self._private is not None else None

    @property
    def can_read(self) -> bool:
        return self._opener is not None

    def seal(self, key: str, data: bytes) -> bytes:
        name = key.encode("utf-8")
        return MAGIC + self._box.encrypt(struct.pack(">H", len(name)) + name + data)

    def unseal(self, key: str, data: bytes) -> bytes:
        if not data.startswith(MAGIC):
            what = "truncated" if MAGIC.startswith(data) else "not sealed"
            raise ArchiveError(f"archive object {key} is {what}, and this archive is sealed: refused, nothing "
                               "of it loaded (written by a porter without archive_public_key, or planted)",
                               key=key)
        if self._opener is None:
            raise ArchiveError(f"archive object {key} is sealed; reading it needs the archive's secret key "
                               "([porter] archive_secret_key)", key=key)
        try:
            plain = self._opener.decrypt(data[len(MAGIC):])
        except CryptoError:
            raise ArchiveError(f"archive object {key} fails its seal check: it was changed or truncated after "
                               f"it was written, or sealed to another key ({len(data)} bytes); refused, nothing "
                               "of it loaded", key=key) from None
        n = struct.unpack_from(">H", plain)[0] if len(plain) >= 2 else len(plain)
        inside = plain[2:2 + n].decode("utf-8", "replace")
        if inside != key or len(plain) < 2 + n:
            raise ArchiveError(f"archive object {key} holds the sealed object of {inside}: it was copied or "
                               "moved; refused, nothing of it loaded", key=key)
        return plain[2 + n:]


def _raw(z85_key: bytes) -> bytes:
    return z85.decode(z85_key)


def load_sealer(public_path: str = "", secret_path: str = "") -> Sealer | None:
    """The archive's ``Sealer`` from its key files (``helios keygen``), or
    None when neither is set (objects stored as packed). ``ServiceError``
    naming the file if one cannot be used (a secret key others can read
    included)."""
    from helios.wire.curve import read_public, read_secret

    if not public_path and not secret_path:
        return None
    public = _raw(read_public(public_path)) if public_path else None
    secret = None
    if secret_path:
        pair = read_secret(secret_path)
        secret = _raw(pair.secret)
    try:
        return Sealer(public, secret)
    except ServiceError as exc:
        raise ServiceError(f"{public_path}: {exc} ({secret_path})") from None


class SealedArchive:
    """A backend whose objects are sealed: ``put`` seals, ``get`` unseals
    (``ArchiveError`` naming the key for an object that fails). ``head``,
    ``list``, ``delete`` and ``verify`` are the backend's: sizes and
    checksums are those of the sealed bytes, as stored."""

    def __init__(self, backend, sealer: Sealer) -> None:
        self.backend = backend
        self.sealer = sealer

    def __repr__(self) -> str:
        return f"SealedArchive({self.backend!r})"

    def put(self, key: str, data: bytes) -> Stored:
        return self.backend.put(key, self.sealer.seal(key, data))

    def get(self, key: str) -> bytes:
        return self.sealer.unseal(key, self.backend.get(key))

    def head(self, key: str) -> Stored | None:
        return self.backend.head(key)

    def list(self, prefix: str = "") -> Iterator[str]:
        return self.backend.list(prefix)

    def delete(self, key: str) -> None:
        self.backend.delete(key)

    def verify(self, want: Stored) -> Stored:
        return self.backend.verify(want)

    def close(self) -> None:
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()
