"""Sealing archive objects (helios.archive.seal): a round trip with the
secret key, and every change to the sealed bytes refused, naming the key."""

import os

import pytest
from nacl.public import PrivateKey

from helios import archive as archive_mod
from helios.archive.seal import MAGIC, SealedArchive, Sealer, load_sealer
from helios.archive.store import FolderArchive
from helios.errors import ArchiveError, ServiceError
from helios.wire.curve import write_keypair

KEY = "prod/2024/01/31/235900-60s.hea"


@pytest.fixture
def keypair():
    k = PrivateKey.generate()
    return bytes(k.public_key), bytes(k)


def test_sealed_bytes_unseal_to_what_was_sealed_and_each_seal_differs(keypair):
    public, secret = keypair
    writer, reader = Sealer(public), Sealer(secret=secret)
    data = b"packed archive object " * 100
    a, b = writer.seal(KEY, data), writer.seal(KEY, data)
    assert a != b and a.startswith(MAGIC) and b"packed archive" not in a
    assert reader.unseal(KEY, a) == reader.unseal(KEY, b) == data
    assert reader.unseal(KEY, writer.seal(KEY, b"")) == b""


def test_every_changed_byte_and_every_truncation_is_refused(keypair):
    public, secret = keypair
    sealed = Sealer(public).seal(KEY, b"x" * 300)
    reader = Sealer(secret=secret)
    for i in range(len(sealed)):
        changed = bytearray(sealed)
        changed[i] ^= 0x40
        with pytest.raises(ArchiveError) as err:
            reader.unseal(KEY, bytes(changed))
        assert err.value.key == KEY
    for n in (0, 3, len(MAGIC), len(MAGIC) + 47, len(sealed) - 1):
        with pytest.raises(ArchiveError, match=KEY):
            reader.unseal(KEY, sealed[:n])


def test_an_object_sealed_to_another_key_or_for_another_window_is_refused(keypair):
    public, secret = keypair
    other = Sealer(bytes(PrivateKey.generate().public_key)).seal(KEY, b"data")
    with pytest.raises(ArchiveError, match="fails its seal check"):
        Sealer(secret=secret).unseal(KEY, other)
    elsewhere = Sealer(public).seal("prod/2024/01/31/000000-60s.hea", b"data")
    with pytest.raises(ArchiveError, match="holds the sealed object of prod/2024/01/31/000000-60s.hea"):
        Sealer(secret=secret).unseal(KEY, elsewhere)


def test_a_sealed_folder_archive_round_trips_events_and_a_writer_cannot_read(tmp_path):
    public, secret = write_keypair(tmp_path / "keys", "archive")
    folder = FolderArchive(tmp_path / "archive")
    from tests.unit.test_archive_store import window_events  # the store's own sample window

    events = window_events()
    archive_mod.save(SealedArchive(folder, load_sealer(str(public))), KEY, events)
    reader = SealedArchive(folder, load_sealer(secret_path=str(secret)))
    assert archive_mod.load(reader, KEY) == archive_mod.unpack(archive_mod.pack(events))
    assert b"Accepted publickey" not in (tmp_path / "archive" / KEY).read_bytes()
    with pytest.raises(ArchiveError, match="needs the archive's secret key"):
        archive_mod.load(SealedArchive(folder, load_sealer(str(public))), KEY)


def test_key_files_are_checked_when_the_sealer_is_loaded(tmp_path):
    public, secret = write_keypair(tmp_path / "keys", "archive")
    other, _ = write_keypair(tmp_path / "keys", "other")
    assert load_sealer() is None
    assert load_sealer(str(public)).can_read is False
    assert load_sealer(secret_path=str(secret)).can_read is True
    with pytest.raises(ServiceError, match="not the public half"):
        load_sealer(str(other), str(secret))
    os.chmod(secret, 0o644)
    with pytest.raises(ServiceError, match=f"{secret}: the secret key file is accessible"):
        load_sealer(secret_path=str(secret))
