"""Compressed rotations: recognised by their first bytes, read decompressed, damage reported not raised."""

import bz2
import gzip
import lzma
import os

import pytest
import zstandard

from helios.tail import compressed

PACK = {"gzip": gzip.compress, "bzip2": bz2.compress, "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
        "xz": lzma.compress}
def read(x):
    """What the temporary file holds (read as the tailer does: pread from 0)."""
    try:
        return os.pread(x.fd, 1 << 24, 0)
    finally:
        os.close(x.fd)


TEXT = b"".join(b"line %d of a rotated log\n" % i for i in range(5000))


@pytest.mark.parametrize("name", sorted(PACK))
def test_a_compressed_file_is_recognised_by_its_bytes_and_read_from_an_offset(tmp_path, name):
    p = tmp_path / "app.log.1.weird-suffix"
    p.write_bytes(PACK[name](TEXT))
    assert compressed.kind(str(p)) == name
    x = compressed.extract(str(p), name, 1000)
    assert read(x) == TEXT[1000:]
    assert (x.size, x.problem) == (len(TEXT), "")
    assert compressed.head(str(p), name, 100) == (TEXT[:100], [])


def test_text_that_starts_like_a_magic_number_is_plain(tmp_path):
    p = tmp_path / "a.log"
    p.write_bytes(b"BZh9 is not a bzip2 header here\n")
    assert compressed.kind(str(p)) is None


@pytest.mark.parametrize("name", sorted(PACK))
def test_a_file_cut_short_is_read_as_far_as_it_goes_and_says_so(tmp_path, name):
    data = PACK[name](TEXT)
    p = tmp_path / "cut"
    p.write_bytes(data[: len(data) * 2 // 3])
    x = compressed.extract(str(p), name, 0)
    got = read(x)
    assert TEXT.startswith(got) and len(got) < len(TEXT) and x.problem


def test_several_gzip_members_are_one_content(tmp_path):
    p = tmp_path / "multi.gz"
    p.write_bytes(gzip.compress(b"first member\n") + gzip.compress(b"second member\n"))
    x = compressed.extract(str(p), "gzip", 0)
    assert read(x) == b"first member\nsecond member\n"
    assert x.problem == ""


def test_the_gzip_trailer_tells_a_file_already_read_to_its_end(tmp_path):
    p = tmp_path / "a.gz"
    p.write_bytes(gzip.compress(TEXT))
    assert compressed.holds_exactly(str(p), "gzip", len(TEXT))
    assert not compressed.holds_exactly(str(p), "gzip", len(TEXT) - 1)


@pytest.mark.parametrize("name", sorted(PACK))
def test_an_extract_from_an_offset_says_where_the_line_holding_it_starts(tmp_path, name):
    body = b"1 first\n" + b"y" * 300_000 + b"\n3 last\n"
    p = tmp_path / "f"
    p.write_bytes(PACK[name](body))
    for skip, start in ((0, 0), (8, 8), (100_008, 8), (300_009, 300_009), (300_012, 300_009)):
        x = compressed.extract(str(p), name, skip)
        os.close(x.fd)
        assert (x.line_start, x.size) == (start, len(body)), skip


def test_an_extract_and_a_head_read_the_open_file_not_what_its_name_holds_now(tmp_path):
    p = tmp_path / "f.gz"
    p.write_bytes(gzip.compress(b"1 the file that was opened\n"))
    fd = os.open(p, os.O_RDONLY)
    try:
        os.rename(p, tmp_path / "f.1.gz")
        p.write_bytes(gzip.compress(b"2 another file at its name\n"))
        assert compressed.head(str(p), "gzip", 100, fd=fd)[0] == b"1 the file that was opened\n"
        x = compressed.extract(str(p), "gzip", 2, fd=fd)
        assert os.pread(x.fd, 100, 0) == b"the file that was opened\n"
        os.close(x.fd)
    finally:
        os.close(fd)
