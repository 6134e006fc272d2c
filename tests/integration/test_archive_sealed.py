"""Archives sealed at rest (PyNaCl, helios.archive.seal) in S3 through a real
moto_server: a porter holding only the public key writes objects no one can
read without the secret key, and an object changed, truncated, moved or
planted in the bucket is refused on read, naming its key, with nothing of it
loaded."""

import hashlib
import os

import boto3
import pytest

from helios import archive as archive_mod
from helios.archive import format as fmt
from helios.archive.seal import MAGIC
from helios.archive.store import S3Archive, key_for
from helios.errors import ArchiveError
from helios.porter.archiving import open_archive
from helios.wire.curve import write_keypair
from tests.integration.test_porter import (NS, YESTERDAY, assert_once_and_whole, client_events, plant_two_bucks,
                                           run_once, started_bucks_over)


def spec(url, bucket, public="", secret=""):
    return {"archive": "s3", "archive_dir": "", "s3_bucket": bucket, "s3_prefix": "helios", "s3_endpoint": url,
            "archive_level": 3, "archive_public_key": public, "archive_secret_key": secret}


@pytest.fixture
def archive_keys(tmp_path):
    public, secret = write_keypair(tmp_path / "keys", "archive")
    return str(public), str(secret)


def test_a_porter_with_only_the_public_key_seals_every_object_it_archives(tmp_path, procs, s3_bucket, archive_keys):
    url, bucket = s3_bucket
    public, secret = archive_keys
    want = plant_two_bucks(tmp_path / "buck-a", tmp_path / "buck-b", windows=2, per_window=500)
    qs = started_bucks_over(tmp_path, procs, "ab")
    r = run_once(tmp_path, qs, "--archive", "s3", "--s3-bucket", bucket, "--s3-prefix", "helios/", "--s3-endpoint",
                 url, "--archive-public-key", public, env=dict(os.environ))
    assert r.returncode == 0, r.stderr

    raw = S3Archive(bucket, "helios", endpoint_url=url)
    keys = list(raw.list())
    assert keys == [key_for("prod", (YESTERDAY + w * 60) * NS, 60) for w in range(2)]
    for k in keys:
        stored = raw.get(k)
        assert stored.startswith(MAGIC) and b"GET /api/v1/items" not in stored
        with pytest.raises(ArchiveError):
            fmt.unpack(stored)  # what S3 holds is no archive object to anyone without the key
    writer = open_archive(spec(url, bucket, public=public))
    with pytest.raises(ArchiveError, match=f"archive object {keys[0]} is sealed; reading it needs"):
        archive_mod.load(writer, keys[0])
    reader = open_archive(spec(url, bucket, secret=secret))
    assert_once_and_whole([e for k in keys for e in archive_mod.load(reader, k)], want)


def rewrite(url, bucket, key, data):
    """What someone with write access to the bucket can do: replace an
    object, with a sha256 that matches, so that only the seal can tell."""
    boto3.client("s3", endpoint_url=url).put_object(Bucket=bucket, Key=f"helios/{key}", Body=data,
                                                    Metadata={"sha256": hashlib.sha256(data).hexdigest()})


def raw_object(url, bucket, key):
    return boto3.client("s3", endpoint_url=url).get_object(Bucket=bucket, Key=f"helios/{key}")["Body"].read()


def test_a_changed_truncated_moved_or_planted_object_is_refused_naming_its_key(s3_bucket, archive_keys):
    url, bucket = s3_bucket
    public, secret = archive_keys
    arch = open_archive(spec(url, bucket, secret=secret))
    windows = [key_for("prod", (YESTERDAY + w * 60) * NS, 60) for w in range(5)]
    events = client_events(300, YESTERDAY)
    for key in windows:
        archive_mod.save(arch, key, events, environment="prod")
    assert archive_mod.load(arch, windows[0]) == fmt.unpack(fmt.pack(events, environment="prod"))

    flipped, truncated, moved, planted = windows[1:]
    data = bytearray(raw_object(url, bucket, flipped))
    data[len(data) // 2] ^= 0x01
    rewrite(url, bucket, flipped, bytes(data))
    rewrite(url, bucket, truncated, raw_object(url, bucket, truncated)[:-100])
    rewrite(url, bucket, moved, raw_object(url, bucket, windows[0]))
    rewrite(url, bucket, planted, fmt.pack(client_events(10, YESTERDAY), environment="prod"))

    for key, why in ((flipped, "fails its seal check"), (truncated, "fails its seal check"),
                     (moved, f"holds the sealed object of {windows[0]}"), (planted, "is not sealed")):
        with pytest.raises(ArchiveError, match=why) as err:
            archive_mod.load(arch, key)  # the read a history build makes for the window
        assert err.value.key == key and f"archive object {key}" in str(err.value)
    assert len(archive_mod.load(arch, windows[0])) == len(events)  # the intact one still reads
