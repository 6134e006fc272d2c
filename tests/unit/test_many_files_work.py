"""With thousands of followed files, each step of the tailer's loop does work
in proportion to what happened, not to the files: finding files (one listing
per directory, the same paths as glob), remembering readers for a save (only
those that moved), identifying a new file (only the contents with its first
line), and writing positions (a path map serialized only when it changed)."""

from __future__ import annotations

import glob
import json
import os

import pytest

from helios.tail import positions
from helios.tail.discover import match_files, path_matches
from helios.tail.positions import Position, Positions, Saver
from helios.tail.watcher import Options, Watcher


def write(path, data: bytes = b"a line\n") -> None:
    with open(path, "ab") as f:
        f.write(data)


def globbed(pattern: str) -> list[str]:
    return sorted(p for p in glob.glob(pattern) if os.path.isfile(p))


@pytest.fixture
def tree(tmp_path):
    """Files, hidden files, directories, symlinks (to a file, to a directory, dangling)."""
    for d in ("a", "b", "c.log.d"):
        (tmp_path / d).mkdir()
    for name in ("a/x.log", "a/y.log", "a/.hidden.log", "a/z.txt", "b/x.log", "b/x.log.1", "a/[odd].log"):
        write(tmp_path / name)
    (tmp_path / "a" / "dir.log").mkdir()
    os.symlink(tmp_path / "b" / "x.log", tmp_path / "a" / "link.log")
    os.symlink(tmp_path / "b", tmp_path / "a" / "linkdir.log")
    os.symlink(tmp_path / "nowhere", tmp_path / "a" / "dangling.log")
    return tmp_path


@pytest.mark.parametrize("pattern", ["a/*.log", "*/*.log", "*/x.log*", "a/.*.log", "a/?.log", "a/[xy].log",
                                     "a/x.log", "missing/*.log", "*.log.d/*", "a/*", "[ab]/*.log", "a/[[]odd].log"])
def test_files_found_by_listing_each_directory_are_those_glob_finds(tree, pattern):
    hits, links = match_files(str(tree / pattern))
    assert hits == globbed(str(tree / pattern))
    assert links == {p for p in hits if os.path.islink(p)}
    for p in hits:
        assert path_matches(p, str(tree / pattern))


def test_a_path_matches_a_glob_as_glob_would_name_it(tree):
    assert path_matches(str(tree / "a/x.log"), str(tree / "*/*.log"))
    assert not path_matches(str(tree / "a/.hidden.log"), str(tree / "a/*.log"))     # hidden, as glob
    assert not path_matches(str(tree / "a/sub/x.log"), str(tree / "a/*.log"))       # "*" is one level
    assert not path_matches(str(tree / "a/x.log.1"), str(tree / "a/*.log"))
    assert path_matches("rel/x.log", "rel/*.log") and not path_matches("other/x.log", "rel/*.log")


_OPEN: list[Watcher] = []


@pytest.fixture(autouse=True)
def _close_watchers():
    """Thousands of readers hold thousands of descriptors: closed after each test."""
    yield
    while _OPEN:
        _OPEN.pop().close()


def watcher_of(tmp_path, n: int) -> Watcher:
    for i in range(n):
        write(tmp_path / f"f{i:04d}.log", b"first line of %d\n" % i)
    w = Watcher([str(tmp_path / "*.log")], Positions(), Options(start_at_end=False, max_open=n + 10))
    _OPEN.append(w)
    w.scan()
    for f in w.readers():
        f.read(1 << 20)
    return w


def test_a_save_at_thousands_of_idle_files_copies_only_the_entries_that_moved(tmp_path):
    w = watcher_of(tmp_path, 2000)
    w.remember(1.0)                         # the first look: every file
    assert len(w.positions.snapshot().changed) == 2000
    w.remember(2.0, parked=False)           # nothing moved: nothing to copy or serialize
    assert w.positions.snapshot().changed == {}
    moved = w.current[str(tmp_path / "f0042.log")]
    write(moved.path, b"another line\n")
    moved.read(1 << 20)
    w.remember(3.0, parked=False)
    assert list(w.positions.snapshot().changed) == [moved.key.hex()]
    assert w.positions.files[moved.key.hex()].size == moved.pos
    w.remember(5.0, parked=False, full=True)   # a round a moment later: "seen" is coarse, nothing moved
    assert w.positions.snapshot().changed == {}
    w.remember(1000.0, parked=False, full=True)   # the periodic round: every one's "seen" again
    assert len(w.positions.snapshot().changed) == 2000


