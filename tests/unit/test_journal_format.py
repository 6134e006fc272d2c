"""The journal's export format (helios.tail.journal): parse and serialize are
inverses, a reader of a pipe never loses a split entry, and entries map to
events as the README says."""

import struct

import pytest

from helios import codec
from helios.model import line_id
from helios.tail import journal
from helios.tail.journal import ExportFormatError, Filter, parse, serialize

CURSOR = b"s=f198332a183140ae9ebab8cd2290ff33;i=%x;b=0123456789abcdef0123456789abcdef;m=3e8;t=60a24181e4000;x=b33a"


def entry(seq=1, message=b"hello", **extra):
    e = [("__CURSOR", CURSOR % seq), ("__REALTIME_TIMESTAMP", b"1700000000123456"),
         ("__MONOTONIC_TIMESTAMP", b"1000"), ("_BOOT_ID", b"0123456789abcdef0123456789abcdef"),
         ("_HOSTNAME", b"web-1"), ("SYSLOG_IDENTIFIER", b"sshd"), ("PRIORITY", b"3"), ("_PID", b"42"),
         ("_SYSTEMD_UNIT", b"ssh.service"), ("MESSAGE", message)]
    return e + [(k, v) for k, v in extra.items()]


ENTRIES = [entry(1), entry(2, b"bin\x00ary\nwith newline\n\n"), entry(3, b"", EMPTY=b""),
           [("__CURSOR", CURSOR % 4), ("MULTI", b"a"), ("MULTI", b"b\x01"), ("TAB", b"a\tb"),
            ("UTF8", "caf\u00e9".encode()), ("LATIN1", b"caf\xe9")]]


def test_parse_is_the_inverse_of_serialize():
    data = serialize(ENTRIES)
    assert parse(data) == (ENTRIES, len(data))


def test_a_binary_field_is_a_name_a_little_endian_length_the_bytes_and_a_newline():
    data = serialize([[("MESSAGE", b"a\nb")]])
    assert data == b"MESSAGE\n" + struct.pack("<Q", 3) + b"a\nb\n\n"


def test_an_entry_cut_anywhere_waits_for_the_rest():
    data = serialize(ENTRIES)
    for cut in range(len(data)):
        first, used = parse(data[:cut])
        rest, used2 = parse(data[used:])
        assert first + rest == ENTRIES, cut
        assert used + used2 == len(data)


def test_a_last_entry_without_its_empty_line_is_taken_only_when_final():
    data = serialize([entry(1)])[:-1]
    assert parse(data) == ([], 0)
    assert parse(data, final=True) == ([entry(1)], len(data))


def test_a_field_without_a_name_is_an_error():
    with pytest.raises(ExportFormatError, match="without a name"):
        parse(b"=x\n\n")


def test_a_binary_field_without_its_newline_is_an_error():
    with pytest.raises(ExportFormatError, match="does not end with a newline"):
        parse(b"MESSAGE\n" + struct.pack("<Q", 1) + b"ab\n")


def test_a_cursor_gives_its_seqnum_id_and_seqnum():
    c = journal.parse_cursor((CURSOR % 0x1f).decode())
    assert (c.seqnum_id, c.seqnum) == ("f198332a183140ae9ebab8cd2290ff33", 31)
    with pytest.raises(ValueError):
        journal.parse_cursor("i=1;b=2")


def test_an_entry_maps_to_an_event():
    after = {}
    row = journal.to_row(entry(7, b"bin\x00ary"), 5, "me", "fallback", "journal", after)
    _, time, received, host, app, severity, source, offset, message, fields, key = row
    assert (time, received, host, app, severity, source, offset, message) == \
        (1700000000123456000, 5, "web-1", "sshd", 3, "journal", 7, b"bin\x00ary")
    assert fields == {"_BOOT_ID": "0123456789abcdef0123456789abcdef", "_SYSTEMD_UNIT": "ssh.service",
                      "pid": 42, "journal_after": 6}
    assert key == journal.series_key("f198332a183140ae9ebab8cd2290ff33")
    assert after == {"f198332a183140ae9ebab8cd2290ff33": 7}


