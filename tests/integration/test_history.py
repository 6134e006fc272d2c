"""History on demand with real processes: bucks, the porter, `helios history
serve`, and the CLI (request, status, list, search); bad requests; expiry.
An archive that is down: test_history_archive_down.py; export and rebuild:
test_recovery.py."""

from __future__ import annotations

import json

from helios.eventform import from_json
from tests.helpers import poll_until
from tests.integration import historymesh
from tests.integration.historymesh import NS, OLD, iso


def with_tag(events, tag: str):
    return sorted((e for e in events if f"incident={tag}".encode() in e.message), key=lambda e: (e.time, e.id))


def lines_of(events) -> list[str]:
    from helios.eventform import as_line

    return [as_line(e).decode() for e in events]


def test_events_older_than_the_recent_index_are_found_only_after_a_history_request(tmp_path, procs):
    mesh = historymesh.build(tmp_path, procs)
    cfg = str(mesh.config)
    rng = ["--start", iso(OLD), "--end", iso(OLD + 180)]
    before = mesh.run("search", "-c", cfg, "--env", "prod", *rng, "incident=old1")
    assert before.returncode == 1 and before.stdout == ""
    assert "helios history request --env prod" in before.stderr, before.stderr
    # Yesterday's events are in the recent index: the porter ran.
    recent = mesh.run("search", "-c", cfg, "--env", "prod", "--start", "-2d", "--count", "incident=new0")
    assert int(recent.stdout) == len(with_tag(mesh.recent, "new0")) > 0

    procs("history", "serve", "-c", cfg, name="history-serve")
    asked = mesh.run("history", "request", "-c", cfg, "--env", "prod", *rng)
    assert asked.returncode == 0, asked.stderr
    rid = asked.stdout.splitlines()[0]
    assert len(rid) == 12 and "ready:" in asked.stderr and f"helios search --history {rid}" in asked.stderr

    found = mesh.run("search", "-c", cfg, "--history", rid, "incident=old1", "--all")
    assert found.returncode == 0, found.stderr
    assert found.stdout.splitlines(keepends=True) == lines_of(with_tag(mesh.old, "old1"))
    # Every old event, once, in time order.
    everything = mesh.run("export", "-c", cfg, "--history", rid)
    got = [from_json(line) for line in everything.stdout.splitlines()]
    assert got == sorted((e for e in mesh.old if OLD * NS <= e.time < (OLD + 180) * NS), key=lambda e: (e.time, e.id))

    status = json.loads(mesh.run("history", "status", "-c", cfg, rid, "--json").stdout)
    p = status["progress"]
    assert status["state"] == "ready" and status["index_name"] == f"helios-history-{rid}"
    assert p["windows_done"] == p["windows_total"] >= 3 and p["events_loaded"] == len(got)
    assert p["bytes_read"] == p["bytes_total"] > 0 and p["fraction"] == 1.0
    # The same range asked again shares the build.
    again = mesh.run("history", "request", "-c", cfg, "--env", "prod", *rng, "--no-wait")
    assert again.stdout.strip() == rid and "asked for before" in again.stderr
    listed = mesh.run("history", "list", "-c", cfg)
    assert rid in listed.stdout and "ready" in listed.stdout
    # Dropped: the index is gone at once, and searching it says why.
    assert mesh.run("history", "drop", "-c", cfg, rid).returncode == 0
    assert not (tmp_path / "history" / "indexes" / f"helios-history-{rid}").exists()
    gone = mesh.run("search", "-c", cfg, "--history", rid, "incident=old1")
    assert gone.returncode == 1 and f"history request {rid} is expired: dropped" in gone.stderr, gone.stderr


def test_bad_ranges_and_unknown_environments_are_refused_with_a_reason(tmp_path, procs):
    mesh = historymesh.build(tmp_path, procs, per_window=20)
    cfg = str(mesh.config)
    for args, words in [
        (["--env", "prod", "--start", iso(OLD), "--end", iso(OLD - 60)], "ends before it starts"),
        (["--env", "prod", "--start", iso(OLD), "--end", iso(OLD + 30 * 86400)], "more than one request may"),
        (["--env", "nowhere", "--start", iso(OLD), "--end", iso(OLD + 60)], "unknown environment 'nowhere'"),
        (["--env", "prod", "--start", "yesterday-ish", "--end", "now"], "is not a time"),
    ]:
        r = mesh.run("history", "request", "-c", cfg, *args, "--no-wait")
        assert r.returncode == 2 and words in r.stderr, (args, r.stderr)


def test_expiry_removes_the_history_index(tmp_path, procs):
    mesh = historymesh.build(tmp_path, procs, per_window=50)
    cfg = str(mesh.config)
    procs("history", "serve", "-c", cfg, "--expiry", "2", name="history-serve")
    r = mesh.run("history", "request", "-c", cfg, "--env", "prod", "--start", iso(OLD), "--end", iso(OLD + 60))
    assert r.returncode == 0, r.stderr
    rid = r.stdout.split()[0]
    index_dir = tmp_path / "history" / "indexes" / f"helios-history-{rid}"
    assert index_dir.is_dir() and any(index_dir.rglob("*.db"))
    poll_until(lambda: not index_dir.exists(), timeout=15, what="the expired index to be deleted")
    st = json.loads(mesh.run("history", "status", "-c", cfg, rid, "--json").stdout)
    assert st["state"] == "expired" and "expired after 2 s" in st["reason"]
    gone = mesh.run("search", "-c", cfg, "--history", rid, "incident")
    assert gone.returncode == 1 and f"history request {rid} is expired" in gone.stderr
    # Asked for again, it is built again.
    again = mesh.run("history", "request", "-c", cfg, "--env", "prod", "--start", iso(OLD), "--end", iso(OLD + 60))
    assert again.returncode == 0 and again.stdout.split()[0] == rid, again.stderr
