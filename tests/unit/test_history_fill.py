"""``helios.history.builder.fill`` on a real folder archive and sqlite index:
windows read ahead go into the index together, and the progress still
counts every window."""

import threading

import pytest

from helios import archive as archive_mod
from helios.archive.store import FolderArchive, key_for
from helios.errors import ArchiveError
from helios.history.builder import fill
from helios.history.sources import Window
from helios.index.query import Query
from helios.index.sqlite import SqliteIndex
from helios.model import Event, line_id, source_key
from helios.store.layout import BucketName

KEY = source_key(1, 2, b"first line")
NS = 1_000_000_000
T0 = 1_795_000_000 // 60 * 60       # a minute boundary


def window_events(w: int, n: int = 50) -> list[Event]:
    return [Event(line_id(KEY, w * 10_000 + i * 100), (T0 + w * 60) * NS + i * NS, (T0 + w * 60) * NS,
                  "web-1", "sshd", 6, "/var/log/auth.log", w * 10_000 + i * 100,
                  f"window {w} line {i} Failed password".encode(), None, KEY, "prod") for i in range(n)]


@pytest.fixture
def archived(tmp_path):
    store = FolderArchive(tmp_path / "archive")
    windows, events = [], []
    for w in range(6):
        evs = window_events(w)
        key = key_for("prod", (T0 + w * 60) * NS, 60)
        stored, _ = archive_mod.save(store, key, evs, environment="prod", level=3)
        windows.append(Window(BucketName("prod", T0 + w * 60, 60), key=key, size=stored.size))
        events += evs
    return store, windows, events


def test_every_window_is_loaded_once_and_counted_whatever_was_read_ahead(tmp_path, archived):
    store, windows, events = archived
    index = SqliteIndex(tmp_path / "index", "helios-history-test")
    seen = []
    gate = threading.Event()

    def report(c):
        seen.append(c.windows_done)
        gate.wait(5)         # the first load waits until the reader has read ahead
        return True

    def open_sources():
        gate_later = threading.Timer(0.3, gate.set)
        gate_later.start()
        return store, None, gate_later.cancel

    with index:
        c = fill(index, "prod", 0, 2**62, windows, open_sources=open_sources, report=report, prefetch=4,
                 together=120)
        hits = index.search(Query("prod", 0, 2**62, limit=None))
    assert (c.windows_done, c.windows_total, c.events_loaded, c.events_read) == (6, 6, 300, 300)
    assert seen == sorted(seen) and seen[-1] == 6
    assert len(seen) < 6                 # some windows went in together (120 events: up to 3 of 50)
    assert sorted(e.id for e in hits) == sorted(e.id for e in events)


def test_a_window_that_cannot_be_read_fails_the_build_after_loading_those_before_it(tmp_path, archived):
    store, windows, events = archived
    (tmp_path / "archive" / windows[3].key).write_bytes(b"not an archive object")
    index = SqliteIndex(tmp_path / "index", "helios-history-test")
    done = []
    with index:
        with pytest.raises(ArchiveError):
            fill(index, "prod", 0, 2**62, windows, open_sources=lambda: (store, None, lambda: None),
                 report=lambda c: done.append(c.windows_done) or True)
        hits = index.search(Query("prod", 0, 2**62, limit=None))
    assert done and done[-1] == 3
    assert sorted(e.id for e in hits) == sorted(e.id for e in events[:150])
