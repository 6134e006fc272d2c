"""Syslog messages to frames (helios.syslognet.events.Framer): runs of
messages, each read's block as it came, ids from a base per frame."""

from __future__ import annotations

import lz4.block
import msgpack

from helios import codec
from helios.syslognet import events as ev
from helios.syslognet.events import Framer

PEER = "192.0.2.7:41000"
NOW = 1_700_000_000_000_000_000


def framer() -> Framer:
    return Framer("default", "relay-host", "UTC")


def decoded(frames):
    return [e for frame, _, _ in frames for e in codec.decode(frame)[1]]


def runs_of(frame: bytes) -> list:
    header = codec.check_frame(frame)
    return msgpack.unpackb(lz4.block.decompress(frame[header.payload_offset:], uncompressed_size=header.raw_size))


def test_a_read_travels_as_its_block_with_the_peer_once():
    lines = [b"<13>Mar 11 08:15:02 gate app[%d]: line %d k=v" % (k, k) for k in range(50)]
    block = b"\n".join(lines)
    (frame, n, nbytes), = framer().frames_of_block(block, PEER, "syslog/tcp", NOW, 1024)
    assert (n, nbytes) == (50, len(block) - 49)
    (run,), = [runs_of(frame)]
    assert codec.check_frame(frame).flags & codec.FLAG_RUNS
    assert run[8] == block + b"\n" and run[7] is None and run[10] == {"peer": PEER}
    events = codec.decode(frame)[1]
    assert [e.message for e in events] == lines
    assert {(e.source, e.offset, e.source_id, e.received, e.host, e.fields["peer"]) for e in events} == \
        {("syslog/tcp", None, b"", NOW, "gate", PEER)}


def test_every_copy_of_a_frame_has_the_same_ids_and_every_event_its_own():
    block = b"\n".join(b"<13>Mar 11 08:15:02 gate app: same line" for _ in range(20))
    f = framer()
    first = f.frames_of_block(block, PEER, "syslog/tcp", NOW, 1024)
    again = f.frames_of_block(block, PEER, "syslog/tcp", NOW, 1024)   # the same bytes read again: new events
    ids = [e.id for e in decoded(first)]
    assert len(set(ids)) == 20
    assert [e.id for e in decoded(first)] == ids          # a copy re-sent from the spool: the same ids
    assert not set(ids) & {e.id for e in decoded(again)}


def test_a_read_of_more_than_a_frame_holds_is_cut_into_frames_in_order(monkeypatch):
    monkeypatch.setattr(ev, "MAX_EVENTS", 7)
    lines = [b"<13>Mar 11 08:15:%02d gate app: line %d" % (k % 60, k) for k in range(30)]
    f = framer()
    frames = f.frames_of_block(b"\n".join(lines), PEER, "syslog/tcp", NOW, 1024)
    assert [n for _, n, _ in frames] == [7, 7, 7, 7, 2]
    assert sum(nbytes for _, _, nbytes in frames) == sum(map(len, lines))
    events = decoded(frames)
    assert [e.message for e in events] == lines and len({e.id for e in events}) == 30
    for frame, _, _ in frames:
        header, evs = codec.decode(frame)
        assert (header.first_time, header.last_time) == (min(e.time for e in evs), max(e.time for e in evs))
    # Messages cut by the relay (octet counting) go as a list, cut the same way.
    frames = f.frames(lines, PEER, "syslog/tcp", NOW, [3, 29])
    events = decoded(frames)
    assert [e.message for e in events] == lines
    assert [i for i, e in enumerate(events) if e.fields.get("truncated")] == [3, 29]


def test_fields_hosts_and_peers_are_what_the_row_layout_carried():
    messages = [
        b"<13>1 2024-03-11T08:15:02Z host5424 app 12 ID7 [x@1 a=\"b\"] with sd",
        b"<13>no host here",
        b"<13>Mar 11 08:15:02 gate app: first line\nsecond line",     # (octet counting: newlines inside)
        b"<13>Mar 11 08:15:02 gate app: a carriage return\r",
        b"<13>Mar 11 08:15:02 gate app: peer=spoofed level=debug",
        b"peer=spoofed x=1",                                          # (logfmt: its pairs are fields)
    ]
    f = framer()
    one = decoded(f.frames(messages, PEER, "syslog/tcp", NOW, [1]))
    assert [e.message for e in one] == messages
    assert [e.host for e in one] == ["host5424", "192.0.2.7", "gate", "gate", "gate", "192.0.2.7"]
    assert one[0].fields == {"x@1.a": "b", "procid": "12", "msgid": "ID7", "peer": PEER}
    assert one[1].fields == {"truncated": True, "peer": PEER}
    assert all("line_bytes" not in e.fields for e in one)
    assert one[4].fields == {"peer": PEER}     # (a parsed line's key=value pairs are no fields; the PRI says 5)
    assert one[4].severity == 5
    assert one[5].fields == {"x": "1", "peer": PEER}     # the connection's peer wins over a claimed one
    peers = [f"198.51.100.{k}:514" for k in range(6)]
    each = decoded(f.frames(messages, peers, "syslog/udp", NOW))
    assert [e.fields["peer"] for e in each] == peers
    assert [e.host for e in each][1] == "198.51.100.1"
    assert [{k: v for k, v in e.fields.items() if k not in ("peer", "truncated")} for e in each] == \
        [{k: v for k, v in e.fields.items() if k not in ("peer", "truncated")} for e in one]
