"""The porter's count of events left out of the index as too old: kept in
its state with each window's index mark, summed per environment, shown by
``helios porter status``."""

from __future__ import annotations

from helios.porter import report
from helios.porter.state import State
from helios.store.layout import BucketName

NS = 1_000_000_000


def test_left_out_events_add_up_per_environment_with_their_oldest_and_newest_times(tmp_path):
    st = State(tmp_path / "porter.db")
    st.mark_indexed(BucketName("prod", 960, 60), 5, ["a"], now=2000.0, left_out=(300, 10 * NS, 20 * NS))
    st.mark_indexed(BucketName("prod", 1020, 60), 5, ["a"], now=2100.0, left_out=(7, 5 * NS, 15 * NS))
    st.mark_indexed(BucketName("prod", 1080, 60), 5, ["a"], now=2200.0)           # nothing left out
    st.mark_indexed(BucketName("test", 960, 60), 5, ["a"], now=2000.0, left_out=(0, 0, 0))
    assert st.left_out() == {"prod": {"events": 307, "windows": 2, "oldest": 5 * NS, "newest": 20 * NS,
                                      "last_at": 2100.0}}
    st.close()
    assert State(tmp_path / "porter.db").left_out()["prod"]["events"] == 307   # durable


def test_porter_status_shows_the_events_left_out_and_says_nothing_when_there_are_none(tmp_path):
    st = State(tmp_path / "porter.db")
    st.mark_indexed(BucketName("prod", 960, 60), 5, ["a"], now=2000.0, left_out=(300, 10 * NS, 20 * NS))
    st.mark_indexed(BucketName("test", 960, 60), 5, ["a"], now=2000.0)
    envs = report.summarize(None, st.windows(), 3000.0, grace=1, archive_age=10, prune_age=10,
                            left_out=st.left_out())
    assert envs["prod"]["too_old"]["events"] == 300 and "too_old" not in envs["test"]
    text = report.render({"environments": envs})
    assert "300 events left out of the index in 1 windows" in text
    assert text.count("too old") == 1
