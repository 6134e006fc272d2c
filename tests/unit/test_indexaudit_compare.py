"""The index audit's comparison (``helios.indexaudit.compare.Scratch``) on
its own: ids the bucks hold against ids the index holds, fed by hand."""

from __future__ import annotations

from helios.indexaudit.compare import Scratch

NS = 1_000_000_000
T0 = 1_700_000_040          # a window of 60 s starts here
CUTOFF = (T0 - 86400) * NS  # the first time the index keeps


def ev(n: int, t_s: int = T0) -> tuple[bytes, int]:
    return (b"id-%04d" % n, t_s * NS + n)


def page(*events, received_s: int = T0):
    return [(i, t, received_s * NS) for i, t in events]


def scratch(loaded=(), not_loaded=(), index=()) -> Scratch:
    s = Scratch()
    with s.batch():
        for w, rows in loaded:
            s.loaded(rows, w)
        for w, rows in not_loaded:
            s.not_loaded(rows, w)
        s.indexed(index)
    return s


def test_what_a_loaded_copy_holds_and_the_index_lacks_is_missing_per_window_in_time_order():
    a, b = [ev(i) for i in range(5)], [ev(i, T0 + 60) for i in range(5, 9)]
    s = scratch(loaded=[(0, a), (1, b)], index=page(*a[:2], a[3], *b[1:]))
    assert s.looked_for(CUTOFF) == 9 and s.index_events() == 6
    assert s.missing(CUTOFF) == [(0, 2, [a[2][0], a[4][0]]), (1, 1, [b[0][0]])]
    assert s.missing(CUTOFF, examples=1) == [(0, 2, [a[2][0]]), (1, 1, [b[0][0]])]


def test_an_index_event_no_buck_holds_is_extra_by_the_window_of_its_receive_time():
    a = [ev(i) for i in range(3)]
    forged = [(b"forged-1", T0 * NS, (T0 + 61) * NS), (b"forged-2", T0 * NS, (T0 + 200) * NS)]
    s = scratch(loaded=[(0, a)], index=page(*a) + forged)
    assert s.missing(CUTOFF) == []
    assert s.extras(0, 2**63 - 1, 60) == [(T0 + 60, 1, [(T0 * NS, b"forged-1")]),
                                          (T0 + 180, 1, [(T0 * NS, b"forged-2")])]
    # Outside the range the bucks can vouch for: not checked, counted.
    assert s.extras((T0 + 120) * NS, 2**63 - 1, 60) == [(T0 + 180, 1, [(T0 * NS, b"forged-2")])]
    assert s.unchecked((T0 + 120) * NS) == 4


def test_a_copy_not_loaded_is_neither_missing_nor_extra():
    a, late = [ev(i) for i in range(3)], [ev(9, T0 + 60)]
    s = scratch(loaded=[(0, a)], not_loaded=[(None, late)], index=page(*a, *late))
    assert s.missing(CUTOFF) == [] and s.extras(0, 2**63 - 1, 60) == []
    assert s.looked_for(CUTOFF) == 3


def test_an_event_a_window_not_yet_loaded_also_holds_is_pending_not_missing():
    # The porter's ledger may have given it to that window (helios.porter.seen): looked for once it is loaded.
    a = [ev(i) for i in range(4)]
    s = scratch(loaded=[(0, a)], not_loaded=[(None, a[:2])], index=page(*a[2:]))
    assert s.pending(CUTOFF) == 2 and s.looked_for(CUTOFF) == 2 and s.missing(CUTOFF) == []
    # A copy not loaded of the SAME window (another buck's) does not make it pending: still missing.
    s = scratch(loaded=[(0, a)], not_loaded=[(0, a[:2])], index=page(*a[2:]))
    assert s.pending(CUTOFF) == 0 and s.missing(CUTOFF) == [(0, 2, [a[0][0], a[1][0]])]


