"""Positions are saved in a thread of their own (``positions.Saver``): on
SIGTERM the tailer still leaves the final positions on disk before it exits,
so a restart neither reads again nor skips anything."""

from __future__ import annotations

import json

from tests.helpers import buck_events, poll_until


def line(i: int, f: int = 0) -> bytes:
    return b"Nov 23 10:00:00 web-1 app[1]: file %02d line %05d\n" % (f, i)


def test_sigterm_leaves_the_final_positions_on_disk(tmp_path, buck, procs):
    logs = tmp_path / "logs"
    logs.mkdir()
    files = [logs / f"f{i}.log" for i in range(20)]
    for i, f in enumerate(files):
        f.write_bytes(line(0, i))   # (each its own first line: contents told apart)
    state = tmp_path / "state"
    b = [buck("a"), buck("b")]
    # A save only when something new appears, at start and at exit (a minute apart otherwise).
    args = ["tailer", "--path", str(logs / "*.log"), "--env", "prod", "--start-at", "beginning",
            "--state-dir", str(state), "--positions-interval", "60", "--rescan-interval", "0.2",
            "--live-wait", "0.2", *[x for _, ep, _ in b for x in ("--buck", ep)]]
    t = procs(*args)

    def messages():
        return {e.message for _, _, data in b for e in buck_events(data)[0]}
    poll_until(lambda: (len(messages()) >= 1 and (state / "positions.json").exists()) or not t.alive(), timeout=60,
               what="the first lines and a save")
    for k in range(1, 200):
        for i in range(k % 3, len(files), 3):
            with open(files[i], "ab") as out:
                out.write(line(k, i))
    sizes = {str(f): f.stat().st_size for f in files}
    want = {line(k, i)[:-1] for k in range(200) for i in range(len(files)) if k == 0 or i % 3 == k % 3}
    poll_until(lambda: messages() >= want, timeout=60, what="every line in the bucks")
    assert t.stop() == 0
    saved = json.loads((state / "positions.json").read_bytes())
    assert {p["path"]: p["offset"] for p in saved["files"].values()} == sizes

    # A restart reads nothing again: no line arrives a second time.
    before = sum(len(buck_events(data)[0]) for _, _, data in b)
    t2 = procs(*args)
    with open(files[0], "ab") as out:
        out.write(line(999))
    poll_until(lambda: line(999)[:-1] in messages(), timeout=60, what="a line after the restart")
    assert t2.stop() == 0
    after = [e.message for _, _, data in b for e in buck_events(data)[0]]
    assert 1 <= len(after) - before <= 2   # only the new line (in one or both bucks)
