"""Bucket file records: round trips, torn tails, corruption and a full disk."""

import errno
import io
import logging
import os
import shutil
import struct
import subprocess
import zlib

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from helios.errors import RecordError
from helios.store import records
from helios.store.records import (
    HEADER,
    RecordReader,
    RecordWriter,
    encode_record,
    read_records,
    valid_end,
)
from tests.helpers import require

# Hypothesis tests reuse pytest's tmp_path across examples, and write a fresh file each time.
FILE_SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def write(path, payloads):
    """Write payloads, return the offset of each record."""
    with RecordWriter(path) as w:
        return [w.append(p) for p in payloads]


def read(path, **kw):
    r = RecordReader(path, **kw)
    return list(r), r.stats


def flip(path, offset, mask=0xFF):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([b ^ mask]))


def put(path, offset, data):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


# --------------------------------------------------------------------------- format


def test_record_is_length_crc_and_payload_big_endian():
    rec = encode_record(b"abc")
    length, crc = HEADER.unpack_from(rec)
    assert (length, rec[8:]) == (3, b"abc")
    assert crc == zlib.crc32(b"\x00\x00\x00\x03abc")


def test_crc_covers_the_length_so_zero_bytes_are_not_an_empty_record():
    assert encode_record(b"") != b"\x00" * 8


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("payload", [b"", b"x", b"hello world" * 100, os.urandom(5 * 1024 * 1024)], ids=len)
def test_payload_round_trips(tmp_path, payload):
    path = tmp_path / "a.bkt"
    write(path, [payload])
    got, stats = read(path)
    assert got == [payload]
    assert (stats.records, stats.bytes, stats.end) == (1, len(payload), 8 + len(payload))
    assert (stats.skipped_bytes, stats.corrupt_records, stats.torn_tail) == (0, 0, False)


def test_many_records_round_trip_through_small_chunks(tmp_path):
    path = tmp_path / "a.bkt"
    payloads = [bytes([i % 256]) * (i % 300) for i in range(2000)]
    write(path, payloads)
    for chunk in (1, 7, 100, 4096, 1 << 20):
        got, stats = read(path, chunk_size=chunk)
        assert got == payloads
        assert stats.end == os.path.getsize(path)


@FILE_SETTINGS
@given(payloads=st.lists(st.binary(max_size=2000), max_size=50), chunk=st.integers(1, 5000))
def test_any_list_of_payloads_round_trips(tmp_path, payloads, chunk):
    path = tmp_path / "h.bkt"
    path.unlink(missing_ok=True)
    offsets = write(path, payloads)
    got, stats = read(path, chunk_size=chunk)
    assert got == payloads
    assert stats.records == len(payloads)
    assert stats.bytes == sum(map(len, payloads))
    assert stats.end == os.path.getsize(path)
    for i, off in enumerate(offsets):  # each returned offset is where its record starts
        assert next(iter(RecordReader(path, off)), None) == payloads[i]


def test_append_many_writes_records_in_one_go_and_returns_the_first_offset(tmp_path):
    path = tmp_path / "a.bkt"
    with RecordWriter(path) as w:
        w.append(b"zero")
        first = w.append_many([b"one", b"", bytearray(b"three")])
        assert first == 12
        assert w.append_many([]) == w.size == os.path.getsize(path)
    assert list(read_records(path)) == [b"zero", b"one", b"", b"three"]


def test_append_many_uses_one_write_syscall(tmp_path, monkeypatch):
    writes = []
    real_write = os.write
    monkeypatch.setattr(records.os, "write", lambda fd, data: writes.append(len(data)) or real_write(fd, data))
    with RecordWriter(tmp_path / "a.bkt") as w:
        w.append_many([b"x" * 1000] * 100)
    assert writes == [100 * 1008]


