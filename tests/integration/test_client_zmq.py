"""The client library over ZeroMQ, against real bucks: each batch goes to two
bucks, like a tailer's, and what no buck takes is logged."""

import logging
import re


from helios.wire.ports import free_endpoint
from tests.helpers import buck_events, poll_until


def seqs(data):
    return sorted(e.fields["seq"] for e in buck_events(data)[0])


def test_recorded_events_reach_two_bucks_whole(buck, recorders):
    _, ep_a, data_a = buck("a")
    _, ep_b, data_b = buck("b")
    r = recorders(bucks=[ep_a, ep_b], app="shop", environment="stage")
    for i in range(1000):
        r.record({"message": f"event {i}", "seq": i, "severity": "notice"})
    assert r.flush(10)
    for data in (data_a, data_b):
        poll_until(lambda: seqs(data) == list(range(1000)), what=f"every event in {data.name}")
    e = buck_events(data_a)[0][0]
    assert (e.environment, e.app, e.severity, e.source, e.offset) == ("stage", "shop", 5, "", None)


def test_events_go_on_into_the_other_buck_while_one_is_down(buck, recorders):
    _, ep_a, data_a = buck("a")
    r = recorders(bucks=[ep_a, free_endpoint()])  # the second buck never comes up
    for i in range(500):
        r.record(message=f"event {i}", seq=i)
    assert r.flush(10)
    poll_until(lambda: seqs(data_a) == list(range(500)), what="every event in buck a")


def test_a_batch_no_buck_takes_within_retry_for_is_logged_whole(recorders, caplog):
    r = recorders(bucks=[free_endpoint()], retry_for=0.3)
    caplog.set_level(logging.ERROR, "helios.client")
    for i in range(5):
        r.record(message=f"event {i}", seq=i)
    assert r.flush(10)
    lines = [m for m in caplog.messages if m.startswith("Helios could not deliver event")]
    assert len(lines) == 5
    assert all("no buck took the batch within 0.3 s" in m for m in lines)
    assert sorted(int(re.search(r'"seq": (\d+)', m)[1]) for m in lines) == list(range(5))
