"""The set of followed files: rotation, restart recovery from positions, copytruncate."""

import gzip
import os
import shutil

from helios.tail.positions import Positions
from helios.tail.watcher import Options, Watcher


def drain(w, now=0.0, rounds=50):
    """Read every reader until all are at their end; (message, key) of every event."""
    got = []
    for _ in range(rounds):
        before = (len(got), [id(f) for f in w.readers()], [f.pos for f in w.readers()])
        busy = False
        for f in w.readers():
            for c in f.read(1 << 20, now):
                msgs = c.data[:-1].split(b"\n") if c.messages is None else c.messages
                got.extend((m, c.key) for m in msgs)
            if f.at_eof:
                for c in w.at_end(f, now):
                    got.extend((m, c.key) for m in c.messages)
            else:
                busy = True
        after = (len(got), [id(f) for f in w.readers()], [f.pos for f in w.readers()])
        if not busy and before == after:
            break
    return got


def commit_all(w):
    for f in w.readers():
        if f.key is not None:
            w.commit(f.key, f.line_offset)


def write(path, *lines, mode="ab"):
    with open(path, mode) as out:
        out.write(b"".join(lines))


def test_files_existing_at_a_fresh_start_start_at_the_end_and_later_ones_at_the_beginning(tmp_path):
    write(tmp_path / "old.log", b"old line\n")
    w = Watcher([str(tmp_path / "*.log")], Positions(), Options(start_at_end=True))
    w.scan()
    assert w.current[str(tmp_path / "old.log")].pos == len(b"old line\n")
    write(tmp_path / "new.log", b"new line\n")
    w.scan()
    assert w.current[str(tmp_path / "new.log")].pos == 0


def test_a_renamed_file_is_read_to_its_end_and_let_go_only_after_it_stays_idle(tmp_path):
    p = tmp_path / "a.log"
    write(p, b"one\n")
    w = Watcher([str(p)], Positions(), Options(start_at_end=False, rotate_wait=5.0))
    w.scan()
    assert [m for m, _ in drain(w)] == [b"one"]
    os.rename(p, tmp_path / "a.log.1")
    write(p, b"new one\n")
    drain(w, now=10.0)  # notices the rotation, follows the new file
    write(tmp_path / "a.log.1", b"late write to the old file\n")
    got = [m for m, _ in drain(w, now=12.0)]
    assert b"late write to the old file" in got
    assert len(w.draining) == 1
    drain(w, now=13.0)
    assert len(w.draining) == 1  # still within rotate_wait of its last growth
    drain(w, now=18.0)
    assert w.draining == []


def test_a_restart_finishes_a_file_rotated_twice_while_down_and_reads_the_new_ones(tmp_path):
    p = tmp_path / "a.log"
    write(p, b"1 first\n", b"2 read\n")
    pos = Positions()
    w = Watcher([str(p)], pos, Options(start_at_end=False))
    w.scan()
    assert [m for m, _ in drain(w)] == [b"1 first", b"2 read"]
    commit_all(w)
    w.remember(now_wall=0.0)
    w.close()
    pos.saved_at = 0.0
    # while the tailer is down: more lines, then two rotations
    write(p, b"3 unread\n")
    os.rename(p, tmp_path / "a.log.1")
    write(p, b"4 second file\n")
    os.rename(tmp_path / "a.log.1", tmp_path / "a.log.2")
    os.rename(p, tmp_path / "a.log.1")
    write(p, b"5 third file\n")
    w2 = Watcher([str(p)], pos, Options(start_at_end=True))
    w2.scan()
    got = [m for m, _ in drain(w2)]
    assert sorted(got) == [b"3 unread", b"4 second file", b"5 third file"]


def test_a_restart_after_a_copytruncate_finishes_the_copy_without_reading_old_lines_again(tmp_path):
    p = tmp_path / "a.log"
    write(p, b"1 first\n", b"2 read\n")
    pos = Positions()
    w = Watcher([str(p)], pos, Options(start_at_end=False))
    w.scan()
    old = drain(w)
    commit_all(w)
    w.remember(now_wall=0.0)
    w.close()
    write(p, b"3 unread\n")
    shutil.copyfile(p, tmp_path / "a.log.1")
    with open(p, "r+b") as out:
        out.truncate(0)
    write(p, b"4 after truncation\n")
    w2 = Watcher([str(p)], pos, Options(start_at_end=True))
    w2.scan()
    got = drain(w2)
    assert sorted(m for m, _ in got) == [b"3 unread", b"4 after truncation"]
    # the copy's line keeps the identity of the file it was written to
    assert dict(got)[b"3 unread"] == old[0][1]


def test_a_copytruncate_while_running_finishes_the_copy_then_reads_the_new_content(tmp_path):
    p = tmp_path / "a.log"
    write(p, b"1 first\n")
    w = Watcher([str(p)], Positions(), Options(start_at_end=False))
    w.scan()
    drain(w)
    write(p, b"2 before copy\n")
    shutil.copyfile(p, tmp_path / "a.log.1")
    with open(p, "r+b") as out:
        out.truncate(0)
    write(p, b"3 new\n")
    got = [m for m, _ in drain(w, now=100.0)]
    assert sorted(got) == [b"2 before copy", b"3 new"]


def test_a_compressed_rotated_file_is_finished_after_a_restart(tmp_path):
    p = tmp_path / "a.log"
    write(p, b"1 first\n")
    pos = Positions()
    w = Watcher([str(p)], pos, Options(start_at_end=False))
    w.scan()
    drain(w)
    commit_all(w)
    w.remember(now_wall=0.0)
    w.close()
    write(p, b"2 unread\n")
    with open(p, "rb") as src, gzip.open(tmp_path / "a.log.1.gz", "wb") as dst:
        dst.write(src.read())
    os.unlink(p)
    write(p, b"3 new\n")
    w2 = Watcher([str(p)], pos, Options(start_at_end=True))
    w2.scan()
    assert sorted(m for m, _ in drain(w2)) == [b"2 unread", b"3 new"]


def test_idle_files_are_parked_over_the_descriptor_limit_and_come_back_when_they_grow(tmp_path):
    for i in range(20):
        write(tmp_path / f"f{i}.log", b"line\n")
    w = Watcher([str(tmp_path / "*.log")], Positions(), Options(start_at_end=False, max_open=8))
    w.scan()
    drain(w)
    w.park_idle(now=1.0)
    assert len(w.current) <= 8 and len(w.parked) == 12
    parked = next(iter(w.parked))
    write(parked, b"more\n")
    w.scan()
    assert parked in w.current
    assert [m for m, _ in drain(w)] == [b"more"]