def test_append_is_one_syscall_per_record(tmp_path, monkeypatch):
    calls = []
    real_writev, real_write = os.writev, os.write
    monkeypatch.setattr(records.os, "writev", lambda fd, bufs: calls.append("writev") or real_writev(fd, bufs))
    monkeypatch.setattr(records.os, "write", lambda fd, data: calls.append("write") or real_write(fd, data))
    with RecordWriter(tmp_path / "a.bkt") as w:
        for size in (0, 1, 1024, 1 << 20):
            w.append(b"x" * size)
    assert calls == ["writev"] * 4


def test_append_accepts_any_bytes_like_payload(tmp_path):
    path = tmp_path / "a.bkt"
    write(path, [bytearray(b"ab"), memoryview(b"cd")])
    assert list(read_records(path)) == [b"ab", b"cd"]


def test_payload_over_the_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(records, "MAX_RECORD", 10)
    with RecordWriter(tmp_path / "a.bkt") as w:
        with pytest.raises(RecordError, match="over the limit"):
            w.append(b"x" * 11)
        with pytest.raises(RecordError, match="over the limit"):
            w.append_many([b"ok", b"x" * 11])
        assert w.size == 0


def test_reader_reads_from_a_binary_file_without_closing_it(tmp_path):
    data = b"".join(encode_record(p) for p in [b"a", b"bb", b"ccc"])
    f = io.BytesIO(data)
    assert list(RecordReader(f)) == [b"a", b"bb", b"ccc"]
    assert not f.closed


def test_reader_starts_at_a_given_offset(tmp_path):
    path = tmp_path / "a.bkt"
    offsets = write(path, [b"one", b"two", b"three"])
    r = read_records(path, offsets[1])
    assert list(r) == [b"two", b"three"]
    assert r.stats.end == os.path.getsize(path)


def test_reader_stops_cleanly_on_an_empty_file(tmp_path):
    path = tmp_path / "a.bkt"
    path.write_bytes(b"")
    got, stats = read(path)
    assert got == []
    assert stats == records.ReadStats()


def test_reader_of_a_missing_file_raises_record_error(tmp_path):
    with pytest.raises(RecordError, match="Cannot open"):
        list(read_records(tmp_path / "nope.bkt"))


def test_iterating_again_starts_over_with_fresh_stats(tmp_path):
    path = tmp_path / "a.bkt"
    write(path, [b"a", b"b"])
    r = read_records(path)
    assert list(r) == list(r) == [b"a", b"b"]
    assert r.stats.records == 2


# --------------------------------------------------------------------------- torn tails


def test_reader_stops_at_a_torn_tail_at_every_cut_point_of_the_last_record(tmp_path):
    path = tmp_path / "a.bkt"
    offsets = write(path, [b"first", b"second", b"the last record"])
    full = path.read_bytes()
    last = offsets[2]
    for cut in range(1, len(full) - last):  # partial header, then partial payload
        path.write_bytes(full[: last + cut])
        got, stats = read(path)
        assert got == [b"first", b"second"], cut
        assert stats.torn_tail and stats.skipped_bytes == cut and stats.end == last, cut
        assert stats.corrupt_records == 0


def test_writer_truncates_torn_tail_on_open(tmp_path, caplog):
    path = tmp_path / "a.bkt"
    offsets = write(path, [b"first", b"second"])
    with open(path, "ab") as f:
        f.write(encode_record(b"torn record")[:13])
    with caplog.at_level(logging.WARNING, logger="helios.store.records"):
        w = RecordWriter(path)
    assert w.truncated == 13
    assert w.size == os.path.getsize(path) == offsets[1] + 14
    assert any("Truncated 13 bytes" in r.getMessage() and str(path) in r.getMessage() for r in caplog.records)
    w.append(b"after")
    w.close()
    assert list(read_records(path)) == [b"first", b"second", b"after"]


def test_writer_reopen_appends_after_existing_valid_records(tmp_path):
    path = tmp_path / "a.bkt"
    write(path, [b"one", b"two"])
    with RecordWriter(path) as w:
        assert w.truncated == 0
        assert w.append(b"three") == 22
    assert list(read_records(path)) == [b"one", b"two", b"three"]