def test_the_app_is_the_unit_without_an_identifier_and_missing_fields_fall_back():
    row = journal.to_row([("__CURSOR", CURSOR % 1), ("_SYSTEMD_UNIT", b"cron.service"), ("PRIORITY", b"9")],
                         5, "me", "x", "journal", {})
    assert (row[1], row[3], row[4], row[5], row[8]) == (5, "me", "cron.service", None, b"")
    row = journal.to_row([("__CURSOR", CURSOR % 1)], 5, "me", "x", "journal", {})
    assert row[4] == "x"


def test_repeated_fields_are_lists_and_non_utf8_values_stay_bytes():
    row = journal.to_row(ENTRIES[3], 5, "me", "", "journal", {})
    f = row[9]
    assert f["MULTI"] == ["a", "b\x01"] and f["LATIN1"] == b"caf\xe9" and f["UTF8"] == "caf\u00e9"


def test_a_repeated_message_maps_its_first_value_and_keeps_all():
    row = journal.to_row(entry(1, b"one") + [("MESSAGE", b"two")], 5, "me", "", "journal", {})
    assert row[8] == b"one" and row[9]["MESSAGE"] == ["one", "two"]


def test_an_entry_without_a_cursor_is_not_an_event():
    assert journal.to_row([("MESSAGE", b"x")], 5, "me", "", "journal", {}) is None


def test_a_span_runs_from_the_entry_read_before_in_the_same_numbering():
    after = {}
    rows = [journal.to_row(entry(s), 5, "me", "", "journal", after) for s in (3, 4, 9)]
    assert [journal.span(r[7], r[9]) for r in rows] == [(3, 4), (4, 5), (5, 10)]


def test_the_event_id_is_derived_from_the_seqnum_id_and_seqnum_and_survives_the_codec():
    row = journal.to_row(entry(7, b"\xff\x00"), 5, "me", "", "journal", {})
    _, events = codec.decode(codec.encode_rows("prod", "me", [row], row[1], row[1]))
    assert events[0].id == line_id(journal.series_key("f198332a183140ae9ebab8cd2290ff33"), 7)
    assert events[0].message == b"\xff\x00" and events[0].fields["pid"] == 42


def test_included_units_and_identifiers_are_journalctl_matches_ored():
    f = Filter(("nginx", "cron.service"), ("sshd",))
    assert f.matches() == ["_SYSTEMD_UNIT=nginx.service", "_SYSTEMD_UNIT=cron.service", "+",
                           "SYSLOG_IDENTIFIER=sshd"]
    assert Filter().matches() == [] and Filter((), ("a",)).matches() == ["SYSLOG_IDENTIFIER=a"]


def test_excluded_units_and_identifiers_are_left_out():
    f = Filter(exclude_units=("ssh",), exclude_identifiers=("cron",))
    assert f.excluded(entry(1))
    assert f.excluded([("SYSLOG_IDENTIFIER", b"cron")])
    assert not f.excluded([("SYSLOG_IDENTIFIER", b"crond"), ("_SYSTEMD_UNIT", b"crond.service")])
    assert not Filter().excluded(entry(1))


def test_the_positions_file_keeps_the_journal_cursor_and_spans_through_a_save():
    from helios.tail.positions import Positions

    p = Positions(journal={"journal:/var/log/remote": {"cursor": (CURSOR % 9).decode(), "after": {"f198": 9},
                                                       "first": {"f198": 1}}})
    again = Positions.from_bytes(p.to_bytes())
    assert again.journal == p.journal
    moved = Positions(journal={"journal:/var/log/remote": {"cursor": (CURSOR % 10).decode(), "after": {}}})
    assert moved.fingerprint() != p.fingerprint()     # a new cursor is something to save


