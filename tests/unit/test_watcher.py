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


def read_then_stop(path, pos):
    """A tailer run that reads ``path`` to its end, commits, saves and stops."""
    w = Watcher([str(path)], pos, Options(start_at_end=False))
    w.scan()
    drain(w)
    commit_all(w)
    w.remember(now_wall=0.0)
    w.close()


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
    read_then_stop(p, pos)
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


# --- identity is content: the same bytes get the same ids through any name or compression ---

import bz2  # noqa: E402
import json  # noqa: E402

import pytest  # noqa: E402
import zstandard  # noqa: E402

from helios.model import line_id  # noqa: E402
from helios.tail import positions as positions_file  # noqa: E402
from helios.tail.positions import END_CORRUPT, END_DELETED  # noqa: E402

COMPRESS = {
    "gz": lambda data: gzip.compress(data),
    "bz2": lambda data: bz2.compress(data),
    "zst": lambda data: zstandard.ZstdCompressor().compress(data),
}


def ids(got):
    """message -> set of keys it was read under."""
    out = {}
    for m, k in got:
        out.setdefault(m, set()).add(k)
    return out


def restart(w, pos):
    commit_all(w)
    w.remember(now_wall=0.0)
    w.close()
    pos.saved_at = 0.0
    return pos


def test_the_same_bytes_read_live_from_a_copy_and_compressed_get_the_same_identity(tmp_path):
    p = tmp_path / "a.log"
    write(p, b"1 first\n", b"2 second\n")
    w = Watcher([str(p)], Positions(), Options(start_at_end=False))
    w.scan()
    live_key = drain(w)[0][1]
    shutil.copyfile(p, tmp_path / "a.log.1")
    (tmp_path / "a.log.2.gz").write_bytes(gzip.compress(p.read_bytes()))
    w2 = Watcher([str(tmp_path / "a.log*")], Positions(), Options(start_at_end=False))
    w2.scan()
    keys = {f.path: f.key for f in w2.readers()}
    assert set(keys.values()) == {live_key}  # three files, one content, in a fresh tailer too


@pytest.mark.parametrize("ext", sorted(COMPRESS))
def test_a_restart_after_two_compressed_rotations_reads_the_rest_and_the_file_it_never_saw(tmp_path, ext):
    p = tmp_path / "a.log"
    write(p, b"1 first\n", b"2 read\n")
    pos = Positions()
    w = Watcher([str(p)], pos, Options(start_at_end=False))
    w.scan()
    first = drain(w)
    restart(w, pos)
    write(p, b"3 unread\n")
    (tmp_path / f"a.log.2.{ext}").write_bytes(COMPRESS[ext](p.read_bytes()))
    p.write_bytes(b"4 never seen\n5 never seen\n")
    (tmp_path / f"a.log.1.{ext}").write_bytes(COMPRESS[ext](p.read_bytes()))
    p.write_bytes(b"6 current\n")
    w2 = Watcher([str(p)], pos, Options(start_at_end=True))
    w2.scan()
    got = drain(w2)
    assert sorted(m for m, _ in got) == [b"3 unread", b"4 never seen", b"5 never seen", b"6 current"]
    assert ids(got)[b"3 unread"] == {first[0][1]}  # finished under the identity it was read with


def test_a_new_identity_is_recorded_at_once_so_a_kill_after_a_copytruncate_loses_nothing(tmp_path):
    p = tmp_path / "a.log"
    pos = Positions()
    w = Watcher([str(p.parent / "*.log")], pos, Options(start_at_end=False))
    w.scan()
    write(p, b"1 first of a new file\n")
    w.scan()
    [(_, key)] = drain(w)
    assert key.hex() in pos.files and w.dirty  # recorded before any commit or periodic save
    assert pos.files[key.hex()].offset == 0
    w.close()  # killed: nothing committed, nothing remembered
    write(p, b"2 written before the copytruncate\n")
    (tmp_path / "a.log.1.gz").write_bytes(gzip.compress(p.read_bytes()))
    p.write_bytes(b"3 after\n")
    w2 = Watcher([str(p.parent / "*.log")], Positions.from_bytes(pos.to_bytes()), Options(start_at_end=True))
    w2.scan()
    got = drain(w2)
    assert sorted(m for m, _ in got) == [b"1 first of a new file", b"2 written before the copytruncate", b"3 after"]
    assert ids(got)[b"1 first of a new file"] == {key}  # read again under the same identity: deduplicated


