"""The tailer's spool: frames filed by window, re-sent after the window, pruned by size and age."""

import os

import pytest

from helios.errors import RecordError
from helios.store.layout import BucketName
from helios.tail.spool import Spool, fsync_handed

DAY0 = 1_700_006_400  # a UTC midnight


def spool(tmp_path, **kw):
    args = dict(max_bytes=10 ** 9, max_age=86400.0, jitter=0.0)
    args.update(kw)
    return Spool(tmp_path / "spool", 60, **args)


def test_frames_are_filed_by_the_window_they_were_read_in(tmp_path):
    s = spool(tmp_path)
    s.append("prod", b"a" * 10, now=DAY0 + 5)
    s.append("prod", b"b" * 10, now=DAY0 + 65)
    names = [name for name, _, _ in s.buckets()]
    assert [(n.start, n.width) for n in names] == [(DAY0, 60), (DAY0 + 60, 60)]


def test_a_bucket_is_due_for_its_resend_only_after_its_window_and_jitter(tmp_path):
    s = spool(tmp_path, jitter=10.0)
    name = BucketName("prod", DAY0, 60)
    assert not s.due(name, DAY0 + 59)
    assert s.due(name, DAY0 + 60 + 10)


def test_a_big_bucket_is_sent_as_several_messages_with_every_frame_once(tmp_path):
    s = Spool(tmp_path / "spool", 60, max_bytes=10 ** 9, max_age=86400.0, jitter=0.0, message_bytes=1000)
    frames = [bytes([i]) * 300 for i in range(10)]
    for f in frames:
        s.append("prod", f, now=DAY0)
    s.close()
    [(_, path, _)] = s.buckets()
    messages = list(s.messages(path))
    assert len(messages) > 1 and all(sum(map(len, m)) <= 1000 for m in messages)
    assert [f for m in messages for f in m] == frames


def test_the_oldest_closed_buckets_go_first_when_the_spool_is_over_its_size(tmp_path):
    s = spool(tmp_path, max_bytes=2500)
    for i in range(5):
        s.append("prod", b"x" * 1000, now=DAY0 + 60 * i)
    s.close()
    prune = [n.start for n, _ in s.to_prune(now=DAY0 + 60 * 5)]
    assert prune == [DAY0, DAY0 + 60, DAY0 + 120]


def test_buckets_over_the_age_limit_are_pruned_and_a_never_sent_one_is_counted_lost(tmp_path, caplog):
    s = spool(tmp_path, max_age=3600.0)
    s.append("prod", b"x" * 100, now=DAY0)
    s.close()
    [(name, path)] = s.to_prune(now=DAY0 + 60 + 3601)
    s.delete(name.relpath(), path, never_sent=True)
    assert not path.exists()
    assert s.counts["dropped_buckets"] == 1 and "lost" in caplog.text


def test_the_open_window_is_never_pruned(tmp_path):
    s = spool(tmp_path, max_bytes=1024 * 1024)
    s.append("prod", b"x" * 2_000_000, now=DAY0)
    s.close()
    assert s.to_prune(now=DAY0 + 30) == []


def test_writers_of_past_windows_are_closed_so_descriptors_do_not_pile_up(tmp_path):
    s = spool(tmp_path)
    for i in range(30):
        s.append("prod", b"x", now=DAY0 + 60 * i)
    assert s.files.open_count <= 3  # the current window and the two before it, not 30
    assert len(s.buckets()) == 30


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_unsynced_hands_out_every_file_written_also_one_closed_at_a_window_change(tmp_path):
    s = spool(tmp_path)
    s.append("prod", b"a" * 10, now=DAY0 + 5)
    s.append("prod", b"b" * 10, now=DAY0 + 65)     # a new window
    s.append("prod", b"c" * 10, now=DAY0 + 65 + 120)  # and another: the first window's writer is closed
    assert s.files.open_count < 3
    handed = s.unsynced()
    before = _fds()
    paths = {p.name for _, p, _ in handed}
    assert len(paths) == 3, paths               # each written file, the closed one too
    assert all(os.fstat(fd).st_size == 18 for fd, _, _ in handed)   # (record header + 10 bytes)
    assert any(dirs for _, _, dirs in handed)   # new files: their directories are synced too
    fsync_handed(handed)
    assert _fds() == before - len(handed)       # every descriptor closed
    assert s.unsynced() == []                   # nothing written since
    s.append("prod", b"d", now=DAY0 + 65 + 121)
    [(fd, _, dirs)] = s.unsynced()
    assert dirs == []                           # handed before: its directory entry is durable already
    fsync_handed([(fd, _, dirs)])
    s.close()


def test_a_spool_file_that_cannot_be_fsynced_is_an_error_and_every_descriptor_is_closed(tmp_path):
    s = spool(tmp_path)
    s.append("prod", b"a", now=DAY0)
    r, w = os.pipe()                            # fsync of a pipe fails (EINVAL)
    handed = [(r, tmp_path / "pipe", [])] + s.unsynced()
    before = _fds()
    with pytest.raises(RecordError, match="Cannot fsync spool file"):
        fsync_handed(handed)
    assert _fds() == before - len(handed)
    os.close(w)
    s.close()


def test_sync_makes_closed_windows_durable_too_and_leaks_nothing(tmp_path):
    s = spool(tmp_path)
    before = _fds()
    for k in range(5):
        s.append("prod", b"x", now=DAY0 + 130 * k)  # a new window each time: the old writers close
        s.sync()
    assert s.unsynced() == []
    assert _fds() <= before + 2                 # the open writers (keep_open), no dups left over
    s.close()
