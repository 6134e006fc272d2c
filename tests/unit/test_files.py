"""Following one file: complete lines only, offsets, identity, rotation, truncation."""

import os

from helios.tail.files import MAX_PENDING, FollowedFile, Watcher


def test_only_complete_lines_are_handed_out_and_the_rest_waits_for_its_newline(tmp_path):
    p = tmp_path / "a.log"
    p.write_bytes(b"one\ntw")
    f = FollowedFile.open(str(p), from_end=False)
    c = f.read(1 << 20)
    assert (c.offset, c.data) == (0, b"one\n")
    assert f.read(1 << 20) is None
    with open(p, "ab") as out:
        out.write(b"o\nthree\n")
    c = f.read(1 << 20)
    assert (c.offset, c.data) == (4, b"two\nthree\n")


def test_a_small_read_limit_never_splits_a_line(tmp_path):
    p = tmp_path / "a.log"
    lines = [b"line %d with some text\n" % i for i in range(100)]
    p.write_bytes(b"".join(lines))
    f = FollowedFile.open(str(p), from_end=False)
    got, offsets = [], []
    while True:
        c = f.read(37)
        if c is None and f.at_eof:
            break
        if c:
            offsets.append(c.offset)
            got.append(c.data)
    assert b"".join(got) == b"".join(lines)
    assert all(d.endswith(b"\n") for d in got)


def test_starting_at_the_end_skips_existing_lines_but_not_a_partial_one(tmp_path):
    p = tmp_path / "a.log"
    p.write_bytes(b"old\nolder\npart")
    f = FollowedFile.open(str(p), from_end=True)
    assert f.pos == len(b"old\nolder\n")
    with open(p, "ab") as out:
        out.write(b"ial\n")
    assert f.read(1 << 20).data == b"partial\n"


def test_identity_is_stable_across_a_rename_and_differs_after_a_copytruncate(tmp_path):
    p = tmp_path / "a.log"
    p.write_bytes(b"first line\nsecond\n")
    f = FollowedFile.open(str(p), from_end=False)
    key = f.read(1 << 20).key
    os.rename(p, tmp_path / "a.log.1")
    g = FollowedFile.open(str(tmp_path / "a.log.1"), from_end=False)
    assert g.read(1 << 20).key == key
    # copytruncate: same inode, new first line
    with open(tmp_path / "a.log.1", "r+b") as out:
        out.truncate(0)
        out.write(b"a new first line\n")
    h = FollowedFile.open(str(tmp_path / "a.log.1"), from_end=False)
    assert h.read(1 << 20).key != key


def test_a_runaway_line_without_newline_is_handed_out_rather_than_held_forever(tmp_path):
    p = tmp_path / "a.log"
    p.write_bytes(b"x" * (MAX_PENDING + 10))
    f = FollowedFile.open(str(p), from_end=False)
    out = b""
    while not (f.at_eof and len(out) >= MAX_PENDING):
        c = f.read(1 << 20)
        if c:
            out += c.data
    assert len(out) >= MAX_PENDING


def test_a_rotated_file_is_let_go_after_its_end_with_its_last_unterminated_line(tmp_path):
    p = tmp_path / "a.log"
    p.write_bytes(b"one\nlast without newline")
    w = Watcher([str(tmp_path / "*.log")], start_at_end=False)
    [f] = w.scan()
    assert f.read(1 << 20).data == b"one\n"
    os.rename(p, tmp_path / "a.old")
    p.write_bytes(b"new file\n")
    f.read(1 << 20)
    last = w.check_rotation(f)
    assert last.data == b"last without newline" and last.offset == 4
    assert str(p) not in w.files
    [g] = w.scan()
    assert g.pos == 0 and g.read(1 << 20).data == b"new file\n"


def test_a_truncated_file_is_read_again_from_the_beginning(tmp_path):
    p = tmp_path / "a.log"
    p.write_bytes(b"one\ntwo\n")
    w = Watcher([str(p)], start_at_end=False)
    [f] = w.scan()
    f.read(1 << 20)
    with open(p, "r+b") as out:
        out.truncate(0)
    f.read(1 << 20)
    w.check_rotation(f)
    with open(p, "ab") as out:
        out.write(b"three\n")
    c = f.read(1 << 20)
    assert (c.offset, c.data) == (0, b"three\n")


def test_files_existing_at_first_scan_start_at_the_end_and_later_ones_at_the_beginning(tmp_path):
    (tmp_path / "old.log").write_bytes(b"old line\n")
    w = Watcher([str(tmp_path / "*.log")], start_at_end=True)
    [old] = w.scan()
    assert old.pos == len(b"old line\n")
    (tmp_path / "new.log").write_bytes(b"new line\n")
    [new] = w.scan()
    assert new.pos == 0