def test_random_entries_survive_a_round_trip_read_in_random_pieces():
    import random

    rng = random.Random(20)
    alphabet = [b"a", b"=", b"\n", b"\n\n", b"\x00", b"\t", b"\xff", b"MESSAGE\n", b"x" * 9]
    entries = [[(rng.choice(["MESSAGE", "_PID", "A_B", "X"]), b"".join(rng.choices(alphabet, k=rng.randrange(6))))
                for _ in range(rng.randrange(1, 6))] for _ in range(300)]
    data = serialize(entries)
    got, pos = [], 0
    buf = b""
    while pos < len(data):
        step = rng.randrange(1, 200)
        buf += data[pos:pos + step]
        pos += step
        more, used = parse(buf)
        got += more
        buf = buf[used:]
    assert got == entries and buf == b""


def test_an_entry_cannot_forge_the_audit_marker():
    """Journal field names are upper case: the lower-case marker is the tailer's own."""
    row = journal.to_row(entry(5, JOURNAL_AFTER=b"0"), 5, "me", "", "journal", {"f198332a183140ae9ebab8cd2290ff33": 4})
    assert row[9]["journal_after"] == 4 and row[9]["JOURNAL_AFTER"] == "0"


def test_a_binary_field_claiming_a_huge_length_is_an_error_not_an_allocation():
    with pytest.raises(ExportFormatError, match="a binary field of"):
        parse(b"MESSAGE\n" + struct.pack("<Q", 2 ** 63) + b"x\n\n")


def test_a_tailer_reading_only_the_journal_needs_no_paths(tmp_path):
    from helios import config
    from helios.errors import ConfigError

    path = tmp_path / "t.toml"
    path.write_text('[tailer]\nbucks = ["tcp://a:1"]\ncopies = 1\njournal_dir = "/var/log/remote"\n'
                    'journal_exclude_units = ["cron"]\n')
    cfg = config.load(path, require=["tailer"]).tailer
    assert cfg.paths == () and cfg.journal_dir == "/var/log/remote" and cfg.journal_exclude_units == ("cron",)
    path.write_text('[tailer]\nbucks = ["tcp://a:1"]\ncopies = 1\npaths = []\n')
    with pytest.raises(ConfigError) as caught:
        config.load(path, require=["tailer"])
    assert caught.value.problems == ["tailer.paths: must not be empty"]
    path.write_text('[tailer]\nbucks = ["tcp://a:1"]\ncopies = 1\njournal = true\njournal_start_at = "now"\n')
    with pytest.raises(ConfigError) as caught:
        config.load(path, require=["tailer"])
    assert caught.value.problems == ["tailer.journal_start_at: must be \"end\", \"beginning\" or \"\" (as "
                                     "start_at), got 'now'"]


def test_values_too_long_to_carry_are_left_out_or_cut_and_named():
    core = b"\x7fELF" + bytes(2000)
    row = journal.to_row(entry(1, b"m" * 1500, COREDUMP=core), 5, "me", "", "journal", {}, max_value=1024)
    assert row[8] == b"m" * 1024
    assert "COREDUMP" not in row[9] and row[9]["journal_cut"] == {"MESSAGE": 1500, "COREDUMP": 2004}
    assert "journal_cut" not in journal.to_row(entry(2), 5, "me", "", "journal", {})[9]


def test_oversized_finds_the_first_binary_value_too_long_in_an_entry_being_read():
    head = serialize([[("A", b"x"), ("SMALL", b"\x00\x01"), ("COREDUMP", b"\x00" * 100)]])
    pos = head.index(b"COREDUMP")
    assert journal.oversized(head[:pos + 20], 50) == (pos, pos + 9 + 8, "COREDUMP", 100)
    assert journal.oversized(head[:pos + 12], 50) is None      # its length not read yet
    assert journal.oversized(head[:pos + 20], 100) is None
    with pytest.raises(ExportFormatError):
        journal.oversized(b"COREDUMP\n" + struct.pack("<Q", 2 ** 63), 50)


def test_a_value_dropped_while_read_is_named_with_its_length():
    e = entry(1) + [("~cut COREDUMP", b"123456789")]
    row = journal.to_row(e, 5, "me", "", "journal", {})
    assert row[9]["journal_cut"] == {"COREDUMP": 123456789} and "~cut COREDUMP" not in row[9]


# --- take: parse, filter and to_row in one pass (the reader's) ---

