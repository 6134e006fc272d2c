"""Senders and counts per input kind (the kind a frame's header names: file,
journal, container, syslog/udp, ...): the buck's stats, `helios status`'s
SENDERS BY INPUT and the helios_input_* metrics' counts."""

import dataclasses

from helios import codec, config
from helios.buck.service import MAX_INPUTS, Buck
from helios.commands.status import assess, by_input, render
from helios.metrics import input_counts
from helios.model import Event, random_id


def _frame(kind: str = "", host: str = "web-1", n: int = 3) -> bytes:
    events = [Event(random_id(), 10 + i, 20, host, "app", None, "", None, b"x", None, b"", "prod") for i in range(n)]
    return codec.encode_events("prod", host, events, input=kind)


def test_counts_per_kind_leave_zeromq_only_the_unmarked_frames():
    buck = {"events": 110, "bytes": 5000, "write_errors": 3}
    kinds = {"file": [60, 2000, 1, 2], "syslog/udp": [30, 1000, 0, 0]}
    http = {"http_events": 7, "http_bytes": 900, "http_frame_bytes": 400}
    got = input_counts(buck, {"bad checksum": 4}, http, kinds)
    assert got["file"] == {"events": 60, "bytes": 2000, "dropped": 1, "errors": 2}
    assert got["syslog/udp"] == {"events": 30, "bytes": 1000, "dropped": 0, "errors": 0}
    assert got["zmq"] == {"events": 13, "bytes": 1600, "dropped": 3, "errors": 1}
    assert got["http"]["events"] == 7
    assert input_counts(buck, {}, None, kinds)["zmq"] == {"events": 20, "bytes": 2000, "dropped": 0, "errors": 1}


def test_status_splits_each_sender_by_the_kinds_its_frames_named():
    now = 1000.0
    sender = {"last_seen": now, "events": 25, "newest_event": now, "inputs": {"file": 10, "journal": 5}}
    old_buck = {"last_seen": now, "events": 4, "newest_event": now}   # a buck from before the kinds
    stats = {"tcp://a:1": {"events": 1, "started": 0, "senders": {"prod/web-1": sender}},
             "tcp://b:1": {"events": 1, "started": 0, "senders": {"prod/web-1": old_buck,
                                                                  "prod/relay-1": {**sender, "events": 3,
                                                                                   "inputs": {"syslog/tcp": 3}}}}}
    listed = {"prod/web-1", "prod/relay-1"}
    assert by_input(stats, listed) == {"file": {"prod/web-1": 10}, "journal": {"prod/web-1": 5},
                                       "syslog/tcp": {"prod/relay-1": 3}, "zmq": {"prod/web-1": 14}}
    text = render(assess(stats, stats, 1.0, now), colour=False)
    assert "file (tailed files): 1 sender(s), 10 copies stored: prod/web-1" in text
    assert "journal (systemd): 1 sender(s), 5 copies stored: prod/web-1" in text
    assert "syslog/tcp (relays): 1 sender(s), 3 copies stored: prod/relay-1" in text


def _buck(tmp_path):
    """A buck's bookkeeping, fed frames by hand (no sockets: ``handle`` is what its loop calls)."""
    return Buck(dataclasses.replace(config.Buck(), name="b", data_dir=str(tmp_path), max_batch_events=100))


def test_a_buck_counts_events_bytes_and_refusals_per_kind_and_per_sender(tmp_path):
    b = _buck(tmp_path)
    frames = [_frame("file"), _frame("journal", n=2), _frame(""), _frame("file", n=101)]  # the last: too big
    b.handle(frames)
    st = b.stats()
    assert st["inputs"]["file"] == {"events": 3, "bytes": len(frames[0]), "dropped": 1, "errors": 0}
    assert st["inputs"]["journal"]["events"] == 2
    assert st["senders"]["prod/web-1"]["events"] == 8
    assert st["senders"]["prod/web-1"]["inputs"] == {"file": 3, "journal": 2}
    b.buckets.close()


def test_a_sender_naming_endless_kinds_costs_the_buck_a_bounded_table(tmp_path):
    b = _buck(tmp_path)
    b.handle([_frame(f"k{i}", n=1) for i in range(MAX_INPUTS + 50)])
    st = b.stats()
    assert len(st["inputs"]) == MAX_INPUTS + 1 and st["inputs"]["other"]["events"] == 50
    assert sum(st["senders"]["prod/web-1"]["inputs"].values()) == MAX_INPUTS + 50
    assert len(st["senders"]["prod/web-1"]["inputs"]) == MAX_INPUTS + 1
    b.buckets.close()
