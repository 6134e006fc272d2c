"""Masks and drops on the events the tailer makes itself (multi-line events,
joined container records, split lines): every line of such an event is
masked, an event whose first line a drop matches leaves empty, and its span
still covers all of its bytes (the audit sees no gap)."""

from __future__ import annotations

import json

from helios import codec
from helios.audit import span
from helios.parsing import containers
from helios.tail.encoder import Encoder, Settings
from helios.tail.files import Chunk

KEY = b"k" * 16
SETTINGS = Settings("prod", "h", "auto", "", "UTC", 100,
                    ({"paths": ["/c/*"], "mask": [r"pw=(\S+)"], "drop": ["^DEBUG", "healthcheck"]},))


def encode(chunk):
    result = Encoder(SETTINGS).encode([(chunk, 5)])
    return [e for f in result.frames for e in codec.decode(f)[1]], result


def multiline(raw: bytes):
    """The tailer's multi-line events of ``raw`` (a start line: one that does not begin with a space)."""
    items, off = [], 0
    for line in raw[:-1].split(b"\n"):
        if items and line[:1] == b" ":
            o, m, _ = items[-1]
            items[-1] = (o, m + b"\n" + line, None)
        else:
            items.append((off, line, None))
        off += len(line) + 1
    return Chunk.events("/c/app.log", KEY, len(raw), items)


def test_every_line_of_a_multi_line_event_is_masked_and_crlf_events_cover_all_their_bytes():
    raw = b"2024-03-11 08:15:02 ERROR boom\r\n  at login pw=hunter2\r\n2024-03-11 08:15:03 INFO ok\r\n"
    events, _ = encode(multiline(raw))
    assert [e.message for e in events] == [b"2024-03-11 08:15:02 ERROR boom\r\n  at login pw=*******\r",
                                           b"2024-03-11 08:15:03 INFO ok\r"]
    assert b"hunter2" not in b"".join(e.message + json.dumps(e.fields).encode() for e in events)
    spans = [span(e) for e in events]
    assert spans == [(0, spans[1][0]), (spans[1][0], len(raw))]        # no gap, no overlap


def test_a_multi_line_event_whose_first_line_a_drop_matches_leaves_empty_with_its_byte_count():
    raw = b"DEBUG state:\n  a=1\n  b=2\nINFO kept\n"
    events, result = encode(multiline(raw))
    assert [e.message for e in events] == [b"", b"INFO kept"] and result.dropped == 1
    assert events[0].fields["dropped"] == 1
    assert [span(e) for e in events] == [(0, 25), (25, len(raw))]


def test_joined_container_records_are_masked_whole_and_a_dropped_one_keeps_its_raw_byte_count():
    records = [json.dumps({"log": t, "stream": "stdout", "time": "2024-03-11T08:15:02Z"}).encode()
               for t in ("login pw=secret1 ", "and more\n", "GET /healthcheck\n", "pw=secret2\n")]
    items, off = [], 0
    for r in records:
        items.append((off, r))
        off += len(r) + 1
    joined, pending = containers.join_lines([], items)
    chunk = Chunk("/c/x-json.log", KEY, 0, off, b"".join(j.head + b"\n" for j in joined),
                  [j.message for j in joined], [j.offset for j in joined], [j.fields for j in joined])
    events, result = encode(chunk)
    assert [e.message for e in events] == [b"login pw=******* and more", b"", b"pw=*******"]
    assert result.dropped == 1 and events[1].fields["dropped"] == 1
    assert b"secret" not in b"".join(e.message + json.dumps(e.fields).encode() for e in events)
    spans = [span(e) for e in events]
    assert spans == [(0, items[2][0]), (items[2][0], items[3][0]), (items[3][0], off)]


def test_a_mask_anchored_at_the_line_start_hides_a_container_records_text_in_the_message_and_the_fields():
    settings = Settings("prod", "h", "auto", "", "UTC", 100,
                        ({"paths": ["/c/*"], "mask": [r"^password=(\S+)"], "key_values": True},))
    records = [json.dumps({"log": t, "stream": "stdout", "time": "2024-03-11T08:15:02Z"}).encode()
               for t in ("password=hunter2 user=bob\n", "password=split", "ted\n")]
    whole = records[0] + b"\n"                    # passed as it is (nothing to join): the parser unwraps it
    events = [e for f in Encoder(settings).encode([(Chunk("/c/x-json.log", KEY, 0, len(whole), whole), 5)]).frames
              for e in codec.decode(f)[1]]
    items, off = [], 0
    for r in records:
        items.append((off, r))
        off += len(r) + 1
    joined, _ = containers.join_lines([], items)
    chunk = Chunk("/c/x-json.log", KEY, 0, off, b"".join(j.head + b"\n" for j in joined),
                  [j.message for j in joined], [j.offset for j in joined], [j.fields for j in joined])
    events += [e for f in Encoder(settings).encode([(chunk, 5)]).frames for e in codec.decode(f)[1]]
    assert [e.message for e in events] == [b"password=******* user=bob"] * 2 + [b"password=********"]
    assert events[0].fields["user"] == "bob"
    seen = b"".join(e.message + json.dumps(e.fields).encode() for e in events)
    assert b"hunter2" not in seen and b"split" not in seen and b"ted" not in seen
