"""Saving positions off the tailer's loop (``positions.Saver``): the file is
the same as before, only changed entries are serialized again, a slow writer
never writes a position ahead of what was spooled when its snapshot was
taken, and ``close`` leaves the last snapshot on disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from helios.tail import positions
from helios.tail.positions import Position, Positions, Saver
from tests.helpers import poll_until

KEY_A, KEY_B, KEY_C = "aa" * 16, "bb" * 16, "cc" * 16


def sample() -> Positions:
    p = Positions({KEY_A: Position("/var/log/a", 1, 2, b"first\n", 0, 100, 5.0, paths=["/var/log/a"], size=100,
                                   first=0),
                   KEY_B: Position("/var/log/b.gz", 1, 3, b"\xff\x00bin", 2, 7, 6.0, done=True, sealed=["1:3:7:9"],
                                   end=positions.END_READ)},
                  {"prod/x.bkt": 1}, watching={"/var/log/*.log": 3.5},
                  journal={"/run/log/journal": {"cursor": "s=1", "after": {"x": 3}, "first": {"x": 1}}})
    return p


def rendered(saver: Saver, p: Positions, at: float = 42.0) -> bytes:
    return saver.render(p.snapshot(), saved_at=at)


def reference(p: Positions, at: float = 42.0) -> bytes:
    data = p.to_bytes()
    doc = json.loads(data)
    return data.replace(f'"saved_at": {doc["saved_at"]!r}'.encode(), f'"saved_at": {at!r}'.encode())


def test_the_saver_writes_the_same_bytes_as_to_bytes_through_changes(tmp_path):
    p = sample()
    s = Saver(tmp_path / "positions.json")
    try:
        assert rendered(s, p) == reference(p)
        p.files[KEY_A].offset = 250                 # a field set
        p.files[KEY_A].saw("/var/log/a.1", 300)     # a list changed in place
        p.files[KEY_C] = Position("/var/log/c", 1, 4, b"c\n", 0, 0, 7.0)   # added
        del p.files[KEY_B]                          # let go of
        p.spool["prod/y.bkt"] = 2
        p.journal["/run/log/journal"]["cursor"] = "s=2"
        assert rendered(s, p) == reference(p)
        assert s.render(p.snapshot(), saved_at=42.0) == reference(p)   # nothing changed: the same
        assert reference(Positions.from_bytes(rendered(s, p))) == reference(p)   # a round trip
    finally:
        s.close()


def test_an_older_positions_file_is_saved_in_the_current_format(tmp_path):
    path = tmp_path / "positions.json"
    v1 = {"version": 1, "files": {KEY_A: {"path": "/var/log/a", "dev": 1, "ino": 2,
                                          "fingerprint": "Zmlyc3QK", "generation": 0, "offset": 6, "seen": 5.0}}}
    path.write_text(json.dumps(v1))
    p = positions.load(path)
    s = Saver(path)
    s.submit(p.snapshot())
    assert s.close(timeout=30)
    back = positions.load(path)
    assert json.loads(path.read_bytes())["version"] == positions.VERSION
    assert back.files == p.files and back.files[KEY_A].legacy and back.files[KEY_A].offset == 6


def test_only_changed_entries_are_copied_into_a_snapshot():
    p = Positions({f"{i:032x}": Position(f"/l/{i}", 1, i, b"x\n", 0, i, 1.0) for i in range(100)})
    assert len(p.snapshot().changed) == 100      # every entry the first time
    assert p.snapshot().changed == {}
    p.files[f"{7:032x}"].offset = 1000
    assert list(p.snapshot().changed) == [f"{7:032x}"]
    before = p.fingerprint()
    p.files[f"{8:032x}"].seen = 99.0             # only "seen": not worth a save on its own...
    assert p.fingerprint() == before
    assert list(p.snapshot().changed) == [f"{8:032x}"]   # ...but written with the next one
    p.files[f"{9:032x}"].ended(positions.END_DELETED, "gone")
    assert p.fingerprint() != before


def test_the_inventory_hears_only_of_entries_whose_record_may_have_changed():
    p = sample()
    assert set(p.take_inventory_touched()) == {KEY_A, KEY_B}   # all, after a load
    assert p.take_inventory_touched() == {}
    p.files[KEY_A].seen = 9.0                     # not in a record
    assert p.take_inventory_touched() == {}
    p.files[KEY_B].saw("/var/log/b.1.gz")
    p.files[KEY_A].offset = 101
    assert set(p.take_inventory_touched()) == {KEY_A, KEY_B}


class SlowSaver(Saver):
    """A writer held at ``gate`` before it writes: a slow disk."""

    def __init__(self, path: Path) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        super().__init__(path)

    def write(self, snap) -> None:
        self.entered.set()
        self.gate.wait(30)
        super().write(snap)


def test_a_slow_writer_never_writes_a_position_taken_after_its_snapshot(tmp_path):
    """The snapshot is taken after the spool sync; lines read and committed
    meanwhile (offset 900) must not reach the file through a write still in
    flight: the file holds the snapshot's offsets, or newer snapshots'."""
    path = tmp_path / "positions.json"
    p = sample()
    s = SlowSaver(path)
    try:
        spooled = 100
        s.submit(p.snapshot())                        # offset 100 is in the spool
        poll_until(s.entered.is_set, what="the writer busy")
        p.files[KEY_A].offset = 900                   # committed later, not synced yet
        p.files[KEY_A].saw("/var/log/a.1", 900)
        s.gate.set()
        assert s.wait(timeout=30)
        assert positions.load(path).files[KEY_A].offset == spooled
        # Snapshots queued behind a busy writer: the newest wins, and the changes
        # of those it replaced are not lost.
        s.gate.clear()
        s.entered.clear()
        p.files[KEY_B].offset = 8
        s.submit(p.snapshot())                        # (now synced: 900 and 8)
        poll_until(s.entered.is_set, what="the writer busy")
        p.files[KEY_A].offset = 950
        s.submit(p.snapshot())
        p.files[KEY_B].offset = 9
        p.files[KEY_A].offset = 990                   # not synced: must not be written
        s.gate.set()
        assert s.close(timeout=30)
        back = positions.load(path).files
        assert back[KEY_A].offset == 950 and back[KEY_B].offset == 8
        assert back[KEY_A].paths == ["/var/log/a", "/var/log/a.1"]
    finally:
        s.gate.set()
        s.close(timeout=30)


CHILD = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    from helios.tail import positions
    from helios.tail.positions import Position, Positions, Saver

    state = Path(sys.argv[1])
    spool = open(state / "spool", "ab")
    p = Positions({"aa" * 16: Position("/l/a", 1, 2, b"x\\n", 0, 0, 1.0)})
    s = Saver(state / "positions.json")
    i = 0
    while True:
        i += 1
        spool.write(b"line %d\\n" % i)                 # in the spool...
        p.files["aa" * 16].offset = spool.tell()     # ...then committed
        if i % 50 == 0:
            spool.flush()
            os.fsync(spool.fileno())                 # the spool synced, then the snapshot
            s.submit(p.snapshot())
        if i == 2000:
            print("ready", flush=True)
""")