def test_a_tailer_behind_by_two_copytruncates_reads_the_copy_it_never_saw(tmp_path):
    p = tmp_path / "a.log"
    write(p, b"1 first\n")
    w = Watcher([str(p)], Positions(), Options(start_at_end=False))
    w.scan()
    drain(w)
    write(p, b"2 before the first copy\n")
    shutil.copyfile(p, tmp_path / "a.log.1")
    p.write_bytes(b"3 between the copies\n")
    os.rename(tmp_path / "a.log.1", tmp_path / "a.log.2")
    shutil.copyfile(p, tmp_path / "a.log.1")
    p.write_bytes(b"4 after the second copy and longer than before\n")
    got = [m for m, _ in drain(w, now=100.0)]
    assert sorted(got) == [b"2 before the first copy", b"3 between the copies",
                           b"4 after the second copy and longer than before"]


def test_a_glob_of_rotated_and_compressed_siblings_reads_each_content_once_and_never_as_text(tmp_path):
    p = tmp_path / "app.log"
    write(p, b"1 first\n", b"2 second\n")
    pos = Positions()
    w = Watcher([str(tmp_path / "app.log*")], pos, Options(start_at_end=False))
    w.scan()
    drain(w)
    shutil.copyfile(p, tmp_path / "app.log.1")  # copytruncate
    p.write_bytes(b"3 third\n")
    w.scan()
    drain(w, now=10.0)
    (tmp_path / "app.log.2.gz").write_bytes(gzip.compress((tmp_path / "app.log.1").read_bytes()))
    os.unlink(tmp_path / "app.log.1")
    (tmp_path / "app.log.1.bz2").write_bytes(bz2.compress(b"0 an old file never seen\n"))
    w.scan()
    got = drain(w, now=20.0) + drain(w, now=40.0)
    assert sorted(m for m, _ in got) == [b"0 an old file never seen"]
    w3 = Watcher([str(tmp_path / "app.log*")], Positions(), Options(start_at_end=False))
    w3.scan()
    again = drain(w3)
    assert all(m.isascii() for m, _ in again)  # decompressed, never gzip bytes as text
    assert sorted(m for m, _ in again) == [b"0 an old file never seen", b"1 first", b"2 second", b"3 third"]


def test_the_last_piece_of_a_long_line_finished_from_a_copy_is_marked_last(tmp_path):
    p = tmp_path / "a.log"
    write(p, b"x" * 2500)
    w = Watcher([str(p)], Positions(), Options(start_at_end=False, max_line=1000))
    w.scan()
    pieces = []

    def take(now):
        for f in w.readers():
            for c in f.read(1 << 20, now):
                if c.messages is not None:
                    pieces.extend(c.fields)
            if f.at_eof:
                w.at_end(f, now)
    take(0.0)
    assert [fl["split"] for fl in pieces] == [1, 2]
    write(p, b"y" * 10 + b"\n")
    shutil.copyfile(p, tmp_path / "a.log.1")
    p.write_bytes(b"new\n")
    for t in (1.0, 2.0, 10.0):
        take(t)
    assert pieces[-1] == {"split": 3, "last": True}


