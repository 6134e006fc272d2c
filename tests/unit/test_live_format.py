"""The live feed format (helios.wire.live): topics, messages, sequence gaps, drop reports."""

import pytest

from helios.errors import FrameError
from helios.model import Event, random_id
from helios.wire import live


def event(app="sshd", severity=3, host="web-1", message=b"hello", t=1_000):
    return Event(random_id(), t, t, host, app, severity, "/var/log/x", 0, message, None, environment="prod")


def rows(events):
    return [tuple(e)[:len(Event._fields) - 1] for e in events]


def test_a_topic_is_environment_app_severity_host_each_ended_by_nul():
    assert live.topic("prod", "sshd", 3, "web-1") == b"prod\0sshd\x003\0web-1\0"
    assert live.topic("prod", "", None, "h") == b"prod\0\0-\0h\0"


def test_a_prefix_for_an_app_does_not_match_a_longer_app_name():
    p = live.prefix("prod", "ssh")
    assert not live.topic("prod", "sshd", 3, "h").startswith(p)
    assert live.topic("prod", "ssh", 3, "h").startswith(p)


def test_a_prefix_stops_at_the_first_level_not_given():
    assert live.prefix("prod", None, 3, "h") == b"prod\0"
    assert live.prefix() == b""
    assert live.prefix("prod", "a", None, any_severity=False) == b"prod\0a\0-\0"


def test_parse_topic_is_the_inverse_of_topic():
    assert live.parse_topic(live.topic("prod", "sshd", None, "web-1")) == ("prod", "sshd", None, "web-1")


def test_a_message_with_meta_reads_back_its_events_and_meta():
    evs = [event(), event(message=b"\xff binary")]
    t = live.topic("prod", "sshd", 3, "web-1")
    meta = live.Meta("buck-a", 42, 7, 100)
    frames = live.message("prod", "web-1", rows(evs), 1_000, 1_000, t, meta)
    assert len(frames) == 3 and frames[0] == t
    got, got_meta = live.read_message(frames)
    assert got == evs and got_meta == meta
    assert live.read(frames) == evs


def test_a_two_frame_message_of_the_first_cut_still_reads():
    evs = [event()]
    frames = live.message("prod", "web-1", rows(evs), 1_000, 1_000, b"t")
    assert len(frames) == 2
    assert live.read_message(frames) == (evs, None)


@pytest.mark.parametrize("frames", [[b"t"], [b"t", b"garbage"], [b"t", b"a", b"b", b"c"]])
def test_a_malformed_live_message_is_a_frame_error(frames):
    with pytest.raises(FrameError):
        live.read_message(frames)


def test_a_malformed_meta_is_a_frame_error():
    frames = live.message("prod", "h", rows([event()]), 1, 1, b"t")
    with pytest.raises(FrameError, match="meta"):
        live.read_message(frames + [b"\x93\x01\x02\x03"])


def test_group_rows_keeps_order_within_each_topic():
    evs = [event(app="a", message=b"1"), event(app="b", message=b"2"), event(app="a", message=b"3")]
    groups = live.group_rows("prod", rows(evs))
    assert [r[8] for r in groups[live.topic("prod", "a", 3, "web-1")]] == [b"1", b"3"]
    assert [r[8] for r in groups[live.topic("prod", "b", 3, "web-1")]] == [b"2"]


def test_gaps_count_the_messages_and_events_missed_on_a_topic():
    g = live.Gaps()
    assert g.see(b"t", live.Meta("a", 1, 0, 0), 5) == 0
    assert g.see(b"t", live.Meta("a", 1, 1, 5), 5) == 0
    # messages 2 and 3 (10 events) never came
    assert g.see(b"t", live.Meta("a", 1, 4, 20), 1) == 10
    assert g.messages == {1: 2} and g.total_events == 10 and g.by_buck() == {"a": 10}


def test_gaps_do_not_count_the_first_message_seen_or_another_topic():
    g = live.Gaps()
    g.see(b"t1", live.Meta("a", 1, 50, 500), 1)
    g.see(b"t2", live.Meta("a", 1, 0, 0), 1)
    g.see(b"t1", live.Meta("a", 1, 51, 501), 1)
    assert g.total_events == 0


def test_a_restarted_buck_is_a_new_incarnation_not_a_gap():
    g = live.Gaps()
    g.see(b"t", live.Meta("a", 1, 9, 90), 10)
    g.see(b"t", live.Meta("a", 2, 0, 0), 10)
    assert g.total_events == 0


def test_a_drop_report_reads_back_as_it_was_sent():
    g = live.Gaps()
    g.see(b"t", live.Meta("a", 11, 0, 0), 1)
    g.see(b"t", live.Meta("a", 11, 3, 30), 1)
    sub, counts = live.read_report(live.report(b"sub-1", g))
    assert sub == b"sub-1" and counts == {11: (2, 29)}


def test_anything_else_is_not_a_drop_report():
    with pytest.raises(FrameError):
        live.read_report([b"\x02other", b""])
    with pytest.raises(FrameError):
        live.read_report([live.REPORT + b"x", b"\xc1"])


def test_a_forgotten_topic_starts_afresh_so_what_others_read_meanwhile_is_no_gap():
    g = live.Gaps()
    g.see(b"kept", live.Meta("a", 1, 0, 0), 5)
    g.see(b"gone", live.Meta("a", 1, 0, 0), 5)
    g.forget(lambda t: t.startswith((b"kept",)))
    # Another subscriber read messages 1..9 of "gone" while we were not subscribed.
    assert g.see(b"gone", live.Meta("a", 1, 10, 50), 5) == 0
    # A topic held throughout still counts its gaps.
    assert g.see(b"kept", live.Meta("a", 1, 3, 15), 5) == 10