def test_events_older_than_the_index_keeps_are_counted_not_looked_for():
    old = [ev(i, T0 - 90 * 86400) for i in range(3)]
    s = scratch(loaded=[(0, old + [ev(7)])], index=page(ev(7)))
    assert s.too_old(CUTOFF) == 3 and s.looked_for(CUTOFF) == 1 and s.missing(CUTOFF) == []


def test_an_id_held_twice_in_the_index_is_a_duplicate_with_its_first_time():
    a = [ev(i) for i in range(3)]
    twin = (a[1][0], a[1][1] + 86400 * NS, T0 * NS)
    s = scratch(loaded=[(0, a)], index=page(*a) + [twin])
    assert s.duplicates() == (1, [(a[1][0], a[1][1])])
    assert s.index_events() == 3


def test_what_the_index_took_from_an_open_window_after_the_bucks_were_read_is_extra_until_they_are_read_again():
    # Why the run asks the bucks again after reading the index (helios.indexaudit.bucks.catch_up): the
    # porter loads open windows early, so the index may hold events the first read of the bucks did not.
    first = [ev(i) for i in range(3)]
    meanwhile = [ev(i) for i in range(3, 6)]
    s = scratch(not_loaded=[(None, first)], index=page(*first, *meanwhile))
    assert s.extras(0, 2**63 - 1, 60) == [(T0, 3, [(t, i) for i, t in meanwhile])]
    s.not_loaded(first + meanwhile, None)                 # the second read of the open window
    assert s.extras(0, 2**63 - 1, 60) == []


def test_an_event_the_index_holds_at_another_time_than_the_bucks_is_moved():
    a = [ev(i) for i in range(4)]
    shifted = (a[2][0], a[2][1] - 3600 * NS, T0 * NS)            # hidden an hour earlier
    s = scratch(loaded=[(0, a)], index=page(*a[:2], a[3]) + [shifted])
    assert s.missing(CUTOFF) == [] and s.moved(CUTOFF) == [(0, 1, [(a[2][0], a[2][1], shifted[1])])]
    # Twice in the index (one copy at its time): a duplicate, not also a move.
    s = scratch(loaded=[(0, a)], index=page(*a) + [shifted])
    assert s.moved(CUTOFF) == [] and s.duplicates()[0] == 1


def test_copies_on_the_bucks_that_differ_in_time_are_counted_and_not_called_moved():
    a = [ev(i) for i in range(3)]
    other = [(a[0][0], a[0][1] + NS)]                           # another buck's copy, altered
    s = scratch(loaded=[(0, a), (0, other)], index=page(*other, *a[1:]))
    assert s.disagreeing(CUTOFF) == 1 and s.moved(CUTOFF) == [] and s.missing(CUTOFF) == []


def test_content_differing_from_every_loaded_copy_is_changed_and_copies_that_disagree_are_set_apart():
    a = [ev(i) for i in range(6)]
    d = [b"d%d" % i for i in range(6)]
    s = Scratch()
    with s.batch():
        s.loaded(a, 0, d)
        s.loaded(a[:3], 0, [d[0], b"forged", d[2]])         # another copy: event 1 differs between the bucks
        s.indexed([(i, t, T0 * NS, x) for (i, t), x in zip(a, [d[0], b"other", b"other", d[3], b"other", d[5]])])
    assert s.content_checked(CUTOFF) == 5 and s.content_disagreeing(CUTOFF) == 1
    assert s.changed(CUTOFF) == [(0, 2, [(a[2][0], a[2][1], a[2][1]), (a[4][0], a[4][1], a[4][1])])]
    assert s.moved(CUTOFF) == [] and s.missing(CUTOFF) == []


def test_without_digests_nothing_is_compared_for_content():
    a = [ev(i) for i in range(3)]
    s = scratch(loaded=[(0, a)], index=page(*a))
    assert s.content_checked(CUTOFF) == 0 and s.changed(CUTOFF) == []
    s = Scratch()
    with s.batch():
        s.loaded(a, 0, [b"x"] * 3)
        s.indexed(page(*a))                                 # ids only: the index's side gave no content
    assert s.content_checked(CUTOFF) == 0 and s.changed(CUTOFF) == []
