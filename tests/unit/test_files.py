"""One followed file: complete lines, offsets, identity, long and unterminated lines, truncation."""

import os

from helios.tail.files import FollowedFile


def read_all(f, limit=1 << 20, now=0.0):
    out = []
    while True:
        chunks = f.read(limit, now)
        out.extend(chunks)
        if f.at_eof and not chunks:
            return out


def events(chunks):
    """(offset, message, fields) of every event in chunks."""
    out = []
    for c in chunks:
        if c.messages is None:
            off = c.offset
            for line in c.data[:-1].split(b"\n"):
                out.append((off, line, None))
                off += len(line) + 1
        else:
            out.extend(zip(c.offsets, c.messages, c.fields))
    return out


def test_only_complete_lines_are_handed_out_and_the_rest_waits_for_its_newline(tmp_path):
    p = tmp_path / "a.log"
    p.write_bytes(b"one\ntw")
    f = FollowedFile.open(str(p))
    [c] = f.read(1 << 20, 0)
    assert (c.offset, c.data, c.end) == (0, b"one\n", 4)
    assert f.read(1 << 20, 0) == []
    with open(p, "ab") as out:
        out.write(b"o\nthree\n")
    [c] = f.read(1 << 20, 0)
    assert (c.offset, c.data, c.end) == (4, b"two\nthree\n", 14)


def test_a_small_read_limit_never_splits_a_line(tmp_path):
    p = tmp_path / "a.log"
    lines = [b"line %d with some text\n" % i for i in range(100)]
    p.write_bytes(b"".join(lines))
    f = FollowedFile.open(str(p))
    got = read_all(f, limit=37)
    assert b"".join(c.data for c in got) == b"".join(lines)
    assert all(c.data.endswith(b"\n") and c.messages is None for c in got)


def test_starting_at_the_end_skips_existing_lines_but_not_a_partial_one(tmp_path):
    p = tmp_path / "a.log"
    p.write_bytes(b"old\nolder\npart")
    f = FollowedFile.open(str(p), "end")
    assert f.pos == len(b"old\nolder\n")
    with open(p, "ab") as out:
        out.write(b"ial\n")
    assert f.read(1 << 20, 0)[0].data == b"partial\n"


def test_identity_is_stable_across_a_rename_and_differs_after_a_copytruncate(tmp_path):
    p = tmp_path / "a.log"
    p.write_bytes(b"first line\nsecond\n")
    key = FollowedFile.open(str(p)).key
    os.rename(p, tmp_path / "a.log.1")
    assert FollowedFile.open(str(tmp_path / "a.log.1")).key == key
    with open(tmp_path / "a.log.1", "r+b") as out:  # copytruncate: same inode, new first line
        out.truncate(0)
        out.write(b"a new first line\n")
    assert FollowedFile.open(str(tmp_path / "a.log.1")).key != key


def test_a_long_line_is_split_into_marked_pieces_and_nothing_is_lost(tmp_path):
    p = tmp_path / "a.log"
    long = bytes(range(97, 123)) * 400  # 10,400 bytes, no newline inside
    p.write_bytes(b"short\n" + long + b"\nafter\n")
    f = FollowedFile.open(str(p), max_line=1000)
    evs = events(read_all(f, limit=3000))
    assert evs[0] == (0, b"short", None) and evs[-1] == (6 + len(long) + 1, b"after", None)
    pieces = evs[1:-1]
    assert b"".join(m for _, m, _ in pieces) == long
    assert all(len(m) <= 1000 for _, m, _ in pieces)
    assert [fl["split"] for _, _, fl in pieces] == list(range(1, len(pieces) + 1))
    assert pieces[-1][2].get("last") and not any(fl.get("last") for _, _, fl in pieces[:-1])
    offsets = [o for o, _, _ in pieces]
    assert offsets == [6 + 1000 * i for i in range(len(pieces))]


