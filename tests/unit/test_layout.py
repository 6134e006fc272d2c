"""Bucket layout: names and paths are inverses, windows align to UTC midnight,
environment names cannot escape the root, listings skip strays."""

import logging
from datetime import datetime, timezone
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import given

from helios.store.layout import (
    DAY,
    BucketName,
    bucket_path,
    buckets_root,
    list_buckets,
    parse_bucket_path,
    valid_environment,
    window_start,
)

WIDTHS = [w for w in range(1, DAY + 1) if DAY % w == 0]
ROOT = Path("/data/buckets")
T0 = int(datetime(2024, 1, 31, tzinfo=timezone.utc).timestamp())  # a UTC midnight
NS = 1_000_000_000


def ts(*args):
    return int(datetime(*args, tzinfo=timezone.utc).timestamp())


# --------------------------------------------------------------------------- names and paths


def test_bucket_path_is_env_date_and_window_start_with_width():
    p = bucket_path(ROOT, "prod", ts(2024, 1, 31, 23, 59), 60)
    assert p == ROOT / "prod" / "20240131" / "235900-60s.bkt"


def test_buckets_root_is_the_buckets_folder_of_the_data_dir():
    assert buckets_root("/var/lib/helios") == Path("/var/lib/helios/buckets")


@given(
    env=st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z"),
    t=st.integers(0, ts(9999, 12, 30)),
    width=st.sampled_from(WIDTHS),
)
def test_parse_bucket_path_inverts_bucket_path(env, t, width):
    start = t - t % width
    path = bucket_path(ROOT, env, start, width)
    name = parse_bucket_path(ROOT, path)
    assert name == BucketName(env, start, width)
    assert path == ROOT / name.relpath()
    assert name.end == start + width


def test_parse_bucket_path_accepts_a_path_relative_to_a_relative_root():
    assert parse_bucket_path("b", "b/dev/20240131/000000-3600s.bkt") == BucketName("dev", T0, 3600)


@pytest.mark.parametrize(
    "rel",
    [
        "prod/20240131/235900-60s.tmp",  # not a bucket suffix
        "prod/20240131/235900-060s.bkt",  # non-canonical width
        "prod/20240131/235900-0s.bkt",
        "prod/20240131/235900-7s.bkt",  # 7 does not divide a day
        "prod/20240131/235930-60s.bkt",  # misaligned start
        "prod/20240131/246000-60s.bkt",  # no such time
        "prod/20241331/000000-60s.bkt",  # no such date
        "prod/2024013/000000-60s.bkt",
        "prod/20240131/x/000000-60s.bkt",  # too deep
        "prod/000000-60s.bkt",  # too shallow
        ".hidden/20240131/000000-60s.bkt",  # not an environment name
        "README",
    ],
)
def test_parse_bucket_path_refuses_what_bucket_path_cannot_make(rel):
    with pytest.raises(ValueError, match="not a bucket file"):
        parse_bucket_path(ROOT, ROOT / rel)


def test_parse_bucket_path_refuses_a_path_outside_the_root():
    with pytest.raises(ValueError, match="not under the bucket root"):
        parse_bucket_path(ROOT, "/elsewhere/prod/20240131/000000-60s.bkt")


def test_bucket_names_sort_by_environment_then_start():
    names = [BucketName("b", 60, 60), BucketName("a", 120, 60), BucketName("a", 0, 60)]
    assert sorted(names) == [BucketName("a", 0, 60), BucketName("a", 120, 60), BucketName("b", 60, 60)]


# --------------------------------------------------------------------------- windows


@given(t_ns=st.integers(0, 2**63 - 1), width=st.sampled_from(WIDTHS))
def test_window_start_is_aligned_and_holds_the_time(t_ns, width):
    start = window_start(t_ns, width)
    assert start % width == 0
    assert start * NS <= t_ns < (start + width) * NS


def test_windows_align_to_utc_midnight():
    assert window_start((T0 + 5) * NS, 3600) == T0
    assert window_start((T0 + DAY - 1) * NS, 7200) == T0 + DAY - 7200
    assert window_start((T0 + 90) * NS + 999, 60) == T0 + 60
    assert window_start(T0 * NS, DAY) == T0


@pytest.mark.parametrize("width", [0, -60, 7, 86401, 172800, 60.0, True])
def test_window_width_must_divide_a_day(width):
    with pytest.raises(ValueError, match="dividing 86400"):
        window_start(T0 * NS, width)
    with pytest.raises(ValueError):
        bucket_path(ROOT, "prod", T0, width)


