"""The first path: lines appended to a log file reach the bucket files of two bucks."""

import json
import os
import signal

from helios.model import line_id
from helios.tail.files import FollowedFile
from tests.helpers import buck_events, poll_until


def append(path, lines):
    with open(path, "ab") as f:
        f.write(b"".join(lines))


def numbered(start, count):
    return [b"Nov 23 10:00:%02d web-1 app[42]: line %08d payload\n" % (i % 60, i) for i in range(start, start + count)]


def ids_in(data_dir):
    events, clean = buck_events(data_dir)
    return {e.id for e in events}, events, clean


def tailer_args(log, *endpoints, extra=()):
    args = ["tailer", "--path", str(log), "--env", "prod", "--start-at", "beginning",
            "--state-dir", str(log.parent / "tailer-state")]
    for ep in endpoints:
        args += ["--buck", ep]
    return [*args, *extra]


def expected_ids(log, lines):
    f = FollowedFile.open(str(log))
    key = f.key
    f.close()
    ids, offset = [], 0
    for ln in lines:
        ids.append(line_id(key, offset))
        offset += len(ln)
    return ids


def two_bucks_and_a_tailer(tmp_path, procs, buck):
    """Two bucks and a tailer following a new, empty app.log."""
    proc_a, ep_a, data_a = buck("a")
    proc_b, ep_b, data_b = buck("b")
    log = tmp_path / "app.log"
    log.write_bytes(b"")
    procs(*tailer_args(log, ep_a, ep_b))
    return log, (proc_a, data_a), (proc_b, data_b)


def test_ten_thousand_lines_reach_both_bucks_whole_and_exactly_once(tmp_path, procs, buck):
    log, (_, data_a), (_, data_b) = two_bucks_and_a_tailer(tmp_path, procs, buck)
    lines = numbered(0, 10_000)
    for i in range(0, len(lines), 500):  # appended while the tailer runs
        append(log, lines[i:i + 500])
    want = set(expected_ids(log, lines))

    poll_until(lambda: ids_in(data_a)[0] >= want and ids_in(data_b)[0] >= want, timeout=30,
               what="every line in both bucks")
    for data in (data_a, data_b):
        ids, events, clean = ids_in(data)
        assert clean, f"{data} holds a torn or corrupt record"
        assert ids == want
        assert len(events) == len(want), "a buck holds a line twice"
        by_id = {e.id: e for e in events}
        for line, i in zip(lines, expected_ids(log, lines)):
            assert by_id[i].message == line.rstrip(b"\n")
            assert by_id[i].environment == "prod" and by_id[i].host == "web-1" and by_id[i].app == "app"


def test_ingest_goes_on_into_one_buck_and_resumes_in_a_restarted_one(tmp_path, procs, buck):
    log, (_, data_a), (proc_b, data_b) = two_bucks_and_a_tailer(tmp_path, procs, buck)
    first = numbered(0, 200)
    append(log, first)
    want1 = set(expected_ids(log, first))
    poll_until(lambda: ids_in(data_b)[0] >= want1, what="first lines in buck b")

    assert proc_b.stop() == 0
    second = numbered(200, 200)
    append(log, second)
    want2 = set(expected_ids(log, first + second)) - want1
    poll_until(lambda: ids_in(data_a)[0] >= want1 | want2, what="lines in buck a while b is down")

    proc_b.start()
    third = numbered(400, 200)

    def b_receives_again():
        append(log, numbered(10_000, 1))  # keep lines flowing until b is chosen again
        return ids_in(data_b)[0] - want1 - want2

    poll_until(b_receives_again, timeout=20, interval=0.2, what="buck b to receive again after its restart")
    append(log, third)
    want3 = set(expected_ids(log, first + second + third)) - want1 - want2
    poll_until(lambda: ids_in(data_a)[0] | ids_in(data_b)[0] >= want3, what="third lines")


def test_buck_and_tailer_exit_cleanly_on_sigterm(tmp_path, procs, buck):
    proc_a, ep_a, data_a = buck("a")
    log = tmp_path / "app.log"
    log.write_bytes(b"")
    tail = procs(*tailer_args(log, ep_a, extra=["--copies", "1"]))
    append(log, numbered(0, 50))
    poll_until(lambda: len(ids_in(data_a)[0]) == 50, what="50 lines in the buck")
    assert tail.stop(signal.SIGTERM) == 0
    assert proc_a.stop(signal.SIGTERM) == 0
    stats = json.loads((data_a / "stats.json").read_text())
    # The buck counts the tailer's inventory records too.
    assert stats["events"] == len(buck_events(data_a, inventory=True)[0]) >= 50 and stats["bad_frames"] == {}


def test_a_line_without_time_keeps_its_receive_time_and_is_not_dropped(tmp_path, procs, buck):
    _, ep_a, data_a = buck("a")
    log = tmp_path / "odd.log"
    log.write_bytes(b"")
    procs(*tailer_args(log, ep_a, extra=["--copies", "1"]))
    before = __import__("time").time_ns()
    append(log, [b"no timestamp here at all\n", b"\xff\xfe binary \x00 junk\n", b"\n"])
    events = poll_until(lambda: len(ids_in(data_a)[1]) == 3 and ids_in(data_a)[1], what="3 events")
    assert sorted(e.message for e in events) == sorted([b"no timestamp here at all", b"\xff\xfe binary \x00 junk", b""])
    for e in events:
        assert e.time >= before and e.time == e.received
        assert e.host == os.uname().nodename