def test_writer_creates_parent_directories(tmp_path):
    path = tmp_path / "env" / "20240101" / "000000-60s.bkt"
    with RecordWriter(path, fsync=True) as w:
        w.append(b"x")
        w.fsync()
    assert list(read_records(path)) == [b"x"]


def test_zero_filled_tail_left_by_a_crash_is_not_read_as_records(tmp_path):
    path = tmp_path / "a.bkt"
    write(path, [b"one"])
    with open(path, "ab") as f:
        f.write(b"\x00" * 4096)
    got, stats = read(path)
    assert got == [b"one"] and stats.skipped_bytes == 4096 and stats.end == 11
    with RecordWriter(path) as w:
        assert w.truncated == 4096


def test_closing_twice_is_fine_and_appending_after_close_is_an_error(tmp_path):
    w = RecordWriter(tmp_path / "a.bkt")
    w.close()
    w.close()
    assert w.closed
    with pytest.raises(ValueError, match="closed"):
        w.append(b"x")


# --------------------------------------------------------------------------- corruption


def test_reader_skips_corrupted_record_and_continues(tmp_path):
    path = tmp_path / "a.bkt"
    payloads = [b"first", b"the middle one", b"third", b"fourth"]
    offsets = write(path, payloads)
    flip(path, offsets[1] + 8 + 5)
    got, stats = read(path)
    assert got == [b"first", b"third", b"fourth"]
    assert stats.corrupt_records == 1 and stats.skipped_bytes == 8 + len(payloads[1])
    assert not stats.torn_tail and stats.end == os.path.getsize(path)


def test_reader_skips_a_record_with_a_garbage_length_and_continues(tmp_path):
    path = tmp_path / "a.bkt"
    offsets = write(path, [b"first", b"second", b"third"])
    put(path, offsets[1], b"\xff\xff\xff\xff")  # far over MAX_RECORD
    got, stats = read(path)
    assert got == [b"first", b"third"]
    assert stats.corrupt_records == 1 and stats.skipped_bytes == offsets[2] - offsets[1]


@pytest.mark.parametrize("length", [0, 3, 7, 9, 20])
def test_reader_skips_a_record_whose_length_is_wrong_but_plausible(tmp_path, length):
    path = tmp_path / "a.bkt"
    offsets = write(path, [b"first", b"second record", b"third", b"fourth"])
    put(path, offsets[1], struct.pack(">I", length))
    got, stats = read(path)
    assert got == [b"first", b"third", b"fourth"]
    assert stats.corrupt_records == 1 and stats.skipped_bytes == offsets[2] - offsets[1]


def test_length_damaged_to_run_past_eof_is_corruption_when_valid_records_follow(tmp_path):
    path = tmp_path / "a.bkt"
    offsets = write(path, [b"first", b"second", b"third"])
    put(path, offsets[1], struct.pack(">I", 1000))
    got, stats = read(path)
    assert got == [b"first", b"third"]
    assert stats.corrupt_records == 1 and not stats.torn_tail
    with RecordWriter(path) as w:  # so the writer keeps the records after it
        assert w.truncated == 0


def test_corrupt_last_record_is_skipped_and_truncated_by_the_writer(tmp_path):
    path = tmp_path / "a.bkt"
    offsets = write(path, [b"first", b"last"])
    flip(path, offsets[1] + 9)
    got, stats = read(path)
    assert got == [b"first"] and stats.corrupt_records == 1 and stats.end == offsets[1]
    with RecordWriter(path) as w:
        assert w.truncated == 12


def test_valid_end_reports_where_the_valid_records_end(tmp_path):
    path = tmp_path / "a.bkt"
    offsets = write(path, [b"a" * 100, b"b" * 100])
    with open(path, "ab") as f:
        f.write(b"\x00\x00\x01")
    stats = valid_end(path)
    assert (stats.records, stats.end, stats.torn_tail, stats.skipped_bytes) == (2, offsets[1] + 108, True, 3)


