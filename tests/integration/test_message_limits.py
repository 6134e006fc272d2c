"""Whole-message limits (all parts together) on the sockets others send to,
with real processes: a message over them is refused whole, counted and
logged, and costs the buck no memory that stays (issue 17, attack 7)."""

from __future__ import annotations

import json

import zmq

from helios import codec
from helios.model import Event, random_id
from helios.query import protocol as p
from helios.query.client import QueryClient
from tests.helpers import buck_query, poll_until
from tests.integration.test_metrics import metrics_address, value

MiB = 1024 * 1024


def stats(data) -> dict:
    try:
        return json.loads((data / "stats.json").read_text())
    except (OSError, ValueError):
        return {}


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def frame(message: bytes = b"fine") -> bytes:
    t = 1_700_000_000_000_000_000
    return codec.encode_events("prod", "web-1", [Event(random_id(), t, t, "web-1", "app", 6, "", None, message, None)])


def config(tmp_path, **buck) -> str:
    path = tmp_path / "buck.toml"
    path.write_text("[buck]\n" + "".join(f"{k} = {v!r}\n" for k, v in buck.items()))
    return str(path)


def pusher(ep):
    push = zmq.Context.instance().socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 5000)
    push.connect(ep)
    return push


def refused(data, socket: str) -> dict:
    return stats(data).get("refused_messages", {}).get(socket, {})


def test_a_message_of_48_parts_of_16_mib_is_refused_whole_and_the_buck_gives_the_memory_back(buck):
    proc, ep, data = buck("a")
    base = rss_mib(proc.p.pid)
    push = pusher(ep)
    part = b"\0" * (16 * MiB)  # one buffer, sent 48 times without a copy
    push.send_multipart([part] * 48, copy=False)
    poll_until(lambda: refused(data, "ingest").get("too large") == 1, timeout=120, what="the message refused")
    # The 768 MiB went through libzmq and were dropped; none of it stays in the buck.
    poll_until(lambda: rss_mib(proc.p.pid) < base + 64, timeout=20,
               what=f"the buck's RSS back near {base:.0f} MiB")
    # It stays up and takes what is fine, and the parts were not taken for frames.
    push.send(frame())
    poll_until(lambda: stats(data).get("events") == 1, what="the next batch stored")
    assert proc.alive()
    assert stats(data)["bad_frames"] == {}
    assert ("refused a message of 48 parts and 805306368 bytes from 127.0.0.1 on its ingest socket: too large"
            in proc.output())
    push.close()


def test_a_message_of_too_many_parts_is_refused_whole_and_the_next_one_is_stored(buck, tmp_path):
    proc, ep, data = buck("a", None, "-c", config(tmp_path, max_message_parts=100), "--metrics", "127.0.0.1:0")
    push = pusher(ep)
    push.send_multipart([frame()] * 1000)  # valid frames, but too many in one message
    push.send_multipart([frame(b"one"), frame(b"two")])
    poll_until(lambda: stats(data).get("events") == 2, what="the next message stored")
    assert refused(data, "ingest") == {"too many parts": 1}
    assert stats(data)["frames"] == 2
    assert "1000 parts" in proc.output() and "too many parts" in proc.output()
    assert value(metrics_address(data / "stats.json"), "helios_refused_messages_total",
                 reason="ingest: too many parts") == 1
    push.close()


def test_a_configured_message_limit_holds_whatever_the_size_of_each_part(buck, tmp_path):
    _, ep, data = buck("a", None, "-c", config(tmp_path, max_frame_bytes=MiB, max_message_bytes=4 * MiB))
    push = pusher(ep)
    part = b"\0" * (MiB // 2)
    push.send_multipart([part] * 48, copy=False)  # 24 MiB in parts of 0.5 MiB, each under max_frame_bytes
    push.send_multipart([frame()] * 3)
    poll_until(lambda: stats(data).get("events") == 3, what="the next message stored")
    assert refused(data, "ingest") == {"too large": 1}
    assert stats(data)["bad_frames"] == {}
    push.close()


def test_a_query_of_many_parts_over_query_max_request_is_refused_and_queries_go_on(buck):
    proc, _, data = buck("a")
    endpoint = buck_query(data)
    dealer = zmq.Context.instance().socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(endpoint)
    part = b"\0" * (512 * 1024)  # each part under the default query_max_request (1 MiB)
    dealer.send_multipart([b"", *([part] * 48)], copy=False)
    poll_until(lambda: refused(data, "query").get("too large") == 1, timeout=30, what="the query refused")
    assert not dealer.poll(200), "a refused query gets no reply"
    with QueryClient(timeout=10) as client:
        reply = client.ask(endpoint, p.StatsRequest())
    assert reply.ok
    assert proc.alive()
    dealer.close()


def test_the_relay_refuses_a_message_over_its_limit_and_spools_the_next(procs, buck, tmp_path):
    _, ep, data = buck("a")
    cfg = tmp_path / "relay.toml"
    cfg.write_text(f"[relay]\nmax_frame_bytes = {MiB}\nmax_message_bytes = {2 * MiB}\nmax_message_parts = 10\n")
    listen = f"ipc://{tmp_path}/run/relay.sock"
    state = tmp_path / "relay"
    relay = procs("relay", "-c", str(cfg), "--listen", listen, "--state-dir", str(state), "--copies", "1",
                  "--buck", ep, "--stats-interval", "0.1", name="relay")
    poll_until(lambda: stats(state) or not relay.alive(), what="the relay to start")
    push = pusher(listen)
    push.send_multipart([b"\0" * (MiB // 2)] * 48, copy=False)
    push.send_multipart([frame()] * 11)
    push.send(frame())
    poll_until(lambda: stats(state).get("frames") == 1, what="the next frame spooled")
    assert stats(state)["refused_messages"] == {"too large": 1, "too many parts": 1}
    poll_until(lambda: stats(data).get("events") == 1, what="the frame at the buck")
    assert relay.alive()
    assert "Relay refused a message of 48 parts" in relay.output()
    push.close()


def test_what_a_live_subscriber_sends_up_is_limited_too(buck):
    from helios.wire import live

    proc, _, data = buck("a")
    pub = stats(data)["publish"]
    ctx = zmq.Context.instance()
    noisy = ctx.socket(zmq.XSUB)
    noisy.setsockopt(zmq.LINGER, 0)
    noisy.connect(pub)
    noisy.send_multipart([b"\x02not a report"] * 10)  # ten parts: over the four a report may have
    poll_until(lambda: refused(data, "live feed").get("too many parts") == 1, what="the message refused")
    huge = ctx.socket(zmq.XSUB)
    huge.setsockopt(zmq.LINGER, 0)
    huge.connect(pub)
    huge.send(b"\x01" + b"p" * (64 * 1024))  # over MAXMSGSIZE: libzmq ends that connection
    fine = ctx.socket(zmq.XSUB)
    fine.setsockopt(zmq.LINGER, 0)
    fine.connect(pub)
    fine.send(b"\x01" + live.prefix("prod"))
    poll_until(lambda: stats(data)["live"]["subscriptions"] == 1, what="the fine subscription")
    assert proc.alive()
    for s in (noisy, huge, fine):
        s.close()
