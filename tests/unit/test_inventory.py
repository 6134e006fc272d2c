"""The tailer's inventory records: a round trip through events and frames, and bad records are refused."""

import pytest

from helios import codec
from helios.tail import inventory
from helios.tail.inventory import Record


def rec(**kw):
    base = dict(identity=bytes(range(16)), paths=("/var/log/app.log", "/var/log/app.log.1.gz"), size=12345,
                read=12000, first=0, end="corrupt", detail="the gzip stream ends early", seq=7)
    base.update(kw)
    return Record(**base)


def test_an_inventory_record_round_trips_through_an_event_and_a_frame():
    r = rec()
    e = inventory.to_event(r, "web-1", 1_700_000_000_000_000_000, "prod")
    [back] = codec.decode(codec.encode_events("prod", "web-1", [e]))[1]
    assert inventory.is_inventory(back) and back.app == inventory.APP and back.offset is None
    assert inventory.from_event(back) == r
    assert back.severity == 4 and b"not" not in back.message and b"12,345 bytes seen" in back.message


def test_the_same_record_sent_twice_has_one_id_and_another_record_another():
    a = inventory.to_event(rec(), "web-1", 1, "prod")
    assert inventory.to_event(rec(), "web-1", 2, "prod").id == a.id
    assert inventory.to_event(rec(size=99999), "web-1", 1, "prod").id != a.id
    assert inventory.to_event(rec(), "web-2", 1, "prod").id != a.id


def test_a_record_being_read_is_info():
    assert inventory.to_event(rec(end="", detail=""), "h", 1).severity == 6


@pytest.mark.parametrize("bad", [{"inventory": 2}, {"identity": "zz"}, {"size": "12"}, {"end": "eaten"},
                                 {"paths": [1]}, {"seq": None}])
def test_a_malformed_inventory_record_is_refused_with_a_reason(bad):
    e = inventory.to_event(rec(), "h", 1)
    e = e._replace(fields={**e.fields, **bad})
    with pytest.raises(ValueError):
        inventory.from_event(e)
