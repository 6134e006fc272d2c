"""When the relay stops reading its syslog connections (Relay.spool_full):
exactly when more appends would make the spool prune a bucket no buck has had."""

from __future__ import annotations

import os
import time

from helios.config import load
from helios.services.relay import Relay
from helios.tail.spool import Spool

MIB = 1024 * 1024


def relay_with_spool(tmp_path) -> Relay:
    cfg = load(None, {"relay.bucks": ("tcp://127.0.0.1:9",), "relay.copies": 1, "relay.state_dir": str(tmp_path)}).relay
    relay = Relay(cfg)
    relay.spool = Spool(tmp_path / "spool", 60, max_bytes=MIB, max_age=86400, jitter=0)
    relay.sent = {}
    return relay


def fill(spool: Spool, nbytes: int, when: float) -> None:
    for _ in range(nbytes // (64 * 1024)):
        spool.append("default", os.urandom(64 * 1024), now=when)
    spool.sync()
    spool._listing = None   # (the listing is cached for a second)


def test_a_spool_with_room_is_not_full(tmp_path):
    relay = relay_with_spool(tmp_path)
    fill(relay.spool, MIB // 2, time.time() - 600)
    assert not relay.spool_full()


def test_a_spool_at_its_limit_whose_oldest_bucket_no_buck_had_is_full_until_it_is_re_sent(tmp_path):
    relay = relay_with_spool(tmp_path)
    fill(relay.spool, MIB, time.time() - 600)
    assert relay.spool_full()
    (name, _, _), = relay.spool.buckets()
    relay.sent[name.relpath()] = 1          # the re-send delivered it: pruning it loses nothing
    assert not relay.spool_full()


def test_a_spool_at_its_limit_with_only_its_open_bucket_is_full(tmp_path):
    relay = relay_with_spool(tmp_path)
    fill(relay.spool, MIB, time.time())     # nothing closed: nothing can be pruned yet
    assert relay.spool_full()


def test_what_was_spooled_since_the_cached_listing_counts_at_once(tmp_path):
    from helios.wire.fanout import Fanout
    from helios.wire.sockets import SocketFactory

    cfg = load(None, {"relay.bucks": ("tcp://127.0.0.1:9",), "relay.copies": 1, "relay.state_dir": str(tmp_path),
                      "relay.live_wait": 0.0}).relay
    relay = Relay(cfg)
    # A day's window: no new window (which makes the spool list itself again) during the test.
    relay.spool = Spool(tmp_path / "spool", 86400, max_bytes=MIB, max_age=86400, jitter=0)
    relay.sent = {}
    relay.fanout = Fanout(SocketFactory(), list(cfg.bucks), 1)
    try:
        assert relay.take_syslog(os.urandom(64 * 1024), 1, 64 * 1024, True)
        assert not relay.spool_full()           # the listing is now cached: 64 KiB
        cached = relay.spool.buckets()
        for _ in range(14):
            assert relay.take_syslog(os.urandom(64 * 1024), 1, 64 * 1024, True)
        assert relay.spool.buckets() is cached  # still the listing of 64 KiB ...
        assert relay.spool_full()               # ... but 960 KiB are spooled
    finally:
        relay.fanout.close(linger_ms=0)
        relay.spool.close()
