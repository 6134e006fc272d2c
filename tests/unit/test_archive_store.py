"""The folder archive backend, archive keys, and the save/load seam between format and store."""

import hashlib
import os

import hypothesis.strategies as st
import pytest
from hypothesis import given

from helios import archive
from helios.archive import store
from helios.archive.store import FolderArchive, Stored, key_for, open_archive, window_of
from helios.errors import ArchiveError
from helios.model import Event, line_id, source_key

KEY = "prod/2024/01/31/235900-60s.hea"
T0 = 1_706_745_540_000_000_000  # 2024-01-31 23:59:00 UTC


@pytest.fixture
def folder(tmp_path):
    return FolderArchive(tmp_path / "archive")


def flip_byte(path, at):
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


# --- keys --------------------------------------------------------------------

def test_a_window_has_one_key_and_the_key_names_its_window():
    assert key_for("prod", T0, 60) == KEY
    assert window_of(KEY) == ("prod", T0, 60)
    assert key_for("web.eu-1", 0, 86400) == "web.eu-1/1970/01/01/000000-86400s.hea"


@given(env=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}", fullmatch=True),
       width=st.sampled_from([1, 10, 60, 300, 3600, 86400]), n=st.integers(0, 10**8))
def test_window_of_is_the_inverse_of_key_for(env, width, n):
    start = n * width * 1_000_000_000
    if start // 1_000_000_000 > 253_402_214_400:  # past the year 9999
        return
    assert window_of(key_for(env, start, width)) == (env, start, width)


@pytest.mark.parametrize("args", [("prod", T0 + 1, 60), ("prod", T0 + 30 * 10**9, 60), ("prod", T0, 7),
                                  ("../etc", T0, 60), ("", T0, 60), ("prod", -60 * 10**9, 60)])
def test_key_for_refuses_what_is_not_a_window(args):
    with pytest.raises(ArchiveError):
        key_for(*args)


@pytest.mark.parametrize("key", ["prod/2024/1/31/235900-60s.hea", "prod/2024/01/31/235930-60s.hea",
                                 "prod/2024/02/30/000000-60s.hea", "prod/2024/01/31/235900-060s.hea",
                                 "prod/20240131/235900-60s.hea", "prod/2024/01/31/235900-60s.bkt", "x"])
def test_window_of_refuses_keys_key_for_could_not_have_made(key):
    with pytest.raises(ArchiveError, match="not an archive key"):
        window_of(key)


@pytest.mark.parametrize("key", ["../outside", "/etc/passwd", "a//b", "a/../../b", ".hidden", "a/.tmp", "", "a b"])
def test_keys_that_could_escape_the_folder_or_hide_are_refused(folder, key):
    with pytest.raises(ArchiveError, match="not a valid archive key"):
        folder.put(key, b"x")


# --- folder backend -----------------------------------------------------------

def test_put_get_head_list_delete_round_trip(folder):
    data = b"\x93HEA some archive bytes \x00\xff" * 100
    stored = folder.put(KEY, data)
    assert stored == Stored(KEY, len(data), hashlib.sha256(data).hexdigest())
    assert folder.head(KEY) == stored
    assert folder.get(KEY) == data
    assert list(folder.list()) == [KEY]
    folder.delete(KEY)
    assert folder.head(KEY) is None
    assert list(folder.list()) == []
    folder.delete(KEY)  # deleting what is gone is fine


def test_list_is_sorted_and_filters_by_prefix(folder):
    keys = [key_for("prod", T0 - 3540 * 10**9 + i * 3600 * 10**9, 3600) for i in range(3)] + [key_for("qa", T0, 60)]
    for k in reversed(keys):
        folder.put(k, b"x")
    assert list(folder.list()) == sorted(keys)
    assert list(folder.list("prod/")) == sorted(keys[:3])
    assert list(folder.list("prod/2024/02/")) == sorted(keys[1:3])
    assert list(folder.list("prod/2024/01/31/")) == [keys[0]]
    assert list(folder.list("pro")) == sorted(keys[:3])
    assert list(folder.list("staging/")) == []


def test_a_put_replaces_the_object_whole(folder):
    folder.put(KEY, b"old" * 1000)
    folder.put(KEY, b"new")
    assert folder.get(KEY) == b"new"
    assert folder.head(KEY).size == 3


def test_a_flipped_byte_in_a_stored_object_is_detected_on_get_naming_the_key(folder):
    stored = folder.put(KEY, b"precious events " * 50)
    flip_byte(folder.root / KEY, 100)
    with pytest.raises(ArchiveError, match=KEY) as err:
        folder.get(KEY)
    assert err.value.key == KEY
    assert "corrupt" in str(err.value)
    with pytest.raises(ArchiveError, match=KEY):
        folder.verify(stored)


