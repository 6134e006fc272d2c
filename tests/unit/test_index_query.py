"""The search query: reading what a user types, writing it back, and what
a query means (``matches``, which every backend is held to)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helios.errors import SearchError
from helios.index.query import Query, field_pairs, format_query, matches, parse_query
from helios.model import Event

R = dict(environment="prod", start=0, end=10**18)


def ev(message: bytes, *, t: int = 5, host: str = "web1", app: str = "nginx", severity: int | None = 6,
       id: bytes = b"\x00" * 16, fields=None) -> Event:
    return Event(id, t, t, host, app, severity, "", None, message, fields, b"", "prod")


def test_bare_words_are_terms_quotes_are_substrings_and_keys_filter():
    q = parse_query('error host:web1 app:nginx,haproxy sev:err "conn reset"', **R)
    assert q.terms == ("error",)
    assert q.substrings == (b"conn reset",)
    assert q.hosts == ("web1",) and q.apps == ("nginx", "haproxy")
    assert q.severity == 3


def test_a_bare_word_with_punctuation_is_searched_as_a_substring():
    q = parse_query("user=bob 10.0.0.1 /api/v1 Straße", **R)
    assert q.terms == ("Straße",)
    assert q.substrings == (b"user=bob", b"10.0.0.1", b"/api/v1")


def test_quoted_strings_take_escaped_quotes_backslashes_and_raw_bytes():
    q = parse_query(r'"say \"hi\"" "C:\temp" "a\\b" "\xff\xfe"', **R)
    assert q.substrings == (b'say "hi"', b"C:\\temp", b"a\\b", b"\xff\xfe")


def test_filters_repeat_take_quoted_values_and_severity_names_or_numbers():
    q = parse_query('host:a host:"b c" APP:x severity:warn', **R)
    assert q.hosts == ("a", "b c") and q.apps == ("x",) and q.severity == 4
    assert parse_query("sev:0", **R).severity == 0


@pytest.mark.parametrize("text, message", [
    ("http://x", 'http://x reads as the field http; to search for the text itself, quote it: "http://x"'),
    ("ERROR:", 'ERROR: needs a value, e.g. ERROR:value; to search for the text itself, quote it: "ERROR:"'),
    ("http..status:500", "http..status: has an empty part: nested keys are written a.b.c"),
    ("http.:500", "http.: has an empty part"),
    ("k" * 129 + ":v", "is not a field name a query can use"),
    ("k:" + ",".join(map(str, range(1025))), "at most 64 fields and 1024 field values in all"),
    (" ".join(f"k{i}:v" for i in range(65)), "at most 64 fields"),
    ('"conn reset', "unterminated quote"),
    ('"ends in backslash\\"', "unterminated quote"),
    ("sev:bogus", "sev:bogus is not a severity"),
    ("sev:err sev:info", "give one severity"),
    ("host:", "host: needs a value"),
    ('""', 'an empty quoted string "" matches everything'),
])
def test_a_query_that_cannot_be_read_says_why_and_how_to_write_it(text, message):
    with pytest.raises(SearchError) as err:
        parse_query(text, **R)
    assert message in str(err.value)


def test_a_bad_range_limit_order_or_environment_is_refused():
    with pytest.raises(SearchError, match="ends before it starts"):
        Query("prod", 10, 5)
    with pytest.raises(SearchError, match="limit must be a positive number"):
        Query("prod", 0, 5, limit=0)
    with pytest.raises(SearchError, match="order must be 'asc' or 'desc'"):
        Query("prod", 0, 5, order="up")
    with pytest.raises(SearchError, match="not a valid environment"):
        Query("../x", 0, 5)
    with pytest.raises(SearchError, match="not one whole word"):
        Query("prod", 0, 5, terms=("conn reset",))


words = st.text(st.characters(whitelist_categories=("Lu", "Ll", "Nd")), min_size=1, max_size=8)
needles = st.binary(min_size=1, max_size=12)
names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8)


field_keys = st.from_regex(r"[A-Za-z_@][A-Za-z0-9_@-]{0,6}(\.[A-Za-z0-9_@-]{1,5}){0,2}", fullmatch=True).filter(
    lambda k: k.lower() not in ("host", "app", "sev", "severity"))
field_values = st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=8), min_size=1, max_size=3,
                        unique=True)


@given(terms=st.lists(words, max_size=3), subs=st.lists(needles, max_size=3), hosts=st.lists(names, max_size=2),
       apps=st.lists(names, max_size=2), severity=st.none() | st.integers(0, 7),
       fields=st.dictionaries(field_keys, field_values, max_size=3))
def test_format_query_and_parse_query_are_inverses(terms, subs, hosts, apps, severity, fields):
    q = Query("prod", 0, 10, tuple(terms), tuple(subs), tuple(hosts), tuple(apps), severity,
              fields=tuple((k, tuple(v)) for k, v in fields.items()))
    assert parse_query(format_query(q), environment="prod", start=0, end=10) == q


def test_a_term_matches_a_whole_word_ignoring_ascii_case():
    q = Query("prod", 0, 10, terms=("error",))
    for message in (b"error", b"ERROR: x", b"level=error", b"error_code=1", b"[Error]", b"x\xff error \xfe"):
        assert matches(q, ev(message)), message
    for message in (b"errors", b"noerror", b"error2", b"\xc3\xa9error"):
        assert not matches(q, ev(message)), message


def test_a_substring_matches_exact_bytes():
    q = Query("prod", 0, 10, substrings=(b"conn reset",))
    assert matches(q, ev(b"peer: conn reset by"))
    assert not matches(q, ev(b"CONN RESET"))
    assert matches(Query("prod", 0, 10, substrings=("Straße",)), ev("an der Straße".encode()))


def test_filters_range_and_cursor_all_apply():
    q = Query("prod", 5, 10, hosts=("web1",), apps=("nginx",), severity=3, after=(5, b"\x00" * 16))
    assert matches(q, ev(b"x", t=5, severity=3, id=b"\x01" * 16))
    assert not matches(q, ev(b"x", t=5, severity=3))                 # not past the cursor
    assert not matches(q, ev(b"x", t=10, severity=3, id=b"\x01" * 16))   # the end is excluded
    assert not matches(q, ev(b"x", t=6, severity=4))                 # less severe than asked
    assert not matches(q, ev(b"x", t=6, severity=None))              # unknown severity
    assert not matches(q, ev(b"x", t=6, severity=3, host="web2"))


def test_next_page_continues_after_the_last_hit_until_a_short_page():
    q = Query("prod", 0, 10, limit=2)
    page = [ev(b"a", t=1, id=b"\x01" * 16), ev(b"b", t=2, id=b"\x02" * 16)]
    assert q.next_page(page).after == (2, b"\x02" * 16)
    assert q.next_page(page[:1]) is None
    assert Query("prod", 0, 10, limit=None).next_page(page) is None


def test_key_value_is_a_field_quoted_dotted_or_any_of_several_values():
    q = parse_query('error user:alice http.status:404,500 msg:"payment declined" @version:1 user:bob', **R)
    assert q.terms == ("error",)
    assert q.fields == (("user", ("alice", "bob")), ("http.status", ("404", "500")),
                        ("msg", ("payment declined",)), ("@version", ("1",)))
    assert parse_query('user:""', **R).fields == (("user", ("",)),)


def test_a_field_matches_its_value_exactly_as_text_nested_or_flat():
    q = Query("prod", 0, 10, fields=(("http.status", ("500",)), ("user", ("alice",))))
    assert matches(q, ev(b"x", fields={"http.status": 500, "user": "alice"}))
    assert matches(q, ev(b"x", fields={"http": {"status": "500"}, "user": ["bob", "alice"]}))
    assert not matches(q, ev(b"x", fields={"http.status": 500, "user": "Alice"}))     # values are exact
    assert not matches(q, ev(b"x", fields={"http.status": 5000, "user": "alice"}))
    assert not matches(q, ev(b"user=alice http.status=500"))                          # the text is not a field
    assert not matches(q, ev(b"x", fields={"user": "alice"}))                         # every field must hold


def test_field_values_as_text_numbers_booleans_and_what_is_left_out():
    pairs = field_pairs({"n": 3.0, "f": 2.5, "ok": True, "no": None, "b": b"\xff", "s": b"yes", "list": [1, [2], "x"],
                         "a=b": "key a query cannot name", "long": "x" * 2000, 7: "not a text key"})
    assert pairs == [("n", "3"), ("f", "2.5"), ("ok", "true"), ("s", "yes"), ("list", "1"), ("list", "x")]
    assert len(field_pairs({f"k{i}": i for i in range(500)})) == 128