def rotated_while_down_as_a_cut_gzip(tmp_path):
    """A file read to its first line, then (the tailer down) written on,
    rotated and gzipped, of which only the first half of the .gz is there
    yet, and a new live file. Returns the positions, the content's key, the
    .gz path, the whole .gz bytes and a fresh watcher that has scanned."""
    p = tmp_path / "a.log"
    write(p, b"1 first\n")
    pos = Positions()
    w = Watcher([str(p)], pos, Options(start_at_end=False))
    w.scan()
    [(_, key)] = drain(w)
    restart(w, pos)
    write(p, b"".join(b"%d unread line with some words to compress\n" % i for i in range(2, 20000)))
    data = gzip.compress(p.read_bytes())
    gz = tmp_path / "a.log.1.gz"
    gz.write_bytes(data[: len(data) // 2])
    p.write_bytes(b"new\n")
    w2 = Watcher([str(p)], pos, Options(start_at_end=True))
    w2.scan()
    return pos, key, gz, data, w2


def test_a_truncated_gzip_rotation_is_read_as_far_as_it_goes_and_reported_corrupt(tmp_path):
    pos, key, gz, _, w2 = rotated_while_down_as_a_cut_gzip(tmp_path)
    got = [m for m, _ in drain(w2)]
    assert b"2 unread line with some words to compress" in got and b"new" in got
    assert b"19999 unread line with some words to compress" not in got
    entry = pos.files[key.hex()]
    assert entry.end == "" and str(gz) in w2.recheck  # it may still be being written
    import time
    w2.look_again(time.time() + 60)  # it did not change for a while: cut short for good
    assert entry.end == END_CORRUPT and "ends early" in entry.detail and entry.done


def test_a_compressed_rotation_read_while_still_being_written_is_finished_not_called_corrupt(tmp_path):
    pos, key, gz, data, w2 = rotated_while_down_as_a_cut_gzip(tmp_path)  # gzip is still writing it
    got = drain(w2)
    gz.write_bytes(data)  # done
    w2.scan()
    got += drain(w2, now=10.0)
    # (Nothing is committed here, so what was read is read again: under the same ids.)
    assert set(ids(got)) == {b"new"} | {b"%d unread line with some words to compress" % i for i in range(2, 20000)}
    assert all(len(keys) == 1 for keys in ids(got).values())
    assert pos.files[key.hex()].end == "read"


def test_a_content_truncated_with_no_copy_after_bytes_were_seen_is_recorded_deleted(tmp_path):
    p = tmp_path / "a.log"
    write(p, b"1 first\n")
    pos = Positions()
    w = Watcher([str(p)], pos, Options(start_at_end=False))
    w.scan()
    [(_, key)] = drain(w)
    commit_all(w)
    write(p, b"2 seen but not read\n")
    w.remember(now_wall=1.0)
    [f] = w.readers()
    f.at_eof = False  # seen behind: its size is recorded
    w.remember(now_wall=1.0)
    p.write_bytes(b"")
    write(p, b"3\n")
    drain(w, now=5.0)
    entry = pos.files[key.hex()]
    assert entry.end == END_DELETED and entry.size > entry.offset


def test_files_that_share_a_fixed_header_get_their_own_identities(tmp_path):
    header = b"# fields: time level message\n"
    write(tmp_path / "a.log", header, b"alpha\n")
    write(tmp_path / "b.log", header, b"beta\n")
    pos = Positions()
    w = Watcher([str(tmp_path / "*.log")], pos, Options(start_at_end=False))
    w.scan()
    got = ids(drain(w))
    assert len(got[header[:-1]]) == 2  # the same first line, two contents
    p = tmp_path / "a.log"
    os.rename(p, tmp_path / "a.log.1")  # a rename rotation: the new file starts the same
    write(p, header)
    drain(w, now=1.0)
    write(p, b"gamma\n")
    got2 = ids(drain(w, now=2.0) + drain(w, now=3.0))
    assert got2[b"gamma"] and not (got2[b"gamma"] & got[header[:-1]])


def test_a_file_shorter_than_its_first_line_keeps_its_identity_as_it_grows(tmp_path):
    p = tmp_path / "a.log"
    write(p, b"a first line with no newline yet")
    w = Watcher([str(p)], Positions(), Options(start_at_end=False))
    w.scan()
    assert drain(w) == []
    write(p, b"\n")
    [(_, key)] = drain(w)
    write(p, b"second\n")
    assert drain(w) == [(b"second", key)]
    assert Watcher([str(p)], Positions(), Options(start_at_end=False)).follow(str(p)).key == key


V1_POSITIONS = """{
"files": {
"KEY": {
"dev": DEV,
"done": false,
"fingerprint": "Zmlyc3QgbGluZQo=",
"generation": 0,
"ino": INO,
"offset": 23,
"path": "PATH",
"seen": 123.0
}
},
"saved_at": 1796558969.4657938,
"spool": {},
"version": 1
}"""


def test_positions_written_by_the_first_format_are_resumed_under_the_same_ids(tmp_path):
    """An upgrade mid-stream: the file format of 01d012b (keys of device, inode
    and first line) is read; the file resumes at its offset and lines read
    again after the upgrade get the ids they had before it."""
    from helios.model import source_key
    p = tmp_path / "a.log"
    write(p, b"first line\nsecond line\n")
    st = p.stat()
    old_key = source_key(st.st_dev, st.st_ino, b"first line\n")
    text = V1_POSITIONS.replace("KEY", old_key.hex()).replace("DEV", str(st.st_dev)) \
        .replace("INO", str(st.st_ino)).replace("PATH", str(p))
    (tmp_path / "positions.json").write_text(text)
    pos = positions_file.load(tmp_path / "positions.json")
    assert not pos.recovered and pos.files[old_key.hex()].legacy
    write(p, b"third line\n")
    w = Watcher([str(p)], pos, Options(start_at_end=True))
    w.scan()
    assert drain(w) == [(b"third line", old_key)]
    # Rotated by copytruncate + gzip while down: the copy is finished under the old key too.
    commit_all(w)
    w.remember(now_wall=0.0)
    w.close()
    write(p, b"fourth line\n")
    (tmp_path / "a.log.1.gz").write_bytes(gzip.compress(p.read_bytes()))
    p.write_bytes(b"new file\n")
    saved = json.loads(pos.to_bytes())
    assert saved["version"] == 2
    w2 = Watcher([str(p)], positions_file.Positions.from_bytes(pos.to_bytes()), Options())
    w2.scan()
    got = drain(w2)
    assert sorted(got) == sorted([(b"fourth line", old_key), (b"new file", got[-1][1])]) or \
        dict(got)[b"fourth line"] == old_key
    assert dict(got)[b"fourth line"] == old_key
    assert line_id(old_key, 34) == line_id(dict(got)[b"fourth line"], 34)


def test_finished_contents_are_forgotten_after_two_weeks_once_their_files_are_gone(tmp_path):
    from helios.tail.watcher import PRUNE_AFTER
    p = tmp_path / "a.log"
    write(p, b"1 first\n")
    pos = Positions()
    w = Watcher([str(p)], pos, Options(start_at_end=False, rotate_wait=0.0))
    w.scan()
    drain(w)
    os.rename(p, tmp_path / "a.log.1")
    write(p, b"2 second\n")
    drain(w, now=10.0)
    drain(w, now=20.0)
    commit_all(w)
    import time
    now = time.time()
    w.remember(now_wall=now)
    old = [k for k, e in pos.files.items() if e.done]
    assert len(old) == 1
    assert w.prune(now + PRUNE_AFTER + 60) == 0  # its file is still there (a glob may match it)
    os.unlink(tmp_path / "a.log.1")
    assert w.prune(now + PRUNE_AFTER - 60) == 0  # not old enough
    assert w.prune(now + PRUNE_AFTER + 60) == 1 and old[0] not in pos.files
    assert len(pos.files) == 1  # the current file stays


def test_a_glob_over_a_rename_rotation_then_compression_reads_each_line_once(tmp_path):
    p = tmp_path / "app.log"
    write(p, b"1 first\n")
    w = Watcher([str(tmp_path / "app.log*")], Positions(), Options(start_at_end=False, rotate_wait=1.0))
    w.scan()
    got = drain(w)
    os.rename(p, tmp_path / "app.log.1")
    write(tmp_path / "app.log.1", b"2 late write to the renamed file\n")
    write(p, b"3 new file\n")
    w.scan()
    got += drain(w, now=10.0)
    w.scan()
    got += drain(w, now=20.0)
    (tmp_path / "app.log.1.gz").write_bytes(gzip.compress((tmp_path / "app.log.1").read_bytes()))
    os.unlink(tmp_path / "app.log.1")
    w.scan()
    got += drain(w, now=30.0) + drain(w, now=40.0)
    assert sorted(m for m, _ in got) == [b"1 first", b"2 late write to the renamed file", b"3 new file"]


def test_an_upgrade_reads_a_rotated_file_written_while_the_old_tailer_was_down(tmp_path):
    from helios.model import source_key
    p = tmp_path / "a.log"
    write(p, b"first line\nsecond line\n")
    st = p.stat()
    old_key = source_key(st.st_dev, st.st_ino, b"first line\n")
    text = V1_POSITIONS.replace("KEY", old_key.hex()).replace("DEV", str(st.st_dev)) \
        .replace("INO", str(st.st_ino)).replace("PATH", str(p))
    (tmp_path / "positions.json").write_text(text)
    pos = positions_file.load(tmp_path / "positions.json")
    assert pos.watching == {str(p): 123.0}  # watched since it was last read
    os.rename(p, tmp_path / "a.log.2")  # two rotations while down: a.log.1 was never seen
    write(tmp_path / "a.log.1", b"never seen\n")
    write(p, b"current\n")
    w = Watcher([str(p)], pos, Options(start_at_end=True))
    w.scan()
    assert sorted(m for m, _ in drain(w)) == [b"current", b"never seen"]


def test_a_file_deleted_while_the_tailer_was_down_is_reported_even_if_it_was_read_to_its_end(tmp_path):
    p = tmp_path / "a.log"
    write(p, b"1 first\n")
    pos = Positions()
    w = Watcher([str(p)], pos, Options(start_at_end=False))
    w.scan()
    [(_, key)] = drain(w)
    restart(w, pos)
    os.unlink(p)  # and whatever was written to it after the tailer stopped with it
    write(p, b"2 a new file\n")
    w2 = Watcher([str(p)], pos, Options(start_at_end=True))
    w2.scan()
    assert [m for m, _ in drain(w2)] == [b"2 a new file"]
    entry = pos.files[key.hex()]
    assert entry.end == END_DELETED and "not seen" in entry.detail


def test_a_truncation_with_no_copy_after_the_tailer_did_not_look_for_a_while_is_reported(tmp_path):
    p = tmp_path / "a.log"
    write(p, b"1 first\n")
    pos = Positions()
    w = Watcher([str(p)], pos, Options(start_at_end=False))
    w.scan()
    [(_, key)] = drain(w, now=0.0)
    p.write_bytes(b"")  # while the tailer was stopped: what was written before this, nobody saw
    write(p, b"2\n")
    drain(w, now=30.0)
    assert pos.files[key.hex()].end == END_DELETED and "not looked at it" in pos.files[key.hex()].detail


def test_a_truncation_in_place_while_the_tailer_looks_is_not_a_loss(tmp_path):
    p = tmp_path / "a.log"
    write(p, b"1 first\n")
    pos = Positions()
    w = Watcher([str(p)], pos, Options(start_at_end=False))
    w.scan()
    [(_, key)] = drain(w, now=0.0)
    p.write_bytes(b"")
    write(p, b"2\n")
    drain(w, now=0.05)
    assert pos.files[key.hex()].end == "read"


def test_a_growing_file_that_cannot_be_opened_is_said_once_not_at_each_scan(tmp_path, caplog):
    """The scan looks at an unreadable file every rescan (a log the tailer's
    user may not read grows all the time): the inventory follows its size,
    the warning is logged once, and again only if the reason changes."""
    import errno
    import logging

    path = str(tmp_path / "secret.log")
    w = Watcher([path], Positions(), Options(start_at_end=False))
    denied = PermissionError(errno.EACCES, "Permission denied")
    with caplog.at_level(logging.WARNING, logger="helios.tail.watcher"):
        for size in (100, 200, 300, 400):
            w.unreadable(path, denied, size)
        assert [r.getMessage() for r in caplog.records].count(
            f"Cannot open {path} to follow it: {denied}; looked at again every rescan, said again only if the "
            "reason changes.") == 1
        (p,) = [p for p in w.positions.files.values() if p.path == path]
        assert p.size == 400  # the inventory knows how much exists unread
        w.unreadable(path, OSError(errno.EIO, "Input/output error"), 500)
    assert len(caplog.records) == 2
def gzip_rotate(tmp_path, method):
    """logrotate with ``compress`` (no delaycompress): app.log.N.gz -> N+1,
    app.log renamed (or copied, then truncated) to app.log.1, gzipped to
    app.log.1.gz (the compressed file has its own inode), the plain one removed."""
    p = tmp_path / "app.log"
    for n in sorted((int(x.name.split(".")[2]) for x in tmp_path.glob("app.log.*.gz")), reverse=True):
        os.rename(tmp_path / f"app.log.{n}.gz", tmp_path / f"app.log.{n + 1}.gz")
    if method == "rename":
        os.rename(p, tmp_path / "app.log.1")
        p.touch()
    else:
        shutil.copyfile(p, tmp_path / "app.log.1")
        os.truncate(p, 0)
    (tmp_path / "app.log.1.gz").write_bytes(gzip.compress((tmp_path / "app.log.1").read_bytes()))
    os.unlink(tmp_path / "app.log.1")


def test_a_compressed_copy_let_go_after_later_rotations_does_not_take_the_file_now_at_its_name(tmp_path):
    """Seed 1018 of the soak: a compressed copy (A) is being finished when two
    more rotations happen (the tailer stopped): app.log.1.gz then names the
    copy of a content (C) the tailer never opened. Letting A go must not mark
    C's file as read: C is read, from its beginning, once."""
    p = tmp_path / "app.log"
    write(p, b"A1 first of A\n", b"A2 second of A\n")
    pos = Positions()
    w = Watcher([str(p)], pos, Options(start_at_end=False))
    w.scan()
    live = w.current[str(p)]
    assert len(live.read(len(b"A1 first of A\n"))[0].data.splitlines()) == 1
    gzip_rotate(tmp_path, "copytruncate")
    write(p, b"B1 first of B, longer than what was read of A\n")
    assert live.read(1 << 20) == [] and live.at_eof  # another first line: rewritten
    w.at_end(live, 0.0)  # finishes A from app.log.1.gz: that reader is not read yet
    [copy] = w.draining
    assert copy.sealed and copy.path == str(tmp_path / "app.log.1.gz")
    got = [(m, k) for c in live.read(1 << 20) for m, k in [(c.data, c.key)]]
    assert got and got[0][0] == b"B1 first of B, longer than what was read of A\n"
    # The tailer is stopped: a rename, then a copytruncate of the content created by the rename.
    gzip_rotate(tmp_path, "rename")
    write(p, b"C1 first of C\n", b"C2 never opened by the tailer\n")
    gzip_rotate(tmp_path, "copytruncate")
    write(p, b"D1 first of D\n")
    assert gzip.decompress((tmp_path / "app.log.1.gz").read_bytes()).startswith(b"C1")
    got = drain(w, now=100.0) + drain(w, now=200.0)
    msgs = sorted(m for m, _ in got)
    assert msgs == [b"A2 second of A", b"C1 first of C", b"C2 never opened by the tailer", b"D1 first of D"]
    assert w.draining == []
    a = next(q for q in pos.files.values() if q.fingerprint == b"A1 first of A\n")
    c = next(q for q in pos.files.values() if q.fingerprint == b"C1 first of C\n")
    st = os.stat(tmp_path / "app.log.3.gz")   # A's compressed copy, moved on twice
    assert a.sealed == [f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"]
    assert c.done and c.end == "read" and c.size == 44


def test_a_compressed_copy_cut_short_and_renamed_by_the_next_rotation_is_looked_at_again_by_inode(tmp_path):
    """A .gz read while still being written, then moved on (app.log.1.gz ->
    app.log.2.gz) and completed: read again from where it ended, under its
    own name now; the file that took its old name is not mistaken for it."""
    p = tmp_path / "app.log"
    write(p, b"A1 first of A\n")
    pos = Positions()
    read_then_stop(p, pos)
    body = b"A1 first of A\n" + b"".join(b"A%d line of A %s\n" % (i, b"x" * (i % 50)) for i in range(2, 3000))
    whole = gzip.compress(body)
    gz = tmp_path / "app.log.1.gz"
    gz.write_bytes(whole[:len(whole) // 2])   # the tailer restarts while gzip writes
    p.write_bytes(b"B1 first of B\n")
    w2 = Watcher([str(p)], pos, Options(start_at_end=False))
    w2.scan()
    first = drain(w2)
    assert str(gz) in w2.recheck
    with open(gz, "wb") as out:                # gzip finishes, then the next rotation
        out.write(whole)
    gzip_rotate(tmp_path, "rename")
    write(p, b"C1 first of C\n")
    w2.scan()
    got = first + drain(w2, now=100.0) + drain(w2, now=200.0)
    msgs = [m for m, _ in got]
    assert all(len(keys) == 1 for keys in ids(got).values())  # what is read again keeps its id
    assert set(body[:-1].split(b"\n")[1:]) <= set(msgs) and b"B1 first of B" in msgs and b"C1 first of C" in msgs
    a = next(q for q in pos.files.values() if q.fingerprint == b"A1 first of A\n")
    assert a.done and a.end == "read" and a.size == len(body)


@pytest.mark.parametrize("then", ["still-there", "renamed", "gzipped"])
def test_a_restart_between_the_pieces_of_a_long_line_still_marks_its_last_piece(tmp_path, then):
    """Seed 1020 of the soak: the tailer stopped after handing out (and
    committing) two pieces of a long line; the next run, from the same file,
    its rename or its compressed rotation, numbers the rest on and marks it last."""
    p = tmp_path / "app.log"
    write(p, b"1 first\n", b"x" * 2500)
    pos = Positions()
    w = Watcher([str(p)], pos, Options(start_at_end=False, max_line=1000))
    w.scan()
    fields = []
    for c in w.current[str(p)].read(1 << 20, 0.0):
        fields.extend(c.fields or [None])
    assert fields == [None, {"split": 1}, {"split": 2}]
    restart(w, pos)   # killed: the two pieces are committed, the rest of the line pending
    write(p, b"y" * 10 + b"\n", b"3 after\n")
    if then == "renamed":
        os.rename(p, tmp_path / "app.log.1")
        p.write_bytes(b"4 new file\n")
    elif then == "gzipped":
        (tmp_path / "app.log.1.gz").write_bytes(gzip.compress(p.read_bytes()))
        p.write_bytes(b"4 new file\n")
    w2 = Watcher([str(p)], pos, Options(start_at_end=False, max_line=1000))
    w2.scan()
    got = []
    for now in (1.0, 10.0):
        for f in w2.readers():
            for c in f.read(1 << 20, now):
                got.extend(zip(c.messages or c.data[:-1].split(b"\n"), c.fields or [None] * 99))
            if f.at_eof:
                w2.at_end(f, now)
    assert got[0] == (b"x" * 500 + b"y" * 10, {"split": 3, "last": True})
    assert [m for m, _ in got[1:]] == [b"3 after"] + ([b"4 new file"] if then != "still-there" else [])


def test_a_restart_after_a_last_line_flushed_without_its_newline_starts_a_new_line(tmp_path):
    p = tmp_path / "app.log"
    write(p, b"1 first\n", b"2 no newline yet")
    pos = Positions()
    w = Watcher([str(p)], pos, Options(start_at_end=False, max_line=1000, partial_flush=1.0))
    w.scan()
    f = w.current[str(p)]
    f.read(1 << 20, 0.0)
    [c] = f.read(1 << 20, 5.0)   # flushed as it is
    assert c.fields == [{"unterminated": True}]
    restart(w, pos)
    write(p, b" and the rest\n")
    w2 = Watcher([str(p)], pos, Options(start_at_end=False, max_line=1000))
    w2.scan()
    [c] = w2.current[str(p)].read(1 << 20, 6.0)
    assert c.messages is None and c.data == b" and the rest\n"   # a new, plain line


def test_a_compressed_rotation_seen_before_its_first_block_is_written_is_not_called_corrupt(tmp_path):
    """bzip2 writes nothing that decompresses before a whole block: a sweep
    in that moment sees a cut-short file with no first line. It is looked at
    again when it changes, and never reported corrupt, nor read as another content."""
    p = tmp_path / "app.log"
    body = b"".join(b"%d line of the first file %s\n" % (i, b"z" * (i % 70)) for i in range(4000))
    write(p, body)
    pos = Positions()
    w = Watcher([str(p)], pos, Options(start_at_end=False, rotate_wait=1.0))
    w.scan()
    got = drain(w)
    os.rename(p, tmp_path / "app.log.1")
    whole = bz2.compress((tmp_path / "app.log.1").read_bytes())
    (tmp_path / "app.log.1.bz2").write_bytes(whole[:len(whole) // 2])   # bzip2 at work
    write(p, b"new file\n")
    got += drain(w, now=10.0)
    assert str(tmp_path / "app.log.1.bz2") in w.recheck
    (tmp_path / "app.log.1.bz2").write_bytes(whole)
    os.unlink(tmp_path / "app.log.1")
    w.scan()
    got += drain(w, now=20.0)
    assert sorted(set(m for m, _ in got)) == sorted(body[:-1].split(b"\n") + [b"new file"])
    assert all(len(keys) == 1 for keys in ids(got).values())
    assert not w.recheck
    assert [q.end for q in pos.files.values()] == ["read", ""]   # no "corrupt", no third content


def test_a_file_recorded_as_read_under_a_content_it_does_not_hold_is_read_all_the_same(tmp_path, caplog):
    """Broken on purpose: positions that say C's compressed file was read as
    A (what the tailer of seed 1018 wrote). The next run checks a recorded
    file's first bytes before it skips it: C is read, and the error is said."""
    p = tmp_path / "app.log"
    write(p, b"A1 first of A\n")
    pos = Positions()
    w = Watcher([str(p)], pos, Options(start_at_end=False))
    w.scan()
    drain(w)
    restart(w, pos)
    gzip_rotate(tmp_path, "copytruncate")     # A -> app.log.1.gz, read to its end already
    write(p, b"C1 first of C\n", b"C2 never read\n")
    gzip_rotate(tmp_path, "copytruncate")     # C -> app.log.1.gz, A -> app.log.2.gz
    write(p, b"D1 first of D\n")
    st = os.stat(tmp_path / "app.log.1.gz")
    [a] = pos.files.values()
    a.sealed.append(f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}")   # the wrong record
    w2 = Watcher([str(p)], Positions.from_bytes(pos.to_bytes()), Options(start_at_end=False))
    w2.scan()
    got = sorted(m for m, _ in drain(w2))
    assert got == [b"C1 first of C", b"C2 never read", b"D1 first of D"]
    assert "holds another content: it is read now" in caplog.text


def test_a_truncation_while_the_tailer_was_behind_reports_the_bytes_it_had_seen_and_not_read(tmp_path):
    """Soak seed 1010: the tailer, behind the writer (its last read stopped
    short of the end), is stopped for less than UNSEEN_S; the file is
    truncated meanwhile (no copy). The bytes it knew were there are a loss
    the audit must name: "deleted", with the size it had seen."""
    p = tmp_path / "app.log"
    pos = Positions()
    w = Watcher([str(p.parent / "*.log")], pos, Options(start_at_end=False))
    write(p, b"1 first\n")
    w.scan()
    drain(w)
    write(p, b"2 read\n", b"3 seen, never read\n", b"4 seen, never read\n")
    f = w.current[str(p)]
    [c] = f.read(len(b"2 read\n"), 1.0)     # behind: a short turn of reading
    assert c.data == b"2 read\n" and not f.at_eof
    size = p.stat().st_size
    p.write_bytes(b"5 new\n")               # truncated and written again while the tailer was stopped
    got = drain(w, now=2.5)                 # 1.5 s later: less than UNSEEN_S
    assert [m for m, _ in got] == [b"5 new"]
    old = pos.files[c.key.hex()]
    assert old.end == "deleted" and old.size == size and "truncated after byte 15" in old.detail


def test_siblings_renamed_between_their_listing_and_their_reading_are_read_as_the_files_they_are(tmp_path):
    """Soak seed 1018 again: the tailer listed the siblings, was stopped, and a
    rotation moved app.log.1.gz (B) to app.log.2.gz and put C there. What it
    listed as app.log.1.gz is B's file: C is not recorded under B's file
    (which would leave B unread), and both are read, each once."""
    from helios.tail import rotation

    p = tmp_path / "app.log"
    write(p, b"A1 first of A\n")
    pos = Positions()
    w = Watcher([str(p)], pos, Options(start_at_end=False))
    w.scan()
    drain(w)
    restart(w, pos)
    p.write_bytes(b"B1 first of B\nB2\n")
    gzip_rotate(tmp_path, "rename")             # B -> app.log.1.gz
    listed = rotation.siblings(str(p))          # ... listed; then the tailer is stopped
    write(p, b"C1 first of C\nC2\n")
    gzip_rotate(tmp_path, "copytruncate")       # C -> app.log.1.gz, B -> app.log.2.gz
    w2 = Watcher([str(p)], pos, Options(start_at_end=False))
    w2.first_scan = False
    w2.sweep_files(listed, float("-inf"))       # goes on with what it had listed
    w2.scan()
    w2.sweep(str(p))
    got = drain(w2, now=10.0) + drain(w2, now=20.0)
    assert sorted(m for m, _ in got) == [b"B1 first of B", b"B2", b"C1 first of C", b"C2"]
    for name, first in (("app.log.2.gz", b"B1 first of B\n"), ("app.log.1.gz", b"C1 first of C\n")):
        st = os.stat(tmp_path / name)
        [q] = [q for q in pos.files.values() if q.fingerprint == first]
        assert [sig.split(":")[1] for sig in q.sealed] == [str(st.st_ino)]


def test_a_truncation_found_just_after_a_short_stop_is_reported_as_possibly_unseen(tmp_path, monkeypatch):
    """The tailer at the end of its file is stopped (SIGSTOP) for less than
    UNSEEN_S; meanwhile lines are written and the file truncated in place. It
    cannot know what it missed, but it knows it was stopped (SIGCONT came):
    the truncation is reported, so the audit does not say "No gaps"."""
    import signal
    import time

    from helios.tail import watcher as watcher_mod

    monkeypatch.setattr(watcher_mod, "_continued", [float("-inf")])
    p = tmp_path / "app.log"
    pos = Positions()
    w = Watcher([str(p.parent / "*.log")], pos, Options(start_at_end=False))
    write(p, b"1 first\n", b"2 read\n")
    w.scan()
    t0 = time.monotonic() - 1.0                 # (the looks below are a second ago and just now)
    [(_, key), _] = drain(w, now=t0)
    p.write_bytes(b"3 new\n")                   # written on, then truncated: while it was stopped
    drain(w, now=t0 + 0.5)                      # a normal look: no stop, a truncation is no loss
    assert pos.files[key.hex()].end == "read"

    write(p, b"4 read\n")
    drain(w, now=t0 + 0.6)
    [new] = [q for q in pos.files.values() if q.fingerprint == b"3 new\n"]
    os.kill(os.getpid(), signal.SIGCONT)        # the tailer was stopped and is continued
    assert watcher_mod.stopped_since(t0 + 0.6)
    p.write_bytes(b"5 after\n")
    drain(w, now=t0 + 1.5)                      # 0.9 s after its last look: less than UNSEEN_S
    assert new.end == "deleted" and "had not looked at it" in new.detail


def test_an_unfinished_last_line_of_a_file_truncated_with_no_copy_is_handed_out_once(tmp_path):
    p = tmp_path / "app.log"
    pos = Positions()
    w = Watcher([str(p)], pos, Options(start_at_end=False, partial_flush=0.5))
    write(p, b"1 first\n", b"2 unfinis")
    w.scan()
    f = w.current[str(p)]
    assert [c.data for c in f.read(1 << 20, 0.0)] == [b"1 first\n"]
    key = f.key
    p.write_bytes(b"3 new\n")                  # truncated in place: no copy
    got = []
    for now in (1.0, 1.1):                     # (looked at often: nothing unseen)
        got += [(m, fl) for c in f.read(1 << 20, now) for m, fl in zip(c.messages or [c.data[:-1]], c.fields or [None])]
        if f.at_eof:
            got += [(m, fl) for c in w.at_end(f, now) for m, fl in zip(c.messages, c.fields)]
    assert got == [(b"2 unfinis", {"unterminated": True}), (b"3 new", None)]
    assert pos.files[key.hex()].end == "read"   # all of it was handed out
