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


# --- the inventory: what the tailer saw, against what the bucks hold ---

from helios.audit import Report, _inventory  # noqa: E402
from helios.tail import inventory  # noqa: E402


def report(events):
    r = Report({}, answered=1)   # as read from one buck
    r.sources = collect(_inventory(r, events), lambda e: e.source_id)
    return r


def inv(size, end="", first=0, seq=1, t=1, key=b"k" * 16, detail=""):
    e = inventory.to_event(inventory.Record(key, ("/f",), size, size, first, end, detail, seq), "h", t, "prod")
    return e


def test_bytes_seen_on_disk_that_no_buck_holds_are_named_even_at_the_end_of_a_file():
    r = report([ev(0, b"aaa"), ev(4, b"bb"), inv(20)])
    [f] = r.findings
    assert f.missing == [(7, 20)] and not r.ok  # no gap between spans: only the inventory knows


def test_a_file_seen_but_never_read_is_named():
    r = report([inv(50, key=b"z" * 16)])
    assert [f.missing for f in r.findings] == [[(0, 50)]]


def test_a_file_whose_reading_ended_short_is_named_with_its_reason():
    r = report([ev(0, b"aaa"), inv(4, end="deleted", detail="truncated with no copy")])
    [f] = r.findings
    assert f.short and f.missing == [] and f.record.detail == "truncated with no copy"
    from helios.audit import render
    assert "not read to its end" in render(r) and "deleted" in render(r)


def test_the_latest_record_of_a_file_wins_and_a_clean_run_is_ok():
    r = report([ev(0, b"aaa"), ev(4, b"bb"), inv(20, end="permission-denied", t=1), inv(7, end="read", t=2)])
    assert r.findings == [] and r.ok


def test_a_start_at_the_end_is_not_a_loss():
    r = report([ev(100, b"x"), inv(102, first=100)])
    assert r.ok


def test_the_audit_counts_distinct_events_apart_from_the_stored_copies(tmp_path):
    """Two live copies of each batch and a spool re-send: the bucks hold 3
    copies of each line; the audit says so and counts each line once."""
    import subprocess
    import sys
    import time

    from helios import codec
    from helios.model import line_id
    from helios.store import layout
    from helios.store.records import RecordWriter

    key = b"k" * 16
    lines, off = [], 0
    for i in range(10):
        msg = b"line %d" % i
        lines.append(Event(line_id(key, off), 1, 1, "h", "a", 6, "/f", off, msg, None, key))
        off += len(msg) + 1
    client = Event(b"c" * 16, 1, 1, "h", "app", 6, "", None, b"from a client", None)
    frame = codec.encode_events("prod", "h", [*lines, client])
    start = int(time.time()) // 60 * 60
    for buck, copies in (("a", 1), ("b", 2)):  # b also took the spool's re-send
        w = RecordWriter(layout.bucket_path(tmp_path / buck / "buckets", "prod", start, 60))
        for _ in range(copies):
            w.append(frame)
        w.close()
    r = subprocess.run([sys.executable, "-m", "helios", "audit", "--data-dir", str(tmp_path / "a"),
                        "--data-dir", str(tmp_path / "b")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "11 distinct events held as 33 stored copies" in r.stdout
    assert "10 lines (30 copies): OK" in r.stdout


def test_an_audit_that_reached_no_buck_proves_nothing_and_fails(tmp_path):
    """No gap is seen when nothing is read: exit 1, and say why, not "No gaps"."""
    import socket
    import subprocess
    import sys

    with socket.socket() as s:   # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = subprocess.run([sys.executable, "-m", "helios", "audit", "--buck", f"127.0.0.1:{port}", "--timeout", "0.5"],
                       capture_output=True, text=True)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Nothing audited: no buck answered." in r.stdout and "not audited:" in r.stdout
    r = subprocess.run([sys.executable, "-m", "helios", "audit", str(tmp_path / "typo")], capture_output=True, text=True)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "not a buck's data directory" in r.stdout and "Nothing audited" in r.stdout