def test_a_file_renamed_onto_a_followed_path_is_remembered_at_its_new_path(tmp_path):
    w = watcher_of(tmp_path, 3)
    w.remember(1.0)
    f = w.current[str(tmp_path / "f0001.log")]
    f.path = str(tmp_path / "renamed.log")          # (adopt does this)
    w.remember(2.0, parked=False)
    assert w.positions.files[f.key.hex()].path == f.path


def test_the_entries_of_a_first_line_are_found_without_walking_the_others():
    p = Positions()
    for i in range(100):
        p.files[f"{i:032x}"] = Position(f"/l/{i}", 1, i, b"same" if i % 10 == 0 else b"line %d" % i, i, 0, 0.0)
    assert sorted(p.files.with_prefix(b"same")) == [f"{i:032x}" for i in range(0, 100, 10)]
    del p.files[f"{0:032x}"]
    p.files.pop(f"{10:032x}")
    p.files[f"{20:032x}"] = Position("/l/x", 1, 1, b"other", 0, 0, 0.0)       # replaced by another content
    assert sorted(p.files.with_prefix(b"same")) == [f"{i:032x}" for i in range(30, 100, 10)]
    assert list(p.files.with_prefix(b"other")) == [f"{20:032x}"]
    loaded = Positions.from_bytes(p.to_bytes())
    assert sorted(loaded.files.with_prefix(b"same")) == sorted(p.files.with_prefix(b"same"))
    p.files.clear()
    assert p.files.with_prefix(b"same") == {}


def test_among_thousands_known_a_copy_gets_its_contents_identity_and_a_new_file_its_own(tmp_path):
    w = watcher_of(tmp_path, 1500)
    known = {f.path: f.key for f in w.readers()}
    w.remember(1.0)
    w.close()
    again = Watcher([str(tmp_path / "*.log")], w.positions, Options(start_at_end=False, max_open=2000))
    _OPEN.append(again)
    write(tmp_path / "copy.log", b"first line of 7\n")        # the bytes of f0007.log: the same content
    write(tmp_path / "new.log", b"first line of 7, and more\n")
    again.scan()
    assert {f.path: f.key for f in again.readers() if f.path in known} == known
    assert again.current[str(tmp_path / "copy.log")].key == known[str(tmp_path / "f0007.log")]
    new = again.current[str(tmp_path / "new.log")]
    assert new.key is not None and new.key not in known.values()


def test_the_saver_writes_the_same_bytes_when_followed_paths_come_and_go(tmp_path):
    p = Positions({"aa" * 16: Position("/l/a", 1, 2, b"a\n", 0, 3, 1.0)}, watching={"/l/a": 1.0})
    s = Saver(tmp_path / "positions.json")
    try:
        for change in (lambda: None, lambda: p.watching.update({"/l/b": 2.0}), lambda: p.watching.pop("/l/a"),
                       lambda: p.watching.update({"/l/b": 3.0})):
            change()
            data = s.render(p.snapshot(), saved_at=42.0)
            assert positions.Positions.from_bytes(data).watching == p.watching
            ref = p.to_bytes()
            assert data == ref.replace(b'"saved_at": %r' % json.loads(ref)["saved_at"], b'"saved_at": 42.0')
    finally:
        s.close()


