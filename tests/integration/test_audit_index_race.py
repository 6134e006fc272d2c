"""`helios audit --index` while the mesh works, made deterministic: the
porter is run at one known point of the audit, after the audit has read
the bucks and before it reads the index. Then a buck's open window has
grown and the porter has loaded the new events early; the audit must not
call them extra (it asks the bucks again once the index is read:
``helios.indexaudit.bucks.catch_up``). Without that second ask this test
fails with those 300 events EXTRA (tried on purpose: see the commit)."""

from __future__ import annotations

import time

from helios.index.base import open_index
from helios.indexaudit import audit_index, render
from helios.store import layout
from helios.store.records import RecordWriter
from tests.integration.test_audit_index import KEEP
from tests.integration.test_porter import (
    YESTERDAY,
    client_events,
    frames_of,
    index_events,
    plant,
    run_once,
    started_bucks_over,
)


def test_events_the_porter_loads_from_an_open_window_while_the_audit_reads_are_not_extra(tmp_path, procs):
    a = tmp_path / "buck-a"
    closed = client_events(600, YESTERDAY)
    plant(a, "prod", YESTERDAY, frames_of(closed))
    # A window open for half an hour yet (the buck calls a window open until its end).
    soon = (int(time.time()) // 60 + 30) * 60
    first, meanwhile = client_events(300, soon), client_events(200, soon)
    meanwhile = [e._replace(received=e.received + 10**6) for e in meanwhile]
    opened = client_events(100, soon + 60)                  # a window that opens while the audit reads
    plant(a, "prod", soon, frames_of(first))
    qs = started_bucks_over(tmp_path, procs, "a")
    assert run_once(tmp_path, qs, *KEEP).returncode == 0
    indexed = {e.id for e in index_events(tmp_path)}
    assert {e.id for e in closed + first} <= indexed       # the open window loaded early, as the porter does

    index = open_index("sqlite", str(tmp_path / "index"))
    read_keys = index.keys
    held_at = []

    def the_porter_works_meanwhile(environment, day):
        # The index's first page is asked for once the bucks were read: the open window grows, the porter
        # loads it, then the index is read.
        if not held_at:
            held_at.append(time.time())
            with RecordWriter(layout.bucket_path(a / "buckets", "prod", soon, 60)) as w:
                for frame in frames_of(meanwhile):
                    w.append(frame)
            plant(a, "prod", soon + 60, frames_of(opened))
            assert run_once(tmp_path, qs, *KEEP).returncode == 0
            assert {e.id for e in meanwhile + opened} <= {e.id for e in index_events(tmp_path)}
        yield from read_keys(environment, day)

    index.keys = the_porter_works_meanwhile
    try:
        report = audit_index(index, tmp_path / "porter", qs, recent_days=30, progress=None)
    finally:
        index.close()
    text = render(report)
    assert held_at, "the porter was not run during the audit"
    assert report.ok and "No difference" in text, text
    prod = report.environments["prod"]
    assert prod.windows_checked == 1 and prod.events_checked == 600, text
    assert prod.extra_count == 0 and prod.extras_unchecked == 0, text
    assert prod.index_events == 600 + 300 + 200 + 100, text
    assert any("(open)" in w for w in prod.not_loaded), text