OTHER = b"s=0a0b0c0d0e0f0a0b0c0d0e0f0a0b0c0d;i=%x;b=0123456789abcdef0123456789abcdef;m=1;t=2;x=3"
MIXED = [entry(1), entry(2, b"bin\x00ary\nwith newline\n\n"), entry(3, b"", EMPTY=b""),
         entry(4, "caf\u00e9".encode(), LATIN1=b"caf\xe9"), entry(5, b"x" * 300),
         entry(6) + [("_SYSTEMD_UNIT", b"cron.service")],          # a repeated name
         entry(7, SYSLOG_IDENTIFIER=b"CRON"),                       # excluded (a repeated name too)
         [("__CURSOR", OTHER % 9), ("_SYSTEMD_UNIT", b"cron.service"), ("MESSAGE", b"excluded")],
         [("MESSAGE", b"no cursor")], [("__CURSOR", b"garbage"), ("MESSAGE", b"bad cursor")],
         [("__CURSOR", b"i=8;s=" + OTHER[2:34] + b";b=1"), ("PRIORITY", b"x"), ("_PID", b"-"),
          ("__REALTIME_TIMESTAMP", b"-5"), ("MESSAGE", b"fields out of order, values not numbers")],
         [("__CURSOR", OTHER % 12), ("MESSAGE", b"m" * 1500), ("A", b"short")],      # cut to max_value
         entry(13) + [("~cut COREDUMP", b"123456")], entry(14, _HOSTNAME=b"", SYSLOG_IDENTIFIER=b""),
         entry(15, b"tab\there = and = more")]


def slow_rows(entries, filt, max_value=1024):
    """What the reader made of entries before take: parse, Filter.excluded, to_row."""
    after, first, rows, cursor, excluded, errors = {}, {}, [], None, 0, 0
    for e in entries:
        if filt.excluded(e):
            excluded += 1
            cursor = next((v for k, v in e if k == "__CURSOR"), b"").decode() or cursor
            continue
        n = len(after)
        row = journal.to_row(e, 5, "me", "app", "journal", after, max_value)
        if row is None:
            errors += 1
            continue
        if len(after) > n:
            first.setdefault(next(reversed(after)), row[9][journal.AFTER] + 1)
        cursor = dict(e)["__CURSOR"].decode()
        rows.append(row)
    return rows, cursor, excluded, errors, after, first


def test_take_makes_what_parse_filter_and_to_row_make_of_every_kind_of_entry():
    filt = Filter(exclude_units=("cron",), exclude_identifiers=("CRON",))
    data = serialize(MIXED)
    after, first = {}, {}
    t = journal.take(data, 5, "me", "app", "journal", filt, after, first, max_value=1024)
    rows, cursor, excluded, errors, after2, first2 = slow_rows(MIXED, filt)
    assert t.rows == rows and len(rows) == 10
    assert (t.used, t.cursor, t.excluded, t.errors, t.error) == (len(data), cursor, excluded, errors, None)
    assert (after, first) == (after2, first2)
    assert [r[8] for r in t.rows][3] == "caf\u00e9".encode() and type(t.rows[0][8]) is bytes


def test_take_of_a_stream_cut_anywhere_takes_every_entry_once():
    filt = Filter(exclude_units=("cron",))
    data = serialize(MIXED)
    want = slow_rows(MIXED, filt)[0]
    for cut in range(0, len(data), 7):
        after, first = {}, {}
        t1 = journal.take(data[:cut], 5, "me", "app", "journal", filt, after, first, max_value=1024)
        t2 = journal.take(data[t1.used:], 5, "me", "app", "journal", filt, after, first, max_value=1024)
        assert t1.rows + t2.rows == want, cut
        assert t1.used + t2.used == len(data)


def test_take_keeps_the_rows_before_bytes_that_are_not_the_format():
    good = serialize([entry(1), entry(2)])
    t = journal.take(good + b"=x\n\n" + serialize([entry(3)]), 5, "me", "app", "journal", Filter(), {}, {})
    assert [r[7] for r in t.rows] == [1, 2] and t.used == len(good)
    assert isinstance(t.error, ExportFormatError) and t.cursor == (CURSOR % 2).decode()