@FILE_SETTINGS
@given(
    payloads=st.lists(st.binary(max_size=300), min_size=1, max_size=12),
    where=st.floats(0, 1, exclude_max=True),
    mask=st.integers(1, 255),
)
def test_a_damaged_byte_loses_only_the_record_holding_it(tmp_path, payloads, where, mask):
    path = tmp_path / "h.bkt"
    path.unlink(missing_ok=True)
    offsets = write(path, payloads)
    size = os.path.getsize(path)
    at = int(where * size)
    flip(path, at, mask)
    hit = max(i for i, off in enumerate(offsets) if off <= at)
    got, stats = read(path, chunk_size=64)
    assert got == payloads[:hit] + payloads[hit + 1 :]
    assert stats.skipped_bytes == 8 + len(payloads[hit])
    assert stats.corrupt_records + stats.torn_tail == 1


def test_resync_through_random_data_is_fast(tmp_path):
    """The scan for the next record must not go quadratic in lz4-like bytes."""
    path = tmp_path / "a.bkt"
    payloads = [os.urandom(64 * 1024) for _ in range(64)]  # 4 MB of incompressible payloads
    offsets = write(path, payloads)
    put(path, offsets[1], b"\x00\x3f\xff\xf0")  # a plausible length inside the file, wrong
    got, stats = read(path)
    assert got == [payloads[0]] + payloads[2:]


# --------------------------------------------------------------------------- failed writes


def half_then_enospc(fd, bufs):
    """A writev that gets half a record out, then finds the disk full."""
    data = b"".join(bufs)
    os.write(fd, data[: len(data) // 2])
    raise OSError(errno.ENOSPC, "No space left on device")


def test_failed_append_truncates_the_torn_record_before_raising(tmp_path, monkeypatch):
    path = tmp_path / "a.bkt"
    w = RecordWriter(path)
    w.append(b"good")
    monkeypatch.setattr(records.os, "writev", half_then_enospc)
    with pytest.raises(RecordError, match=r"Cannot append .* No space left"):
        w.append(b"x" * 100)
    assert w.size == os.path.getsize(path) == 12
    monkeypatch.undo()
    w.append(b"after")
    w.close()
    assert list(read_records(path)) == [b"good", b"after"]


def test_writer_retries_a_failed_truncation_before_its_next_append(tmp_path, monkeypatch):
    path = tmp_path / "a.bkt"
    w = RecordWriter(path)
    w.append(b"good")
    monkeypatch.setattr(records.os, "writev", half_then_enospc)
    monkeypatch.setattr(records.os, "ftruncate", lambda fd, n: (_ for _ in ()).throw(OSError(errno.EIO, "EIO")))
    with pytest.raises(RecordError):
        w.append(b"x" * 100)
    assert os.path.getsize(path) > 12  # the torn bytes are still there
    monkeypatch.undo()
    w.append(b"after")
    w.close()
    got, stats = read(path)
    assert got == [b"good", b"after"] and stats.skipped_bytes == 0


# --------------------------------------------------------------------------- a full disk


@pytest.fixture
def tiny_tmpfs(tmp_path):
    if os.geteuid() != 0:
        require("root", "mounting a tmpfs needs root")
    if shutil.which("mount") is None:
        require("root", "no mount command")
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True, text=True)
    if res.returncode != 0:
        require("root", f"cannot mount a tmpfs: {res.stderr.strip() or res.returncode}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_writer_on_a_full_disk_raises_record_error_and_leaves_only_whole_records(tiny_tmpfs):
    path = tiny_tmpfs / "a.bkt"
    payload = bytes(range(256)) * 20  # 5120 bytes: the disk fills mid-record
    written = []
    with RecordWriter(path) as w:
        with pytest.raises(RecordError, match="No space left"):
            for i in range(1000):
                w.append(payload)
                written.append(i)
        assert w.size == os.path.getsize(path)
    got, stats = read(path)
    assert len(got) == len(written) > 0 and all(p == payload for p in got)
    assert stats.skipped_bytes == 0 and not stats.torn_tail
