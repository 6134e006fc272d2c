"""The audit: spans per file identity merge; holes are gaps; a leading offset is not."""

from helios.audit import collect, span
from helios.model import Event


def ev(offset, message, fields=None, key=b"k" * 16):
    return Event(b"i" * 16, 0, 0, "h", "a", None, "/f", offset, message, fields, key, "prod")


def sources(events):
    return collect(events, lambda e: e.source_id)


def test_adjacent_lines_from_several_copies_leave_no_gap():
    evs = [ev(0, b"aaa"), ev(4, b"bb"), ev(7, b"c"), ev(4, b"bb"), ev(0, b"aaa")]
    [s] = sources(evs).values()
    assert s.merged() == [(0, 9)] and s.gaps() == []


def test_a_missing_line_is_a_gap_with_its_byte_range():
    [s] = sources([ev(0, b"aaa"), ev(7, b"c")]).values()
    assert s.gaps() == [(4, 7)]


def test_a_file_first_read_from_its_middle_has_no_leading_gap():
    [s] = sources([ev(1000, b"x"), ev(1002, b"y")]).values()
    assert s.gaps() == []


def test_split_and_unterminated_pieces_cover_no_newline():
    assert span(ev(0, b"abcd", {"split": 1})) == (0, 4)
    assert span(ev(4, b"ef", {"split": 2, "last": True})) == (4, 7)
    assert span(ev(7, b"tail", {"unterminated": True})) == (7, 11)


def test_files_with_other_identities_are_audited_apart():
    got = sources([ev(0, b"a", key=b"1" * 16), ev(0, b"a", key=b"2" * 16), ev(5, b"b", key=b"2" * 16)])
    assert {k: s.gaps() for k, s in got.items()} == {b"1" * 16: [], b"2" * 16: [(2, 5)]}


def test_client_events_have_no_span():
    assert span(Event(b"i" * 16, 0, 0, "h", "a", None, "", None, b"x", None)) is None