def test_a_truncated_object_is_detected(folder):
    folder.put(KEY, b"precious events " * 50)
    path = folder.root / KEY
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(ArchiveError, match=KEY):
        folder.get(KEY)
    path.write_bytes(b"tiny")
    with pytest.raises(ArchiveError, match="truncated"):
        folder.get(KEY)
    with pytest.raises(ArchiveError, match="truncated"):
        folder.head(KEY)


def test_a_missing_object_is_an_error_on_get_and_none_on_head(folder):
    assert folder.head(KEY) is None
    with pytest.raises(ArchiveError, match=f"{KEY} does not exist"):
        folder.get(KEY)


def test_a_write_that_does_not_read_back_intact_is_an_error(folder):
    stored = folder.put(KEY, b"abc")
    # Another writer replaced the object between our write and our read-back.
    folder.put(KEY, b"abd")
    with pytest.raises(ArchiveError, match="did not read back intact"):
        folder.verify(stored)


def test_a_crashed_put_leaves_no_key_behind(folder):
    folder.put(KEY, b"whole")
    # What a put killed before its rename leaves: a temporary file beside the key.
    (folder.root / "prod/2024/01/31/.235900-60s.hea.999.dead.tmp").write_bytes(b"half")
    assert list(folder.list()) == [KEY]
    assert folder.get(KEY) == b"whole"


def test_a_folder_that_cannot_be_made_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(ArchiveError, match="cannot use"):
        FolderArchive(tmp_path / "file" / "archive")


def test_open_archive_builds_each_kind(tmp_path):
    assert isinstance(open_archive("folder", str(tmp_path)), FolderArchive)
    s3 = open_archive("s3", "s3://bucket-name/some/prefix/", endpoint_url="http://127.0.0.1:1", region="eu-west-1")
    assert (s3.bucket, s3.prefix) == ("bucket-name", "some/prefix")
    with pytest.raises(ArchiveError, match="unknown archive kind 'ftp'"):
        open_archive("ftp", "x")
    with pytest.raises(ArchiveError, match="names no S3 bucket"):
        open_archive("s3", "s3://")


# --- save and load: the seam between format and store ---------------------------

def window_events(n=200):
    key = source_key(3, 4, b"auth.log")
    events, off = [], 0
    for i in range(n):
        m = b"Jan 31 23:59:%02d web-1 sshd[%d]: Accepted publickey for ann" % (i % 60, 1000 + i)
        events.append(Event(line_id(key, off), T0 + i * 10**8, T0 + 10**9, "web-1", "sshd", 6, "/var/log/auth.log",
                            off, m, None, key, "prod"))
        off += len(m) + 1
    return events


def test_saved_events_load_back_exactly(folder):
    events = window_events()
    stored, info = archive.save(folder, KEY, events[::-1] + events[:10])
    assert info.count == len(events) and stored.size == info.size
    assert archive.load(folder, KEY) == events


def test_loading_a_tampered_object_fails_naming_the_key_and_loads_nothing(folder):
    archive.save(folder, KEY, window_events())
    flip_byte(folder.root / KEY, 40)
    with pytest.raises(ArchiveError, match=KEY):
        archive.load(folder, KEY)


class Reversing:
    """A stand-in sealer with the same seam as the PyNaCl one will have."""

    def seal(self, key, data):
        return b"SEALED:" + key.encode() + b":" + data[::-1]

    def unseal(self, key, data):
        head = b"SEALED:" + key.encode() + b":"
        if not data.startswith(head):
            raise ArchiveError(f"archive object {key} is not sealed for this key", key=key)
        return data[len(head):][::-1]


def test_a_sealer_wraps_the_bytes_between_format_and_store(folder):
    events = window_events(20)
    archive.save(folder, KEY, events, sealer=Reversing())
    assert folder.get(KEY).startswith(b"SEALED:" + KEY.encode())
    assert archive.load(folder, KEY, sealer=Reversing()) == events
    with pytest.raises(ArchiveError, match="unknown archive format|not a Helios archive"):
        archive.load(folder, KEY)  # sealed bytes are not an object


def test_the_temporary_file_of_a_put_is_gone_after_it(folder):
    folder.put(KEY, b"x" * 10)
    leftovers = [n for _, _, names in os.walk(folder.root) for n in names if n.endswith(".tmp")]
    assert leftovers == []


def test_store_public_names():
    assert set(archive.__all__) >= {"FolderArchive", "S3Archive", "open_archive", "key_for", "window_of",
                                     "pack", "unpack", "describe", "save", "load", "Stored"}
    assert store.SUFFIX == ".hea"
