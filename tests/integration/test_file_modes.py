"""Files that hold events or state are created 0640 whatever the umask
(issue 17): bucket, spool and index files, positions, stats; and `helios
keygen --archive` writes the archive's public key 0600."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helios.archive.store import FolderArchive
from helios.history.requests import RequestStore
from helios.index import open_index
from helios.model import Event, random_id
from helios.porter.state import State
from tests.helpers import ROOT, buck_events, poll_until


@pytest.fixture
def umask_000():
    """Processes started (and files made) in the test run with umask 000."""
    old = os.umask(0)
    yield
    os.umask(old)


def mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_a_buck_and_a_tailer_started_with_umask_000_make_their_files_0640(umask_000, buck, procs, tmp_path):
    _, ingest, data = buck("a")
    log = tmp_path / "app.log"
    log.write_bytes(b"".join(b"<14>Nov 23 10:00:00 web-1 app[1]: line %d\n" % i for i in range(10)))
    state = tmp_path / "tailer-state"
    procs("tailer", "-p", str(log), "-b", ingest, "--copies", "1", "--start-at", "beginning",
          "--state-dir", str(state), "--positions-interval", "0.1", name="tailer")
    poll_until(lambda: len(buck_events(data)[0]) == 10, timeout=20, what="10 lines stored")
    poll_until(lambda: (state / "stats.json").exists() and any("position" in p.name for p in files_under(state)),
               timeout=20, what="the tailer's positions and stats")
    made = files_under(data) + files_under(state)
    kinds = {p.suffix or p.name for p in made}
    assert any(p.parent.parent.name == "buckets" or "buckets" in p.parts for p in made), made
    assert any("spool" in p.parts for p in made), made
    wrong = {str(p): mode(p) for p in made if stat.S_IMODE(p.stat().st_mode) != 0o640}
    assert not wrong, (wrong, kinds)
    dirs = [data, state, *(p for p in (*data.rglob("*"), *state.rglob("*")) if p.is_dir())]
    wrong = {str(p): mode(p) for p in dirs if stat.S_IMODE(p.stat().st_mode) != 0o750}
    assert not wrong, wrong


def test_index_state_and_archive_files_made_with_umask_000_are_0640(umask_000, tmp_path):
    t = time.time_ns()
    with open_index("sqlite", str(tmp_path / "index"), name="recent") as index:
        index.load("prod", [Event(random_id(), t, t, "h", "a", 6, "", None, b"m", None)])
    State(tmp_path / "porter" / "state.db").close()
    RequestStore(tmp_path / "history").close()
    FolderArchive(tmp_path / "archive").put("prod/2026/x.hla", b"object")
    made = [p for p in files_under(tmp_path) if p.name != "index.json"]
    assert any(p.suffix == ".db" for p in made)
    wrong = {str(p): mode(p) for p in made if stat.S_IMODE(p.stat().st_mode) != 0o640}
    assert not wrong, wrong
    dirs = [p for p in tmp_path.rglob("*") if p.is_dir()]
    wrong = {str(p): mode(p) for p in dirs if stat.S_IMODE(p.stat().st_mode) != 0o750}
    assert not wrong, wrong


def test_keygen_archive_writes_the_public_key_0600_even_with_umask_000(umask_000, tmp_path):
    r = subprocess.run([sys.executable, "-m", "helios", "keygen", "--archive", "archive", "--dir", str(tmp_path)],
                       capture_output=True, text=True, cwd=ROOT, timeout=30, check=False)
    assert r.returncode == 0, r.stderr
    assert mode(tmp_path / "archive.key") == "0o600"
    assert mode(tmp_path / "private" / "archive.key_secret") == "0o600"
