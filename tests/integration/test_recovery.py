"""Incident recovery with real processes: `helios export` of a history index
as bucket files, served by a buck and loaded again by `helios rebuild`, gives
the same events byte for byte (and so does NDJSON); `helios rebuild --workers`
fills the recent index from the archive."""

from __future__ import annotations

from helios.eventform import from_json
from helios.index.base import open_index, scan
from helios.index.query import Query
from tests.helpers import ANY_PORT, buck_query
from tests.integration import historymesh
from tests.integration.historymesh import NS, OLD, iso


def test_export_then_reimport_of_a_window_yields_byte_identical_events(tmp_path, procs):
    mesh = historymesh.build(tmp_path, procs)
    cfg = str(mesh.config)
    procs("history", "serve", "-c", cfg, name="history-serve")
    window = ["--start", iso(OLD + 60), "--end", iso(OLD + 120)]
    r = mesh.run("history", "request", "-c", cfg, "--env", "prod", *window)
    assert r.returncode == 0, r.stderr
    rid = r.stdout.split()[0]
    want = sorted((e for e in mesh.old if (OLD + 60) * NS <= e.time < (OLD + 120) * NS), key=lambda e: (e.time, e.id))

    out = tmp_path / "export"
    ex = mesh.run("export", "-c", cfg, "--history", rid, "-o", "bucket", "--to", str(out))
    assert ex.returncode == 0 and f"exported {len(want):,} event(s)" in ex.stderr, ex.stderr
    # A buck serves the exported files; `helios rebuild` loads them into a fresh index.
    procs("buck", "--name", "buck-x", "--ingest", ANY_PORT, "--publish", "", "--query", ANY_PORT,
          "--data-dir", str(out), "--stats-interval", "0.2", name="buck-x")
    q = buck_query(out)
    rb = mesh.run("rebuild", "--env", "prod", *window, "--query", q, "--archive-dir", str(tmp_path / "empty-archive"),
                  "--index-dir", str(tmp_path / "reimported"), "--history-dir", str(tmp_path / "h2"), "--workers", "2")
    assert rb.returncode == 0, rb.stderr
    assert f"{len(want):,} event(s) new to the index" in rb.stderr
    index = open_index("sqlite", str(tmp_path / "reimported"))
    try:
        back = list(scan(index, Query("prod", (OLD + 60) * NS, (OLD + 120) * NS, limit=None)))
    finally:
        index.close()
    assert back == want                       # every field, message bytes included
    # NDJSON reads back to the same events too.
    nd = mesh.run("export", "-c", cfg, "--history", rid, "--format", "ndjson")
    assert [from_json(line) for line in nd.stdout.splitlines()] == want


def test_rebuild_fills_the_recent_index_from_the_archive_with_workers(tmp_path, procs):
    mesh = historymesh.build(tmp_path, procs, per_window=300)
    cfg = str(mesh.config)
    # The old windows were archived and pruned; rebuilding them puts them in the recent index.
    rb = mesh.run("rebuild", "-c", cfg, "--env", "prod", "--start", iso(OLD), "--end", iso(OLD + 180), "--workers", "2")
    assert rb.returncode == 0, rb.stderr
    assert "900 event(s) new to the index" in rb.stderr
    n = mesh.run("search", "-c", cfg, "--env", "prod", "--start", iso(OLD), "--end", iso(OLD + 180), "--count")
    assert int(n.stdout) == 900
    again = mesh.run("rebuild", "-c", cfg, "--env", "prod", "--start", iso(OLD), "--end", iso(OLD + 180))
    assert again.returncode == 0 and "0 event(s) new to the index, 900 read" in again.stderr, again.stderr
