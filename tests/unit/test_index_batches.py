"""``helios.index.batches.gather``: what one index load takes from a queue."""

import queue

from helios.index.batches import gather


def filled(*items):
    q = queue.Queue()
    for i in items:
        q.put(i)
    return q


def test_takes_what_is_queued_until_the_sizes_reach_the_limit():
    q = filled(3, 4, 5, 6)
    assert gather(2, q, size=lambda n: n, limit=9) == [2, 3, 4]     # 2 + 3 + 4 reaches 9
    assert q.get_nowait() == 5                                      # the rest stays queued


def test_an_empty_queue_ends_it_at_once():
    assert gather(7, queue.Queue(), size=lambda n: n, limit=100) == [7]


def test_an_item_marked_last_ends_the_list_and_is_not_sized():
    q = filled(1, None, 2)
    assert gather(1, q, size=lambda n: n, limit=100, last=lambda n: n is None) == [1, 1, None]
    assert q.get_nowait() == 2
    assert gather(None, filled(1), size=lambda n: n, last=lambda n: n is None) == [None]
