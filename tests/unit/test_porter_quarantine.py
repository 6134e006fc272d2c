"""The porter's quarantine (helios.porter.quarantine): frames kept once, as
the bucks held them, in bucket files any Helios tool reads; counted per
environment for ``porter status`` and ``helios status``."""

import os

from helios import codec
from helios.model import random_id
from helios.porter.merge import Merger
from helios.porter.quarantine import LOG, Quarantine, problem_line, read_log, summarize
from helios.store import layout
from helios.store.layout import BucketName
from helios.store.records import read_records

NOW = 1_800_000_000 * 10**9
W = BucketName("prod", 1_800_000_000 - 1_800_000_000 % 60, 60)


def row(time=NOW, host="h"):
    return [random_id(), time, NOW, host, "a", 6, "", None, b"line", None, b""]


def frame(*rows):
    return codec.encode_rows("prod", "web-1", list(rows), NOW, NOW)


def test_a_merger_sets_aside_bad_events_and_undecodable_frames_and_keeps_the_rest():
    m = Merger("prod")
    mixed = frame(row(), row(time=2**64 - 1), row(host=7))
    m.add_frame(mixed)
    m.add_frame(b"\x01garbage")
    assert len(m) == 1 and m.events_aside == 2 and m.bad_frames == 1
    (f1, n1, why1), (f2, n2, why2) = m.set_aside
    assert f1 == mixed and n1 == 2 and why1[0].startswith("event 1 of the batch: time and received")
    assert f2 == b"\x01garbage" and n2 is None and "unknown frame flags" in why2[0]


def test_frames_are_kept_once_as_they_came_and_counted(tmp_path):
    q = Quarantine(tmp_path)
    bad = frame(row(), row(time=2**64 - 1))
    assert q.put(W, [(bad, 1, ["event 1 of the batch: time"]), (b"junk", None, ["frame truncated"])]) == 2
    assert q.put(W, [(bad, 1, ["event 1 of the batch: time"])]) == 0        # the archive pass sees it again
    assert Quarantine(tmp_path).put(W, [(bad, 1, ["again"])]) == 0          # and so does a restarted porter
    path = layout.bucket_path(tmp_path / "quarantine" / "buckets", "prod", W.start, W.width)
    assert list(read_records(path)) == [bad, b"junk"]
    s = summarize(tmp_path)["environments"]["prod"]
    assert (s["frames"], s["events"], s["undecodable_frames"], s["windows"]) == (2, 1, 1, 1)
    assert "1 event(s) and 1 undecodable frame(s)" in problem_line(summarize(tmp_path))


def test_an_empty_quarantine_says_nothing_and_a_torn_log_line_is_skipped(tmp_path):
    assert problem_line(summarize(tmp_path)) is None
    q = Quarantine(tmp_path)
    q.put(W, [(b"junk", None, ["x"])])
    with open(tmp_path / "quarantine" / LOG, "a") as f:
        f.write('{"window": "prod/2027')  # a crash mid-line
    assert len(read_log(tmp_path / "quarantine")) == 1
    assert os.path.exists(tmp_path / "quarantine" / "buckets" / "prod")


def test_what_was_set_aside_reads_back_event_by_event_with_why(tmp_path):
    from helios.porter.quarantine import entries

    bad = row(time=2**64 - 1)
    Quarantine(tmp_path).put(W, [(frame(row(), bad), 1, ["x"]), (b"junk", None, ["y"])])
    (event, junk) = list(entries(tmp_path))
    assert event["window"] == layout.bucket_id(W) and event["event"] == 1 and event["time"] == 2**64 - 1
    assert event["id"] == bad[0].hex() and event["message"] == "line" and "int64" in event["problem"]
    assert junk == {"window": layout.bucket_id(W), "frame_bytes": 4, "problem": junk["problem"]}


def test_a_quarantine_moved_away_by_an_operator_starts_anew(tmp_path):
    q = Quarantine(tmp_path)
    junk = (b"junk", None, ["y"])
    assert q.put(W, [junk]) == 1
    (tmp_path / "quarantine").rename(tmp_path / "quarantine-looked-into")
    assert problem_line(summarize(tmp_path)) is None
    assert q.put(W, [junk]) == 1  # the same frame again, in a new quarantine: kept, not taken as known
    assert summarize(tmp_path)["environments"]["prod"]["frames"] == 1


def _put_all(state_dir, frames):
    q = Quarantine(state_dir)
    return sum(q.put(W, [(f, 1, ["x"])]) for f in frames)


def test_two_porters_on_one_state_directory_keep_each_frame_once(tmp_path):
    """Two processes (a porter's index job and another's archive job of one
    window) set aside the same frames at once: each is kept once, every
    record whole."""
    import multiprocessing

    frames = [frame(row(), row(time=2**64 - 1)) for _ in range(40)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        added = pool.starmap(_put_all, [(str(tmp_path), frames), (str(tmp_path), frames[::-1])])
    assert sum(added) == 40
    path = layout.bucket_path(tmp_path / "quarantine" / "buckets", "prod", W.start, W.width)
    assert sorted(read_records(path)) == sorted(frames)
    assert len(read_log(tmp_path / "quarantine")) == 40