def test_kill_9_while_saving_never_leaves_a_position_ahead_of_the_spool(tmp_path):
    """A real process saves as fast as it can while it spools; killed with
    SIGKILL mid-way, the positions file is whole and its offset is never past
    the end of the spool."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    for _ in range(3):
        for f in tmp_path.iterdir():
            f.unlink()
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE, env=env)
        try:
            assert child.stdout.readline() == b"ready\n"
            poll_until(lambda: (tmp_path / "positions.json").exists(), timeout=30, what="a save")
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
            child.stdout.close()
        saved = positions.load(tmp_path / "positions.json")
        assert not saved.recovered
        assert 0 < saved.files["aa" * 16].offset <= (tmp_path / "spool").stat().st_size


def test_close_waits_for_the_last_snapshot_on_disk(tmp_path):
    """What SIGTERM relies on: ``close`` returns once the newest snapshot is
    written, however slow the disk."""
    path = tmp_path / "positions.json"
    p = sample()
    s = SlowSaver(path)
    s.submit(p.snapshot())
    poll_until(s.entered.is_set, what="the writer busy")
    p.files[KEY_A].offset = 500
    s.submit(p.snapshot())                # waits behind the slow write
    threading.Timer(0.3, s.gate.set).start()
    assert s.close(timeout=30)
    assert positions.load(path).files[KEY_A].offset == 500


class BrokenOnce(Saver):
    """A writer whose first serialization fails (a bug, say)."""

    broken = True

    def render(self, snap, saved_at=None):
        if self.broken:
            self.broken = False
            for key, d in snap.changed.items():   # half the fragments made, then the failure
                self.fragments[key] = "{}"
                break
            raise RuntimeError("boom")
        return super().render(snap, saved_at)


def test_a_failed_save_is_reported_and_the_next_one_holds_every_entry(tmp_path, caplog):
    path = tmp_path / "positions.json"
    p = sample()
    s = BrokenOnce(path)
    try:
        s.submit(p.snapshot())
        assert s.wait(timeout=30)
        assert s.failed and s.need_full and not path.exists()
        assert "Cannot serialize positions" in caplog.text
        # What Tailer.save does next: every entry again.
        p.touch_all()
        s.need_full = False
        s.submit(p.snapshot())
        assert s.wait(timeout=30)
        assert not s.failed
        assert reference(positions.load(path)) == reference(p)
    finally:
        assert s.close(timeout=30)


def test_a_guide_file_is_written_by_the_saver_thread_too(tmp_path):
    s = Saver(tmp_path / "positions.json")
    s.write_later(tmp_path / "stats.json", b'{"lines": 1}')
    s.write_later(tmp_path / "stats.json", b'{"lines": 2}')   # the newest wins
    assert s.close(timeout=30)
    assert (tmp_path / "stats.json").read_bytes() == b'{"lines": 2}'
    assert not (tmp_path / "positions.json").exists()


def test_positions_are_written_only_after_the_spool_files_handed_with_them_are_fsynced(tmp_path, caplog):
    from helios.tail.spool import Spool

    spool = Spool(tmp_path / "spool", 60, max_bytes=10 ** 9, max_age=86400.0, jitter=0.0)
    path = tmp_path / "positions.json"
    p = sample()
    s = Saver(path)
    try:
        spool.append("prod", b"frame")
        s.submit(p.snapshot(), spool.unsynced())
        assert s.wait(timeout=30) and path.exists() and s.sync_error is None
        # A spool file that cannot be made durable: the positions stay as they were.
        p.files[KEY_A].offset = 999
        r, w = os.pipe()
        s.submit(p.snapshot(), [(r, tmp_path / "spool-file", [])])
        assert s.wait(timeout=30)
        assert s.sync_error is not None and s.failed
        assert positions.load(path).files[KEY_A].offset == 100
        assert "Cannot fsync spool file" in caplog.text and "not saved past it" in caplog.text
        s.submit(p.snapshot())                  # nor ever after
        assert s.wait(timeout=30) and positions.load(path).files[KEY_A].offset == 100
        os.close(w)
    finally:
        assert s.close(timeout=30)
        spool.close()


def test_staged_entries_are_written_with_the_next_snapshot_and_a_later_change_wins(tmp_path):
    path = tmp_path / "positions.json"
    p = sample()
    s = Saver(path)
    try:
        s.submit(p.snapshot())
        assert s.wait(timeout=30)
        saves = s.saves
        p.files[KEY_A].seen = 77.0          # what the walk over parked files changes
        p.files[KEY_B].seen = 78.0
        s.stage(p.snapshot())
        assert s.wait(timeout=30) and s.saves == saves   # staged: no write of its own
        p.files[KEY_B].offset = 8           # changed again after it was staged
        s.submit(p.snapshot())
        assert s.wait(timeout=30)
        saved = positions.load(path)
        assert (saved.files[KEY_A].seen, saved.files[KEY_B].seen, saved.files[KEY_B].offset) == (77.0, 78.0, 8)
        assert reference(saved) == reference(p)
    finally:
        assert s.close(timeout=30)


def test_while_the_disk_is_stuck_a_spool_file_waits_with_one_descriptor_not_one_per_save(tmp_path):
    from helios.tail.spool import Spool

    spool = Spool(tmp_path / "spool", 60, max_bytes=10 ** 9, max_age=86400.0, jitter=0.0)
    p = sample()
    s = SlowSaver(tmp_path / "positions.json")
    try:
        s.submit(p.snapshot())
        poll_until(s.entered.is_set, what="the writer busy")
        fds = len(os.listdir("/proc/self/fd"))
        for i in range(50):
            spool.append("prod", b"frame %d" % i)
            p.files[KEY_A].offset = 200 + i
            s.submit(p.snapshot(), spool.unsynced())
        assert len(os.listdir("/proc/self/fd")) <= fds + 2    # the spool's writer, and one waiting dup
        s.gate.set()
        assert s.wait(timeout=30)
        assert positions.load(tmp_path / "positions.json").files[KEY_A].offset == 249
        assert len(os.listdir("/proc/self/fd")) <= fds + 1
    finally:
        s.gate.set()
        assert s.close(timeout=30)
        spool.close()