def test_a_line_without_newline_is_handed_out_marked_after_the_partial_flush_timeout(tmp_path):
    p = tmp_path / "a.log"
    p.write_bytes(b"done\nno newline yet")
    f = FollowedFile.open(str(p), partial_flush=5.0)
    assert events(f.read(1 << 20, now=100.0)) == [(0, b"done", None)]
    assert f.read(1 << 20, now=104.0) == []
    [c] = f.read(1 << 20, now=105.5)
    assert events([c]) == [(5, b"no newline yet", {"unterminated": True})]
    assert c.end == p.stat().st_size
    with open(p, "ab") as out:
        out.write(b" but now\n")
    assert events(f.read(1 << 20, now=106)) == [(19, b" but now", None)]


def test_truncation_is_noticed_even_when_the_file_grew_back_past_the_old_offset(tmp_path):
    p = tmp_path / "a.log"
    p.write_bytes(b"first\nsecond\n")
    f = FollowedFile.open(str(p))
    read_all(f)
    with open(p, "r+b") as out:
        out.truncate(0)
        out.write(b"another first line that is longer\n")
    assert f.read(1 << 20, 0) == []  # the new bytes are not read as a continuation
    assert f.truncated()
    f.restart()
    assert events(read_all(f)) == [(0, b"another first line that is longer", None)]


def test_a_file_truncated_and_started_again_with_the_same_first_line_gets_new_ids(tmp_path):
    p = tmp_path / "a.log"
    p.write_bytes(b"header\nold\n")
    f = FollowedFile.open(str(p))
    read_all(f)
    key = f.key
    with open(p, "r+b") as out:
        out.truncate(0)
    with open(p, "ab") as out:
        out.write(b"header\nnew\n")
    f.restart()
    assert f.pos == 0 and f.key != key and f.generation == 1


def test_a_file_rewritten_between_its_identification_and_its_first_read_is_noticed(tmp_path):
    p = tmp_path / "a.log"
    p.write_bytes(b"old first line\nold second\n")
    f = FollowedFile.open(str(p))  # identified; nothing read yet
    p.write_bytes(b"new first line\n")  # copytruncate, and the writer goes on
    assert f.read(1 << 20, 0) == []  # not read under the identity of the old content
    assert f.truncated()
    f.restart()
    [c] = f.read(1 << 20, 0)
    assert c.data == b"new first line\n"


def test_identity_does_not_depend_on_the_inode_or_the_name(tmp_path):
    p = tmp_path / "a.log"
    p.write_bytes(b"first line\nsecond\n")
    key = FollowedFile.open(str(p)).key
    (tmp_path / "copy").write_bytes(p.read_bytes())
    assert FollowedFile.open(str(tmp_path / "copy")).key == key


def test_the_wait_for_a_newline_starts_with_each_new_unfinished_line(tmp_path):
    """Soak seed 1002: reads that end inside a line, one after the other, are
    each a new unfinished line; only one that waits partial_flush seconds for
    its newline is handed out unterminated."""
    p = tmp_path / "a.log"
    p.write_bytes(b"1 one\n2 tw")
    f = FollowedFile.open(str(p), partial_flush=5.0)
    assert events(f.read(1 << 20, now=100.0)) == [(0, b"1 one", None)]
    with open(p, "ab") as out:
        out.write(b"o\n3 th")
    assert events(f.read(1 << 20, now=104.0)) == [(6, b"2 two", None)]
    assert f.read(1 << 20, now=106.0) == []            # "3 th" waits since 104, not 100
    with open(p, "ab") as out:
        out.write(b"ree\n")
    assert events(f.read(1 << 20, now=107.0)) == [(12, b"3 three", None)]


def test_an_unfinished_line_of_a_file_truncated_meanwhile_is_not_handed_out_as_it_is(tmp_path):
    """Its copy (copytruncate) may hold the rest of the line: the truncation
    is noticed first, never a piece flushed as a line of its own."""
    p = tmp_path / "a.log"
    p.write_bytes(b"1 one\n2 tw")
    f = FollowedFile.open(str(p), partial_flush=0.5)
    assert events(f.read(1 << 20, now=100.0)) == [(0, b"1 one", None)]
    os.truncate(p, 0)
    assert f.read(1 << 20, now=110.0) == []
    assert f.truncated() and f.pending == b"2 tw" and f.line_offset == 6
