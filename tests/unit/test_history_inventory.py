"""History builds count the tailers' inventory records apart, as the porter
does (``inventory_records``): ``events_read`` is what a search of the
windows read can find, and a request store an older Helios made is migrated."""

import sqlite3

from helios import archive as archive_mod
from helios.archive.store import FolderArchive, key_for
from helios.history.builder import fill
from helios.history.requests import RequestStore
from helios.history.sources import Window
from helios.index.query import Query
from helios.index.sqlite import SqliteIndex
from helios.model import INVENTORY_APP, Event, line_id, random_id, source_key
from helios.store.layout import BucketName

KEY = source_key(1, 2, b"first line")
NS = 1_000_000_000
T0 = 1_795_000_000 // 60 * 60


def test_inventory_records_read_back_from_the_archive_are_counted_apart(tmp_path):
    store = FolderArchive(tmp_path / "archive")
    windows = []
    for w in range(2):
        start = (T0 + w * 60) * NS
        lines = [Event(line_id(KEY, w * 10_000 + i), start + i * NS, start, "web-1", "sshd", 6, "/var/log/auth.log",
                       w * 10_000 + i, f"window {w} line {i}".encode(), None, KEY, "prod") for i in range(40)]
        inventory = [Event(random_id(), start + 50 * NS, start, "web-1", INVENTORY_APP, 6, "", None,
                           b'{"files": []}', None, b"", "prod") for _ in range(3)]
        key = key_for("prod", start, 60)
        stored, _ = archive_mod.save(store, key, lines + inventory, environment="prod", level=3)
        windows.append(Window(BucketName("prod", T0 + w * 60, 60), key=key, size=stored.size))
    index = SqliteIndex(tmp_path / "index", "helios-history-test")
    with index:
        c = fill(index, "prod", 0, 2**62, windows, open_sources=lambda: (store, None, lambda: None))
        found = len(index.search(Query("prod", 0, 2**62, limit=None)))
    assert (c.events_read, c.inventory_records, c.events_loaded) == (80, 6, 80)
    assert found == c.events_read
    assert c.progress()["inventory_records"] == 6


def test_a_request_store_of_an_older_helios_gains_the_count(tmp_path):
    with sqlite3.connect(tmp_path / "requests.db") as db:
        db.execute("CREATE TABLE requests (id TEXT PRIMARY KEY, environment TEXT NOT NULL, start INTEGER NOT NULL, "
                   '"end" INTEGER NOT NULL, state TEXT NOT NULL, reason TEXT, index_kind TEXT NOT NULL, '
                   "index_name TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL, started REAL, "
                   "finished REAL, expires REAL, asked INTEGER NOT NULL DEFAULT 1, attempts INTEGER NOT NULL "
                   "DEFAULT 0, owner TEXT, lease_until REAL, windows_total INTEGER NOT NULL DEFAULT 0, "
                   "windows_done INTEGER NOT NULL DEFAULT 0, events_loaded INTEGER NOT NULL DEFAULT 0, "
                   "events_read INTEGER NOT NULL DEFAULT 0, bytes_read INTEGER NOT NULL DEFAULT 0, "
                   "bytes_total INTEGER NOT NULL DEFAULT 0, warnings TEXT NOT NULL DEFAULT '[]')")
        db.execute("INSERT INTO requests (id, environment, start, \"end\", state, index_kind, index_name, created, "
                   "updated, events_read) VALUES ('r1', 'prod', 0, 60, 'ready', 'sqlite', 'helios-history-r1', 1, 1, "
                   "12)")
        db.execute("PRAGMA user_version=1")
    db.close()
    with RequestStore(tmp_path) as store:
        r = store.get("r1")
        assert (r.events_read, r.inventory_records) == (12, 0)
        assert r.to_dict()["progress"]["inventory_records"] == 0
