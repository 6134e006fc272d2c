"""helios.tail.notify on real directories: one watch per directory, writes,
creations, renames and deletions reported by path, a lost queue reported as
an overflow, and a wake that ends a wait."""

from __future__ import annotations

import os
import threading

import pytest

from helios.tail import notify


@pytest.fixture
def notifier():
    n = notify.open_notifier("auto")
    if n is None:
        pytest.skip("no inotify on this kernel")
    yield n
    n.close()


def test_writes_creations_renames_and_deletions_are_reported_by_path(tmp_path, notifier):
    a = tmp_path / "a.log"
    a.write_bytes(b"x\n")
    assert notifier.watch(str(tmp_path)) and notifier.watch(str(tmp_path))
    assert notifier.watches() == 1
    assert notifier.take() == notify.Changes(set(), False, False)
    with open(a, "ab") as f:
        f.write(b"y\n")
    assert notifier.wait(5.0)
    c = notifier.take()
    assert c.paths == {str(a)} and not c.created and not c.overflow
    os.rename(a, tmp_path / "a.log.1")
    (tmp_path / "a.log").touch()
    notifier.wait(5.0)
    c = notifier.take()
    assert c.created and {str(a), str(tmp_path / "a.log.1")} <= c.paths
    os.unlink(tmp_path / "a.log.1")
    notifier.wait(5.0)
    assert str(tmp_path / "a.log.1") in notifier.take().paths


def test_a_truncation_in_place_is_reported(tmp_path, notifier):
    a = tmp_path / "a.log"
    a.write_bytes(b"x\n" * 10)
    notifier.watch(str(tmp_path))
    os.truncate(a, 0)
    notifier.wait(5.0)
    assert str(a) in notifier.take().paths


def test_a_wake_from_another_thread_ends_a_wait(tmp_path, notifier):
    notifier.watch(str(tmp_path))
    t = threading.Timer(0.05, notifier.wake)
    t.start()
    assert notifier.wait(30.0)  # returns long before the timeout: woken
    t.join()
    assert notifier.take() == notify.Changes(set(), False, False)


def test_a_missing_directory_is_not_watched_and_a_removed_one_asks_for_a_scan(tmp_path, notifier):
    assert not notifier.watch(str(tmp_path / "nope"))
    d = tmp_path / "pod"
    d.mkdir()
    assert notifier.watch(str(d))
    d.rmdir()
    notifier.wait(5.0)
    assert notifier.take().created and notifier.watches() == 0


def test_a_full_event_queue_is_reported_as_an_overflow(tmp_path, notifier):
    with open("/proc/sys/fs/inotify/max_queued_events") as f:
        limit = int(f.read())
    if limit > 100_000:
        pytest.skip("the event queue is too large to fill here")
    notifier.watch(str(tmp_path))
    # Two files in turn: the kernel merges only an event equal to the one before.
    fds = [os.open(tmp_path / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND) for name in ("a.log", "b.log")]
    try:
        for i in range(limit + 10):
            os.write(fds[i % 2], b"x")
    finally:
        for fd in fds:
            os.close(fd)
    assert notifier.take().overflow


def test_local_directories_are_not_remote_and_statfs_answers(tmp_path):
    assert notify.fs_type(str(tmp_path)) is not None
    assert notify.remote_fs(str(tmp_path)) is None


def test_a_polled_mode_has_no_notifier():
    assert notify.open_notifier("poll") is None


def test_pattern_dirs_name_every_level_where_new_files_can_appear(tmp_path):
    pods = tmp_path / "pods"
    (pods / "ns_p_u" / "c").mkdir(parents=True)
    got = set(notify.pattern_dirs(str(pods / "*" / "*" / "*.log")))
    assert got == {str(pods), str(pods / "ns_p_u"), str(pods / "ns_p_u" / "c")}
    assert notify.pattern_dirs(str(tmp_path / "app" / "*.log")) == [str(tmp_path / "app")]
    assert notify.pattern_dirs("x.log") == ["."]


def test_new_files_are_named_so_only_they_are_looked_at_and_a_new_directory_asks_for_a_full_scan(tmp_path, notifier):
    notifier.watch(str(tmp_path))
    (tmp_path / "a.log").write_bytes(b"x\n")
    (tmp_path / "b.tmp").write_bytes(b"y\n")
    os.rename(tmp_path / "b.tmp", tmp_path / "b.log")
    notifier.wait(5.0)
    c = notifier.take()
    assert c.created and not c.rescan
    assert c.created_paths == {str(tmp_path / "a.log"), str(tmp_path / "b.tmp"), str(tmp_path / "b.log")}
    (tmp_path / "pod").mkdir()
    notifier.wait(5.0)
    c = notifier.take()
    assert c.created and c.rescan and c.created_paths == set()
    os.rename(tmp_path / "pod", tmp_path / "pod2")
    notifier.wait(5.0)
    assert notifier.take().rescan


def test_a_wait_sees_events_when_thousands_of_descriptors_are_open(tmp_path, notifier):
    """A tailer holding thousands of files open: descriptors past 1024 (beyond
    select's reach) still wait and wake."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip("the descriptor limit is below 1200")
    if soft != resource.RLIM_INFINITY and soft < 1200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1200, hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        late = notify.open_notifier("auto")
        assert late.fileno() >= 1024
        late.watch(str(tmp_path))
        (tmp_path / "a.log").write_bytes(b"x\n")
        assert late.wait(5.0)
        assert str(tmp_path / "a.log") in late.take().paths
        late.close()
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
