"""The S3 archive backend against a real moto_server process, driven through boto3."""

import hashlib

import boto3
import pytest

from helios import archive
from helios.archive.store import S3Archive, Stored, key_for, open_archive
from helios.errors import ArchiveError
from helios.model import Event, line_id, source_key
from helios.wire.ports import free_port

T0 = 1_706_745_540_000_000_000  # 2024-01-31 23:59:00 UTC
KEY = key_for("prod", T0, 60)


@pytest.fixture
def s3(s3_bucket):
    endpoint, bucket = s3_bucket
    raw = boto3.client("s3", endpoint_url=endpoint)
    return open_archive("s3", f"s3://{bucket}/helios/archive", endpoint_url=endpoint), raw, bucket


def tamper(raw, bucket, full_key, change):
    """Replace an object's bytes behind the archive's back, keeping the
    metadata it was stored with (what bit rot or a buggy copy does)."""
    meta = raw.head_object(Bucket=bucket, Key=full_key)["Metadata"]
    body = raw.get_object(Bucket=bucket, Key=full_key)["Body"].read()
    raw.put_object(Bucket=bucket, Key=full_key, Body=change(body), Metadata=meta)


def flip(body):
    b = bytearray(body)
    b[len(b) // 2] ^= 0x01
    return bytes(b)


def test_put_get_head_list_delete_round_trip(s3):
    arch, raw, bucket = s3
    data = b"\x93HEA archive object \x00\xff" * 500
    stored = arch.put(KEY, data)
    assert stored == Stored(KEY, len(data), hashlib.sha256(data).hexdigest())
    assert arch.head(KEY) == stored
    assert arch.get(KEY) == data
    assert list(arch.list()) == [KEY]
    # Stored under the prefix, as it is, with its checksum beside it.
    obj = raw.get_object(Bucket=bucket, Key=f"helios/archive/{KEY}")
    assert obj["Body"].read() == data and obj["Metadata"]["sha256"] == stored.sha256
    arch.delete(KEY)
    assert arch.head(KEY) is None and list(arch.list()) == []
    arch.delete(KEY)


def test_list_sees_only_its_prefix_sorted(s3):
    arch, raw, bucket = s3
    raw.put_object(Bucket=bucket, Key="someone-else/2024/01/31/000000-60s.hea", Body=b"x")
    raw.put_object(Bucket=bucket, Key="helios/archive-old/x", Body=b"x")
    keys = [key_for("prod", T0 - 86340 * 10**9 + i * 86400 * 10**9, 86400) for i in range(3)] + [key_for("qa", T0, 60)]
    for k in reversed(keys):
        arch.put(k, b"x")
    assert list(arch.list()) == sorted(keys)
    assert list(arch.list("prod/2024/02/")) == sorted(keys[1:3])


def test_verify_after_write_catches_an_object_that_is_not_what_was_written(s3):
    arch, raw, bucket = s3
    stored = arch.put(KEY, b"events" * 100)
    assert arch.verify(stored) == stored
    tamper(raw, bucket, f"helios/archive/{KEY}", lambda body: body[:-1])
    with pytest.raises(ArchiveError, match=f"{KEY}.*did not read back intact"):
        arch.verify(stored)


def test_a_flipped_byte_in_a_stored_object_is_detected_on_get_naming_the_key(s3):
    arch, raw, bucket = s3
    arch.put(KEY, b"precious events " * 100)
    tamper(raw, bucket, f"helios/archive/{KEY}", flip)
    with pytest.raises(ArchiveError, match=KEY) as err:
        arch.get(KEY)
    assert err.value.key == KEY and "corrupt" in str(err.value)


def test_verify_by_get_reads_the_whole_object_back(s3_bucket):
    endpoint, bucket = s3_bucket
    arch = S3Archive(bucket, endpoint_url=endpoint, verify="get")
    stored = arch.put(KEY, b"events" * 100)
    raw = boto3.client("s3", endpoint_url=endpoint)
    tamper(raw, bucket, KEY, flip)  # same size, same metadata: only reading it shows
    with pytest.raises(ArchiveError, match=KEY):
        arch.verify(stored)


def test_an_object_without_its_checksum_is_refused(s3):
    arch, raw, bucket = s3
    raw.put_object(Bucket=bucket, Key=f"helios/archive/{KEY}", Body=b"from elsewhere")
    with pytest.raises(ArchiveError, match="no sha256 metadata"):
        arch.get(KEY)


def test_a_missing_object_or_bucket_is_a_clear_error(s3_bucket):
    endpoint, bucket = s3_bucket
    arch = S3Archive(bucket, endpoint_url=endpoint)
    assert arch.head(KEY) is None
    with pytest.raises(ArchiveError, match=f"{KEY} does not exist in s3://{bucket}"):
        arch.get(KEY)
    gone = S3Archive("no-such-bucket-here", endpoint_url=endpoint)
    with pytest.raises(ArchiveError, match="NoSuchBucket"):
        gone.put(KEY, b"x")
    with pytest.raises(ArchiveError, match="NoSuchBucket"):
        list(gone.list())


def test_a_store_that_is_down_is_an_archive_error_soon(s3_bucket):
    arch = S3Archive("bucket-name", endpoint_url=f"http://127.0.0.1:{free_port()}", max_attempts=1,
                     connect_timeout=2)
    with pytest.raises(ArchiveError, match=f"cannot write archive object {KEY}"):
        arch.put(KEY, b"x")  # one attempt (max_attempts=1): an error, not a wait


def test_saved_events_load_back_exactly_from_s3(s3):
    arch, raw, bucket = s3
    key = source_key(3, 4, b"auth.log")
    events, off = [], 0
    for i in range(300):
        m = b"Jan 31 23:59:%02d web-1 sshd[%d]: \xffAccepted publickey" % (i % 60, 1000 + i)
        events.append(Event(line_id(key, off), T0 + i * 10**8, T0 + 10**9, "web-1", "sshd", 6, "/var/log/auth.log",
                            off, m, None, key, "prod"))
        off += len(m) + 1
    stored, info = archive.save(arch, KEY, events)
    assert arch.head(KEY) == stored and info.count == 300
    assert archive.load(arch, KEY) == events
    tamper(raw, bucket, f"helios/archive/{KEY}", flip)
    with pytest.raises(ArchiveError, match=KEY):
        archive.load(arch, KEY)
