"""``helios.porter.early`` and ``Merger(taken=...)``: where a closed
window's load goes on from what the early loads took."""

from __future__ import annotations

import os
import time

from helios import codec
from helios.model import Event
from helios.porter.early import Early, Mark
from helios.porter.merge import Merger
from helios.query.protocol import BucketEntry


def entry(id_: str = "prod/w", size: int = 1000) -> BucketEntry:
    return BucketEntry(id_, "prod", 0, 60, size, "open")


def frame(n: int) -> bytes:
    now = time.time_ns()
    return codec.encode_events("prod", "h", [Event(os.urandom(16), now + i, now, "h", "a", 6, "", None, b"x", None,
                                                   b"", "prod") for i in range(n)])


def test_the_window_load_goes_on_from_the_offset_only_on_the_file_it_was_loaded_from():
    mark = Mark("prod/w", 600, b"d" * 16, 100)
    early = Early(offsets={"tcp://a:1": mark})
    assert early.resume_at("tcp://a:1", entry(size=1000)) == mark
    assert mark.check_at == 600 - 8 - 100                            # the last record taken is checked first
    assert early.resume_at("tcp://a:1", entry(size=600)) == mark     # nothing new: only that check
    assert early.resume_at("tcp://a:1", entry(size=599)) is None     # shorter: replaced, fetched whole
    assert early.resume_at("tcp://a:1", entry("prod/other")) is None  # another file
    assert early.resume_at("tcp://b:1", entry()) is None              # a buck not loaded from early


def test_left_out_adds_up_counts_and_widens_the_span():
    early = Early()
    early.add_left_out(None)
    early.add_left_out((0, 5, 5))
    assert early.left_out is None
    early.add_left_out((2, 10, 20))
    early.add_left_out((1, 5, 15))
    assert early.left_out == (3, 5, 20)


def test_frames_taken_early_are_skipped_undecoded_and_the_rest_merged():
    a, b, c = frame(3), frame(4), frame(5)
    first = Merger("prod")
    for f in (a, b):
        first.add_frame(f)
    rest = Merger("prod", taken=first.digests)
    for f in (a, b, c, c):
        rest.add_frame(f)
    assert len(rest) == 5 and rest.frames == 1 and rest.frame_copies == 3
    assert rest.digests.isdisjoint(first.digests)
    assert len(first) + len(rest) == 12