def test_bucket_path_refuses_a_misaligned_start():
    with pytest.raises(ValueError, match="aligned"):
        bucket_path(ROOT, "prod", T0 + 30, 60)


def test_bucket_path_refuses_a_negative_start():
    with pytest.raises(ValueError, match="1970"):
        bucket_path(ROOT, "prod", -60, 60)


# --------------------------------------------------------------------------- environment names


@pytest.mark.parametrize("name", ["prod", "a", "web-1", "eu_west.2", "A" * 64, "0", "a..b"])
def test_valid_environment_names_are_accepted(name):
    assert valid_environment(name)
    assert bucket_path(ROOT, name, T0, 60).parent.parent == ROOT / name


@pytest.mark.parametrize(
    "name",
    ["", ".", "..", "../etc", "a/b", "/etc", "a\\b", "-x", "_x", ".hidden", "A" * 65, "a b", "a\x00", "é", "a\n", None, 5],
)
def test_environment_names_that_could_escape_the_root_are_refused(name):
    assert not valid_environment(name)
    with pytest.raises(ValueError, match="not a valid environment name"):
        bucket_path(ROOT, name, T0, 60)


# --------------------------------------------------------------------------- listing


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "buckets"
    made = {}
    for env, start, width in [
        ("prod", T0 - 60, 60),  # the day before
        ("prod", T0, 60),
        ("prod", T0 + 60, 60),
        ("prod", T0, 3600),
        ("dev", T0 + 120, 60),
    ]:
        p = bucket_path(root, env, start, width)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")
        made[(env, start, width)] = p
    # Strays that a listing must skip without raising.
    (root / "README").write_text("x")
    (root / "prod" / "notes.txt").write_text("x")
    (root / "prod" / "20240131" / "000000-60s.bkt.tmp").write_text("x")
    (root / "prod" / "20240131" / "000100-60s.bkt.d").mkdir()
    (root / "prod" / "20240131" / "junk").mkdir()
    (root / "prod" / "20240131" / "000200-60s.bkt").mkdir()  # the right name, but a directory
    (root / ".trash" / "20240131").mkdir(parents=True)
    (root / ".trash" / "20240131" / "000000-60s.bkt").write_text("x")
    (root / "dev" / "not-a-date").mkdir()
    return root, made


def names(listing):
    return [(n.environment, n.start, n.width) for n, _ in listing]


def test_list_buckets_returns_every_bucket_sorted_by_environment_and_start(tree):
    root, made = tree
    listing = list_buckets(root)
    assert names(listing) == [
        ("dev", T0 + 120, 60),
        ("prod", T0 - 60, 60),
        ("prod", T0, 60),
        ("prod", T0, 3600),
        ("prod", T0 + 60, 60),
    ]
    assert all(path == made[key] for key, (_, path) in zip(names(listing), listing))


def test_list_buckets_filters_by_environment(tree):
    root, _ = tree
    assert {n.environment for n, _ in list_buckets(root, "dev")} == {"dev"}
    assert list_buckets(root, "staging") == []


def test_list_buckets_keeps_windows_overlapping_the_range(tree):
    root, _ = tree
    assert names(list_buckets(root, "prod", start=T0 + 30, end=T0 + 90)) == [
        ("prod", T0, 60),
        ("prod", T0, 3600),
        ("prod", T0 + 60, 60),
    ]
    assert names(list_buckets(root, "prod", end=T0)) == [("prod", T0 - 60, 60)]  # end is exclusive
    assert names(list_buckets(root, "prod", start=T0 + 120)) == [("prod", T0, 3600)]


def test_list_buckets_skips_stray_files_and_logs_them_at_debug(tree, caplog):
    root, _ = tree
    with caplog.at_level(logging.DEBUG, logger="helios.store.layout"):
        list_buckets(root)
    skipped = " ".join(r.getMessage() for r in caplog.records)
    for stray in [
        "README",
        "notes.txt",
        "000000-60s.bkt.tmp",
        "000100-60s.bkt.d",
        "000200-60s.bkt",
        ".trash",
        "not-a-date",
    ]:
        assert stray in skipped


def test_list_buckets_of_a_missing_root_is_empty(tmp_path):
    assert list_buckets(tmp_path / "nothing") == []


def test_list_buckets_refuses_an_invalid_environment(tmp_path):
    with pytest.raises(ValueError):
        list_buckets(tmp_path, "../etc")
