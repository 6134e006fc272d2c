"""A buck's live feed (PUB): what it publishes, to whom, and what it costs."""

import json
import time

import zmq

from helios import codec
from helios.model import Event, random_id
from helios.wire import live
from tests.helpers import buck_events, poll_until


def stats(data):
    try:
        return json.loads((data / "stats.json").read_text())
    except (OSError, ValueError):
        return None


def event(app, severity=3, host="web-1", message=b"m"):
    t = time.time_ns()
    return Event(random_id(), t, t, host, app, severity, "", None, message, None)


def sender(ep):
    push = zmq.Context.instance().socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 2000)
    push.connect(ep)
    return push


def listener(data, *prefixes):
    """An XSUB on the buck's live feed, subscribed once the buck has seen the subscriptions."""
    sock = zmq.Context.instance().socket(zmq.XSUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(stats(data)["publish"])
    for p in prefixes:
        sock.send(b"\x01" + p)
    poll_until(lambda: stats(data)["live"]["subscriptions"] >= len(set(prefixes)), what="the subscriptions")
    return sock


def receive(sock, until_events, timeout=10.0):
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < until_events and time.monotonic() < deadline:
        if sock.poll(100):
            frames = sock.recv_multipart()
            events, meta = live.read_message(frames)
            got += [(frames[0], e, meta) for e in events]
    return got


def test_with_nobody_watching_a_buck_decodes_no_frame(buck):
    _, ep, data = buck("a")
    push = sender(ep)
    for _ in range(5):
        push.send(codec.encode_events("prod", "h", [event("sshd")]))
    poll_until(lambda: stats(data)["events"] == 5, what="5 events stored")
    live_stats = poll_until(lambda: stats(data)["live"]["frames_skipped"] == 5 and stats(data)["live"],
                            what="5 frames skipped")
    assert live_stats["frames_decoded"] == 0 and live_stats["messages"] == 0
    push.close()


def test_a_subscriber_gets_each_stored_event_on_its_topic_with_a_sequence(buck):
    _, ep, data = buck("a")
    sub = listener(data, b"prod\0")
    push = sender(ep)
    evs = [event("sshd", 3, message=b"one"), event("nginx", 6, message=b"two"), event("sshd", 3, message=b"three")]
    push.send(codec.encode_events("prod", "web-1", evs))
    got = receive(sub, 3)
    by_msg = {e.message: (t, e, m) for t, e, m in got}
    assert set(by_msg) == {b"one", b"two", b"three"}
    assert by_msg[b"two"][0] == live.topic("prod", "nginx", 6, "web-1")
    assert by_msg[b"one"][0] == by_msg[b"three"][0] == live.topic("prod", "sshd", 3, "web-1")
    assert {e.id for _, e, _ in got} == {e.id for e in evs}
    meta = by_msg[b"one"][2]
    assert meta.buck == "buck-a" and meta.seq == 0 and meta.events_before == 0
    push.send(codec.encode_events("prod", "web-1", [event("sshd", 3, message=b"four")]))
    (_, _, meta4), = receive(sub, 1)
    assert (meta4.seq, meta4.events_before) == (1, 2)
    sub.close()
    push.close()


def test_a_buck_decodes_only_environments_and_sends_only_topics_someone_wants(buck):
    _, ep, data = buck("a")
    sub = listener(data, live.prefix("prod", "sshd"))
    push = sender(ep)
    push.send(codec.encode_events("test", "web-1", [event("sshd", message=b"other env")]))
    push.send(codec.encode_events("prod", "web-1", [event("nginx", message=b"other app"),
                                                     event("sshd", message=b"wanted")]))
    got = receive(sub, 1)
    assert [e.message for _, e, _ in got] == [b"wanted"]
    s = poll_until(lambda: stats(data)["live"]["messages"] == 1 and stats(data)["live"], what="stats")
    assert s["frames_skipped"] == 1 and s["frames_decoded"] == 1 and s["events"] == 1
    assert not sub.poll(300), "an event nobody subscribed to was sent"
    sub.close()
    push.close()


def test_when_the_last_subscriber_leaves_the_buck_stops_decoding(buck):
    _, ep, data = buck("a")
    sub = listener(data, b"")
    sub.close()
    poll_until(lambda: stats(data)["live"]["subscriptions"] == 0, what="the unsubscription")
    push = sender(ep)
    push.send(codec.encode_events("prod", "h", [event("sshd")]))
    s = poll_until(lambda: stats(data)["live"]["frames_skipped"] == 1 and stats(data)["live"], what="stats")
    assert s["frames_decoded"] == 0
    push.close()


def test_a_frame_that_passes_its_checks_but_does_not_decode_is_stored_and_counted_not_published(buck):
    _, ep, data = buck("a")
    sub = listener(data, b"")
    # A valid frame whose payload is not an array of events: the buck stores it as it came.
    rows = [["not", "an", "event"]]
    frame = codec.encode_rows("prod", "h", rows, 1, 1)
    push = sender(ep)
    push.send(frame)
    push.send(codec.encode_events("prod", "h", [event("sshd", message=b"fine")]))
    got = receive(sub, 1)
    assert [e.message for _, e, _ in got] == [b"fine"]
    s = poll_until(lambda: stats(data)["frames"] == 2 and stats(data), what="both frames stored")
    assert s["live"]["frames_undecodable"] == 1
    sub.close()
    push.close()


def test_the_live_feed_can_be_turned_off(buck, tmp_path):
    _, ep, data = buck("a", None, "--publish", "")
    s = stats(data)
    assert s["publish"] == "" and s["live"] is None
    push = sender(ep)
    push.send(codec.encode_events("prod", "h", [event("sshd")]))
    poll_until(lambda: len(buck_events(data)[0]) == 1, what="the event stored")
    push.close()


def test_a_subscriber_of_a_whole_environment_gets_stored_frames_without_the_buck_decoding_them(buck):
    _, ep, data = buck("a")
    sock = listener(data, live.WHOLE + b"prod\x00")
    push = sender(ep)
    sent = [event("sshd"), event("cron", 6), event("nginx", 4, host="web-2")]
    push.send(codec.encode_events("prod", "h", sent))
    push.send(codec.encode_events("staging", "h", [event("sshd")]))
    got = receive(sock, 3)
    assert [e.id for _, e, _ in got] == [e.id for e in sent]
    assert {t for t, _, _ in got} == {live.whole_topic("prod")}
    s = poll_until(lambda: stats(data)["events"] == 4 and stats(data)["live"], what="4 events stored")
    assert s["frames_whole"] == 1 and s["frames_decoded"] == 0
    assert not sock.poll(300)  # nothing of staging
    push.close()
    sock.close()


def test_prefixes_that_name_no_app_take_the_whole_batch_stream():
    assert live.subscriptions([b"", b"prod\x00", b"prod\x00sshd\x00"]) == sorted(
        [live.WHOLE, live.WHOLE + b"prod\x00", b"prod\x00sshd\x00"])


def test_two_bucks_on_one_host_take_their_live_feed_next_to_their_ingest_port(procs, tmp_path):
    from helios.wire.ports import free_run

    datas = []
    taken: set[int] = set()
    for name in ("a", "b"):
        port = free_run(3, taken=taken)  # ingest, live feed (+ 1) and bucket queries (+ 2)
        taken |= {port, port + 1, port + 2}
        data = tmp_path / name
        procs("buck", "--ingest", f"tcp://127.0.0.1:{port}", "--data-dir", str(data), "--stats-interval", "0.2")
        datas.append((port, data))
    for port, data in datas:
        s = poll_until(lambda: stats(data), what="the buck to start")
        assert s["publish"] == f"tcp://127.0.0.1:{port + 1}"