def test_an_entry_is_written_as_json_indents_it_whatever_its_values():
    import base64
    import random

    rng = random.Random(3)
    for _ in range(500):
        d = dict(path=rng.choice(["/a/b", '/ü/"x\\', "/l/" + "x" * rng.randint(0, 9)]), dev=rng.randint(0, 2 ** 40),
                 ino=rng.randint(0, 2 ** 63), fingerprint=os.urandom(rng.randint(0, 40)), generation=rng.randint(0, 3),
                 offset=rng.randint(0, 2 ** 50), seen=rng.random() * 2e9, done=rng.random() < .5,
                 head_len=rng.randint(0, 4096), head_hash=rng.randint(-2 ** 63, 2 ** 63), legacy=rng.random() < .5,
                 paths=[rng.choice(["/a", "/b\u1234", "/c\n"]) for _ in range(rng.randint(0, 3))],
                 size=rng.randint(0, 9), first=rng.randint(-1, 9), end=rng.choice(positions.ENDS),
                 detail=rng.choice(["", 'why "x"']), sealed=[f"{rng.randint(0, 9)}:1:2:3"] * rng.randint(0, 2))
        entry = {name: d[name] for name in positions._SAVED}
        entry["fingerprint"] = base64.b64encode(d["fingerprint"]).decode()
        assert positions._fragment(d) == json.dumps(entry, indent=0, sort_keys=True)


def test_files_inotify_says_were_created_are_followed_without_listing_the_others(tmp_path):
    w = watcher_of(tmp_path, 50)
    write(tmp_path / "new.log", b"a new file\n")
    write(tmp_path / "new.txt", b"not matched\n")
    assert w.follow_new({str(tmp_path / "new.log"), str(tmp_path / "new.txt"), str(tmp_path / "gone.log")})
    assert str(tmp_path / "new.log") in w.current and str(tmp_path / "new.txt") not in w.current
    assert str(tmp_path / "new.log") in w.positions.watching
    os.symlink(tmp_path / "new.txt", tmp_path / "link.log")
    assert not w.follow_new({str(tmp_path / "link.log")})     # its target's directory: a full scan
    fresh = Watcher([str(tmp_path / "*.log")], Positions(), Options())
    assert not fresh.follow_new({str(tmp_path / "new.log")})  # before the first scan: a full one


def test_thousands_of_inventory_records_go_out_a_slice_a_turn_each_once(tmp_path):
    """After a start every content's record is due: each turn of the loop makes
    at most INVENTORY_SLICE of them (a line waits for one slice, not for all),
    and the turns that follow send the rest, each record once."""
    from helios import codec, config
    from helios.services import tailer as T
    from helios.store.records import RecordReader
    from helios.tail.spool import Spool
    from helios.wire.fanout import Fanout
    from helios.wire.ports import free_endpoint
    from helios.wire.sockets import SocketFactory

    nobody = free_endpoint()    # no buck there: the spool keeps the records
    t = T.Tailer.__new__(T.Tailer)
    t.cfg = config.load(None, {"tailer.paths": ("/nowhere/*.log",), "tailer.environment": "prod",
                               "tailer.bucks": (nobody,)}).tailer
    t.host, t.journal, t.inventory_sent, t.inventory_waiting, t.inventory_seq = "h", None, {}, {}, 0
    t.positions = Positions()
    n = 1050
    for i in range(n):
        t.positions.files[f"{i:032x}"] = Position(f"/l/{i}.log", 1, i, b"line %d" % i, 0, 10, 0.0,
                                                  paths=[f"/l/{i}.log"], size=10, first=0)
    t.spool = Spool(tmp_path / "spool", 60, max_bytes=1 << 30, max_age=86400, jitter=1.0)
    t.fanout = Fanout(SocketFactory(), [nobody], 1)
    try:
        turns = 0
        t.send_inventory()
        while t.inventory_more:
            turns += 1
            assert turns < 100
            t.send_inventory()
        assert turns + 1 == -(-n // T.INVENTORY_SLICE)
        t.send_inventory()      # nothing changed: nothing more
        t.spool.close()
        records = [e for path in sorted((tmp_path / "spool").rglob("*.bkt"))
                   for frame in RecordReader(path) for e in codec.decode(frame)[1]]
        identities = [e.fields["identity"] for e in records]
        assert sorted(identities) == sorted(f"{i:032x}" for i in range(n))
    finally:
        t.fanout.close(linger_ms=0)
