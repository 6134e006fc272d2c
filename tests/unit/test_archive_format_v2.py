"""Archive format version 2: messages as templates and variables, more codecs,
and objects written by version 1 still read by this code."""

import random

import hypothesis.strategies as st
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings

from helios.archive import format as fmt
from helios.archive import templates
from helios.errors import ArchiveError
from tests.unit.test_archive_format import any_events, file_events, golden_events, loghub_samples, tailer_events
from tests.helpers import needs

lines_without_newline = st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=40) | st.lists(
    st.sampled_from([b"Accepted key for bob from 10.0.0.1 port 22", b"session 42 closed", b"", b"1", b"a=1 b=x2 c",
                     b"GET /api/v1/orders/17?page=3 HTTP/1.1", b"\xff\x00 9\t[7]", b"no digits here"]),
    max_size=60)


# --- templates -----------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(lines_without_newline)
def test_templates_split_and_join_are_inverses_for_any_lines(lines):
    ph = templates.placeholder(lines)
    assert ph is not None and all(ph not in line for line in lines)
    assert templates.join(*templates.split(lines, ph), ph) == lines


def test_a_token_with_a_digit_is_a_variable_and_the_rest_is_the_template():
    tpls, ids, values = templates.split([b"Accepted key for bob from 10.1.2.3 port 51234",
                                         b"Accepted key for ann from 10.9.9.9 port 22", b"user=u7 ok"], b"\x11")
    assert tpls == [b"Accepted key for bob from \x11 port \x11", b"Accepted key for ann from \x11 port \x11",
                    b"user=\x11 ok"]
    assert ids == [0, 1, 2]
    assert values == b"10.1.2.3\n51234\n10.9.9.9\n22\nu7"


def test_variables_are_grouped_by_template_then_by_slot():
    lines = [b"port 1 to 2", b"other 9", b"port 3 to 4"]
    tpls, ids, values = templates.split(lines, b"\x11")
    assert tpls == [b"port \x11 to \x11", b"other \x11"] and ids == [0, 1, 0]
    assert values.split(b"\n") == [b"1", b"3", b"2", b"4", b"9"]  # slot 0 of both lines, then slot 1


def test_the_placeholder_is_a_byte_no_line_holds_and_none_when_every_byte_is_used():
    assert templates.placeholder([b"a\x11b"]) == b"\x12"
    assert templates.placeholder([bytes(range(256))]) is None


def test_join_refuses_values_that_do_not_fit_the_templates():
    with pytest.raises(ValueError, match="do not fit"):
        templates.join([b"a \x11"], [0, 0], b"1", b"\x11")
    with pytest.raises(ValueError, match="out of range"):
        templates.join([b"a"], [1], b"", b"\x11")


# --- the format ------------------------------------------------------------------

@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_events, st.sampled_from([dict(layout="template"), dict(layout=(b" ", 3)), dict(codec="lz4"),
                                    dict(codec="gzip", level=6), dict(level=3), dict()]))
def test_version_2_unpacks_what_it_packed_with_every_layout_and_codec(events, opts):
    data = fmt.pack(events, environment="prod", version=2, **opts)
    assert fmt.describe(data).version == 2
    assert fmt.unpack(data) == fmt.canonical(events)


def test_pack_writes_the_current_version_by_default():
    assert fmt.describe(fmt.pack(file_events([b"line 1", b"line 2"]))).version == fmt.VERSION == 2


def test_an_object_written_with_format_version_1_is_read_by_this_code():
    events = file_events([b"Jun 14 15:16:01 combo sshd[%d]: session %d opened" % (i, i) for i in range(300)])
    old = fmt.pack(events, version=1)
    assert fmt.describe(old).version == 1
    assert fmt.unpack(old) == fmt.canonical(events)
    assert fmt.unpack(fmt.pack(golden_events(), version=1)) == fmt.canonical(golden_events())


def test_the_template_layout_is_chosen_where_it_is_smaller_and_says_so():
    rng = random.Random(1)
    shapes = [b"worker %d finished job %d in %d ms", b"GET /api/orders/%d?page=%d 200 %d",
              b"user u%d logged in from 10.0.%d.%d"]
    events = file_events([rng.choice(shapes) % (rng.randrange(100), rng.randrange(10**6), rng.randrange(999))
                          for _ in range(3000)])
    info = fmt.describe(fmt.pack(events))
    assert info.layout == "template"
    assert len(fmt.pack(events)) < len(fmt.pack(events, version=1))


def test_lines_that_use_every_byte_fall_back_to_the_split_layout():
    events = file_events([bytes(range(256)).replace(b"\n", b""), b"\n".join([b"x"])])
    data = fmt.pack(events, layout="template")
    assert fmt.describe(data).layout == "split"
    assert fmt.unpack(data) == fmt.canonical(events)


def test_a_dictionary_object_is_read_only_with_its_dictionary():
    lines = [b"worker %d finished job %d in %d ms" % (i, i * 7, i % 97) for i in range(2000)]
    d = zstandard.train_dictionary(4096, lines)
    events = file_events(lines[1000:])
    data = fmt.pack(events, dictionary=d)
    with pytest.raises(ArchiveError, match=f"needs zstd dictionary {d.dict_id()}"):
        fmt.unpack(data)
    assert fmt.unpack(data, dictionaries={d.dict_id(): d}) == fmt.canonical(events)


def test_version_1_refuses_what_only_version_2_can_write():
    for opts in (dict(codec="lz4"), dict(layout="template")):
        with pytest.raises(ArchiveError, match="version 1 knows only"):
            fmt.pack(file_events([b"x 1"]), version=1, **opts)
    with pytest.raises(ArchiveError, match="unknown codec"):
        fmt.pack(file_events([b"x 1"]), codec="brotli")


def test_every_flipped_byte_of_a_template_object_is_refused():
    data = fmt.pack(file_events([b"job %d done in %d ms" % (i, i % 9) for i in range(40)]), layout="template")
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x55
        with pytest.raises(ArchiveError):
            fmt.unpack(bytes(bad))


@needs("loghub", None if loghub_samples() else "no loghub samples")
def test_on_the_loghub_samples_version_2_is_smaller_than_version_1():
    v1 = v2 = 0
    for path in loghub_samples():
        events = tailer_events(path)[:1000]  # half of each: enough to show it, quick to pack twice
        a, b = fmt.pack(events, version=1), fmt.pack(events)
        assert fmt.unpack(b) == fmt.canonical(events)
        assert len(b) <= len(a) * 1.01, path.name  # never more than a header's worth larger
        v1, v2 = v1 + len(a), v2 + len(b)
    assert v2 < v1 * 0.95
