"""Dedup in bounded memory (helios.live.dedup)."""

from helios.live.dedup import Dedup, is_late


def test_the_second_copy_within_the_window_is_seen():
    d = Dedup(window=10)
    assert not d.seen(b"a", now=0.0)
    assert d.seen(b"a", now=0.5)


def test_an_id_is_forgotten_after_at_most_twice_the_window():
    d = Dedup(window=10)
    d.seen(b"a", now=0.0)
    assert d.seen(b"a", now=15.0)      # in the previous generation
    assert not d.seen(b"b", now=15.0)
    assert not d.seen(b"a", now=31.0)  # two turns later: forgotten


def test_memory_is_bounded_by_max_ids():
    d = Dedup(window=1000, max_ids=100)
    for i in range(10_000):
        d.seen(i.to_bytes(4, "big"), now=1.0)
    assert len(d) <= 100
    assert d.early_turns > 0


def test_an_event_read_longer_ago_than_the_window_is_late():
    assert is_late(0, 10.0, now_ns=11 * 10**9)
    assert not is_late(5 * 10**9, 10.0, now_ns=11 * 10**9)
