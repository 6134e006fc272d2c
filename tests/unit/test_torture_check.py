"""The fault harness's judge (``tests.torture._check``) on made-up exports:
it must see a lost line, a line twice, compressed bytes read as text, an
unmarked last piece, and an audit that says "no gaps" over a loss."""

from __future__ import annotations

from helios.model import Event
from tests import torture


def written(lines=6, big=(), gone=None):
    """Two segments: 0..2 and 3..lines-1; the second left the disk at ``gone``."""
    return {"lines": lines, "big": list(big),
            "segments": {"1": {"first": 0, "last": 2, "gone": None, "how": None, "names": ["/l/app.log"]},
                         "2": {"first": 3, "last": lines - 1, "gone": gone, "how": gone and "deleted",
                               "names": ["/l/app.log", "/l/app.log.1"]}}}


def ev(message: bytes, i=0, fields=None) -> Event:
    return Event(id=bytes([i]) * 16, time=0, received=0, environment="torture", host="h", app="a", severity=None,
                 source="app.log", offset=i, message=message, fields=fields)


def line(n: int, seg: int = 1, i=None) -> Event:
    return ev(b"2026-12-06T00:00:00Z torture app[7]: line %08d seg %04d xx" % (n, seg), n if i is None else i)


def judge(events, w=None, down=(), audit_rc=0, audit_text="No gaps", held=None, index_audit_rc=None):
    res = torture.Result(1, "mixed", audit_rc=audit_rc, index_audit_rc=index_audit_rc)
    torture._check(res, {}, w or written(), list(down), events, audit_text, held)
    return res


def test_every_line_once_and_a_clean_audit_passes():
    res = judge([line(n) for n in range(6)])
    assert res.ok, res.line()


def test_a_missing_line_fails_and_an_audit_that_says_no_gaps_is_caught():
    res = judge([line(n) for n in range(6) if n != 4])
    assert (res.lost, res.first_lost, res.audit_agrees) == (1, [4], False)
    assert not res.ok
    assert judge([line(n) for n in range(6) if n != 4], audit_rc=1,
                 audit_text="h /l/app.log.1 [ab]: 1 GAP(S)").audit_agrees


def test_a_line_under_two_ids_is_a_duplicate():
    res = judge([line(n) for n in range(6)] + [line(2, i=99)])
    assert (res.duplicated, res.first_duplicated, res.ok) == (1, [2], False)


def test_compressed_bytes_read_as_text_are_garbage():
    res = judge([line(n) for n in range(6)] + [ev(b"\x1f\x8b\x08\x00binary", 50)])
    assert (res.garbage, res.ok) == (1, False)


def test_a_big_line_needs_its_last_piece_marked():
    pieces = [line(n) for n in range(6)] + [ev(b"yyyy end %08d" % 1, 60, {"split": 1})]
    res = judge(pieces, written(big=[1]))
    assert (res.unmarked_pieces, res.lost, res.ok) == (1, 0, False)
    pieces[-1] = ev(b"yyyy end %08d" % 1, 60, {"split": 1, "last": True})
    assert judge(pieces, written(big=[1])).ok
    assert judge(pieces[:-1], written(big=[1])).lost == 1


def test_a_file_deleted_while_the_tailer_was_down_is_a_loss_by_design_the_audit_must_name():
    w = written(gone=100.0)
    events = [line(n) for n in range(6) if n != 5]          # line 5 (segment 2) went with its file
    res = judge(events, w, down=[[99.0, 104.0]])
    assert (res.lost, res.lost_by_design, res.audit_must_fail, res.audit_agrees) == (0, 1, True, False)
    assert judge(events, w, down=[[99.0, 104.0]], audit_rc=1,
                 audit_text="h /l/app.log.1 [ab]: deleted before its end").ok
    # The audit must name that file: a failing audit about another file is not enough.
    assert not judge(events, w, down=[[99.0, 104.0]], audit_rc=1,
                     audit_text="h /l/app.log.1 [ab]: OK\nh /l/other.log [cd]: 1 GAP(S)").audit_agrees
    # Deleted while the tailer was up: a real loss.
    assert judge(events, w, down=[[200.0, 201.0]], audit_rc=1, audit_text="app.log").lost == 1


def test_a_file_the_tailer_never_saw_cannot_be_named_and_either_audit_answer_is_taken():
    w = written(gone=100.0)
    events = [line(n) for n in range(3)]                    # nothing of segment 2 was read
    assert judge(events, w, down=[[99.0, None]], audit_rc=0).ok
    assert judge(events, w, down=[[99.0, None]], audit_rc=1, audit_text="app.log").ok


def test_the_tailers_inventory_records_are_not_lines_and_not_garbage():
    inv = ev(b"/var/log/app.log [843a5abd90b0]: 24,795 bytes seen, 24,795 read: being read", 70,
             {"inventory": 1, "identity": "843a", "size": 24795})
    res = judge([line(n) for n in range(6)] + [inv])
    assert (res.garbage, res.inventory, res.ok) == (0, 1, True)


def test_a_file_gone_while_the_tailer_was_down_may_be_reported_even_when_nothing_was_lost():
    w = written(gone=100.0)
    events = [line(n) for n in range(6)]                    # every line was read before the file went
    assert judge(events, w, down=[[99.0, 104.0]], audit_rc=1, audit_text="h /l/app.log.1 [ab]: end not known").ok
    assert judge(events, w, down=[[99.0, 104.0]], audit_rc=0).ok
    assert not judge(events, w, down=[[200.0, 201.0]], audit_rc=1).ok   # up all along: the audit must pass


def test_the_index_audit_must_fail_exactly_when_a_line_the_bucks_hold_is_not_in_the_index():
    held = (set(range(6)), set())
    assert judge([line(n) for n in range(6)], held=held, index_audit_rc=0).ok
    assert not judge([line(n) for n in range(6)], held=held, index_audit_rc=1).index_audit_agrees
    lost = judge([line(n) for n in range(6) if n != 4], held=held, index_audit_rc=0, audit_rc=1,
                 audit_text="h /l/app.log.1 [ab]: 1 GAP(S)")
    assert not lost.index_audit_agrees       # the bucks hold line 4, the index does not: it must fail
    assert judge([line(n) for n in range(6) if n != 4], held=held, index_audit_rc=1).index_audit_agrees
    # Lost before the bucks (they do not hold it either): the index audit rightly passes.
    assert judge([line(n) for n in range(6) if n != 4], held=(held[0] - {4}, set()), index_audit_rc=0,
                 ).index_audit_agrees
