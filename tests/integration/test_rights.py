"""Rights per key (helios.wire.rights), against real buck processes: each
allow-listed CURVE key does only what its role allows, in its environments;
a buck prunes only what the asker's own record shows indexed and archived;
with CURVE off, bucket contents are read and deleted only from the buck's
host. Attack #1 of issue 17 replayed: a tailer's key asks to list, fetch and
prune."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import zmq

from helios import codec
from helios.model import Event
from helios.query import protocol as p
from helios.query.client import QueryClient
from helios.store import layout
from helios.store.records import RecordWriter
from helios.wire import curve
from helios.wire.ports import free_endpoint
from helios.wire.sockets import SocketFactory
from tests.helpers import ROOT, buck_query, poll_until

OLD = 1_706_659_200  # 2024-01-31T00:00:00Z: windows long closed


def helios(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "helios", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout)


KEYS = {  # name -> keygen options
    "server": (),
    "tailer": ("--role", "sender", "--env", "prod"),
    "reader": ("--role", "reader", "--env", "prod"),
    "web": ("--role", "reader", "--env", "*"),
    "porter": ("--role", "porter", "--env", "*"),
    "porter-prod": ("--role", "porter", "--env", "prod"),
    "legacy": (),  # made before roles: no role declared
}


@pytest.fixture
def keys(tmp_path):
    kdir, allow = tmp_path / "keys", tmp_path / "allow"
    allow.mkdir()
    for name, opts in KEYS.items():
        r = helios("keygen", name, "--dir", str(kdir), *opts)
        assert r.returncode == 0, r.stderr
        if name != "server":
            (allow / f"{name}.key").write_bytes((kdir / f"{name}.key").read_bytes())
    buck_cfg = tmp_path / "buck.toml"
    buck_cfg.write_text(f'[security]\ncurve = true\nserver_secret_key = "{kdir}/private/server.key_secret"\n'
                        f'allow_dir = "{allow}"\n')
    k = SimpleNamespace(dir=kdir, allow=allow, buck=str(buck_cfg))
    k.client = lambda name: curve.Curve(own=curve.read_secret(kdir / "private" / f"{name}.key_secret"),
                                        server_public=curve.read_public(kdir / "server.key"))
    return k


def plant(data: Path, env: str, start: int, payload: bytes = b"x") -> str:
    path = layout.bucket_path(data / "buckets", env, start, 60)
    with RecordWriter(path) as w:
        w.append(payload)
    return layout.bucket_id(layout.BucketName(env, start, 60))


def held(data: Path) -> set[str]:
    return {layout.bucket_id(n) for n, _ in layout.list_buckets(data / "buckets")}


def stats_of(data: Path) -> dict:
    try:
        return json.loads((data / "stats.json").read_text())
    except (OSError, ValueError):
        return {}


class Asker:
    """A query client with one key (a real CURVE DEALER socket)."""

    def __init__(self, keys, name: str | None, query: str) -> None:
        c = keys.client(name) if name else None
        self.qc = QueryClient(timeout=5.0, factory=SocketFactory(zmq.Context(), curve=c))
        self.q = query

    def ask(self, request):
        return self.qc.ask_all([self.q], request)[self.q]  # the reply, an error reply too

    def close(self):
        self.qc.close()
        self.qc.factory.context.destroy(linger=0)


@pytest.fixture
def curve_buck(keys, buck):
    p_, ingest, data = buck("a", None, "-c", keys.buck)
    q = buck_query(data)
    ids = SimpleNamespace(prod=plant(data, "prod", OLD), prod2=plant(data, "prod", OLD + 60),
                          prod3=plant(data, "prod", OLD + 120), staging=plant(data, "staging", OLD))
    askers: list[Asker] = []

    def asker(name):
        a = Asker(keys, name, q)
        askers.append(a)
        return a
    yield SimpleNamespace(proc=p_, ingest=ingest, data=data, q=q, ids=ids, asker=asker)
    for a in askers:
        a.close()


def test_a_tailers_key_can_neither_list_fetch_nor_prune_any_environment_its_own_included(curve_buck):
    """Attack #1: a tailer's allow-listed key asks a buck's query endpoint to
    list, fetch (another environment's bucket) and prune (all, its own too)."""
    b = curve_buck
    tailer = b.asker("tailer")
    everything = held(b.data)
    for request in (p.ListRequest(), p.ListRequest("prod"), p.FetchRequest(b.ids.staging),
                    p.FetchRequest(b.ids.prod), p.PruneRequest(tuple(sorted(everything))),
                    p.PruneRequest((b.ids.prod,)), p.RecordRequest("fake-porter", (b.ids.prod,), (b.ids.prod,)),
                    p.ReportRequest("fake-porter", {}), p.StatsRequest()):
        reply = tailer.ask(request)
        assert not reply.ok and "sender" in reply.reason and "may not" in reply.reason, (request, reply)
    # A key made before roles existed (no role declared) is a sender too.
    legacy = b.asker("legacy").ask(p.ListRequest())
    assert not legacy.ok and "no role declared" in legacy.reason
    assert held(b.data) == everything
    queries = poll_until(lambda: (stats_of(b.data).get("queries") or {}).get("refused_stats") and
                         stats_of(b.data)["queries"], what="the refusals in the buck's stats")
    assert queries["refused_prune"] == 2 and queries["refused_fetch"] == 2 and queries["refused_list"] == 3


def test_a_reader_of_one_environment_lists_and_fetches_only_that_one_and_never_prunes(curve_buck):
    b = curve_buck
    reader = b.asker("reader")
    listed = reader.ask(p.ListRequest())
    assert listed.ok and {e.id for e in listed.buckets} == {b.ids.prod, b.ids.prod2, b.ids.prod3}
    assert reader.ask(p.FetchRequest(b.ids.prod)).records == (b"x",)
    for request in (p.FetchRequest(b.ids.staging), p.ListRequest("staging")):
        reply = reader.ask(request)
        assert not reply.ok and "may not" in reply.reason and "environment staging" in reply.reason
    reply = reader.ask(p.PruneRequest((b.ids.prod,)))
    assert not reply.ok and "porter or admin" in reply.reason
    # The same buck serves everything to a reader of every environment.
    assert {e.id for e in b.asker("web").ask(p.ListRequest()).buckets} == held(b.data)
    assert b.ids.prod in held(b.data)


def test_a_porter_key_prunes_only_what_its_own_record_shows_indexed_and_archived(curve_buck):
    b = curve_buck
    porter = b.asker("porter")
    ids = b.ids
    # No record yet: nothing goes, however it asks.
    reply = porter.ask(p.PruneRequest((ids.prod, ids.staging)))
    assert reply.ok and reply.deleted == () and all("no record" in why for why in reply.refused.values())
    # Its record: prod indexed and archived, prod2 indexed only, prod3 not at all.
    assert porter.ask(p.RecordRequest("porter@test", indexed=(ids.prod, ids.prod2), archived=(ids.prod,))).ok
    # Another porter key's record does not count for this one.
    other = b.asker("porter-prod")
    now = int(time.time())
    open_id = layout.bucket_id(layout.BucketName("prod", now - now % 60, 60))
    reply = porter.ask(p.PruneRequest((ids.prod, ids.prod2, ids.prod3, open_id)))
    assert reply.deleted == (ids.prod,)
    assert reply.refused[ids.prod2].startswith("not archived")
    assert reply.refused[ids.prod3].startswith("not indexed")
    assert ids.prod2 in held(b.data) and ids.prod3 in held(b.data)
    reply = other.ask(p.PruneRequest((ids.prod2,)))
    assert "no record" in reply.refused[ids.prod2]
    # A porter of prod only may not touch staging, even with a record saying it is done.
    assert other.ask(p.RecordRequest("porter@prod", (ids.staging,), (ids.staging,))).ok
    reply = other.ask(p.PruneRequest((ids.staging,)))
    assert "may not prune in environment staging" in reply.refused[ids.staging]
    assert ids.staging in held(b.data)


def test_an_open_window_is_never_pruned_even_when_the_record_says_it_is_done(curve_buck):
    b = curve_buck
    now = int(time.time())
    current = layout.BucketName("prod", now - now % 60 + 3600, 60)  # a window an hour ahead: still open
    path = layout.bucket_path(b.data / "buckets", "prod", current.start, 60)
    with RecordWriter(path) as w:
        w.append(b"still open")
    bid = layout.bucket_id(current)
    porter = b.asker("porter")
    assert porter.ask(p.RecordRequest("porter@test", (bid,), (bid,))).ok
    reply = porter.ask(p.PruneRequest((bid,)))
    assert reply.deleted == () and "open" in reply.refused[bid]
    assert path.exists()


def test_a_sender_key_pushing_into_an_environment_it_does_not_have_is_refused_and_counted(keys, curve_buck):
    b = curve_buck
    ctx = zmq.Context()
    try:
        push = SocketFactory(ctx, curve=keys.client("tailer")).make("sender", b.ingest)
        poll_until(lambda: push.poll(100, zmq.POLLOUT), timeout=10, what="the tailer key's connection")
        now = time.time_ns()

        def frame(env: str, text: bytes) -> bytes:
            return codec.encode_events(env, "web-1", [Event(os.urandom(16), now, now, "web-1", "app", 6, "", None,
                                                            text, None, b"", env)])
        for env in ("staging", "prod", "other"):
            push.send(frame(env, f"pushed into {env}".encode()))
        poll_until(lambda: stats_of(b.data).get("events", 0) >= 1 and
                   sum(stats_of(b.data).get("bad_frames", {}).values()) >= 2, timeout=10,
                   what="the buck to take prod and refuse the others")
        push.close(linger=0)
    finally:
        ctx.destroy(linger=0)
    s = stats_of(b.data)
    assert s["bad_frames"] == {"environment not allowed for the key": 2} and s["events"] == 1
    assert {n.environment for n, _ in layout.list_buckets(b.data / "buckets") if n.start > OLD + 600} == {"prod"}
    assert "tailer.key (sender of prod) may not send to staging" in b.proc.output()


def test_only_keys_that_may_read_every_environment_get_onto_the_live_feed(keys, curve_buck, procs, tmp_path):
    b = curve_buck
    pub = poll_until(lambda: stats_of(b.data).get("publish"), what="publish endpoint")
    subs = {}
    for name in ("web", "tailer", "reader"):
        cfg = tmp_path / f"sub-{name}.toml"
        cfg.write_text(f'[security]\ncurve = true\nsecret_key = "{keys.dir}/private/{name}.key_secret"\n'
                       f'server_key = "{keys.dir}/server.key"\n')
        subs[name] = procs("subscribe", "--feed", pub, "--output", "raw", "--reorder-delay", "0", "-c", str(cfg),
                           name=f"sub-{name}")
    poll_until(lambda: "Connected to the live feed" in subs["web"].output(), timeout=15, what="the web key's feed")
    poll_until(lambda: b.proc.output().count("on the live feed: only a reader") >= 2, timeout=15,
               what="the buck to refuse the tailer's and the one-environment reader's keys")
    out = b.proc.output()
    assert "tailer.key (sender of prod)" in out and "reader.key (reader of prod)" in out
    poll_until(lambda: (stats_of(b.data).get("curve") or {}).get("refused_role", 0) >= 2,
               what="the refusals counted in the buck's stats")
    for name in ("tailer", "reader"):
        assert "Connected to the live feed" not in subs[name].output()


# --------------------------------------------------------------------------- CURVE off

def _local_address() -> str | None:
    """An address of this host that is not loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: it only picks a route
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


OUTSIDE = _local_address()
needs_outside = pytest.mark.skipif(OUTSIDE is None, reason="this host has no address besides loopback")


@needs_outside
@pytest.mark.parametrize("allow_remote", [False, True])
def test_with_curve_off_only_the_bucks_host_may_fetch_and_prune_unless_the_config_says_so(buck, tmp_path,
                                                                                       allow_remote):
    """A client connecting to the buck's non-loopback address comes from that
    address (the kernel's source for it), which the buck cannot tell from
    another host's: so it is refused fetch and prune, and allowed them over
    loopback; [buck] query_allow_remote = true lets it."""
    cfg = tmp_path / "buck.toml"
    cfg.write_text(f"[buck]\nquery_allow_remote = {'true' if allow_remote else 'false'}\n")
    port = free_endpoint(OUTSIDE).rsplit(":", 1)[1]
    _, _, data = buck("a", None, "-c", str(cfg), "--query", f"tcp://0.0.0.0:{port}")
    bid = plant(data, "prod", OLD)
    ctx = zmq.Context()
    try:
        qc = QueryClient(timeout=5.0, factory=SocketFactory(ctx, curve=None))
        outside = SimpleNamespace(ask=lambda ep, request: qc.ask_all([ep], request)[ep], close=qc.close)
        remote_ep, local_ep = f"tcp://{OUTSIDE}:{port}", f"tcp://127.0.0.1:{port}"
        listed = outside.ask(remote_ep, p.ListRequest())
        assert listed.ok and [e.id for e in listed.buckets] == [bid]  # listing stays open
        fetched = outside.ask(remote_ep, p.FetchRequest(bid))
        recorded = outside.ask(remote_ep, p.RecordRequest("porter@far", (bid,), (bid,)))
        pruned = outside.ask(remote_ep, p.PruneRequest((bid,)))
        if allow_remote:
            assert fetched.records == (b"x",) and recorded.ok and pruned.deleted == (bid,)
        else:
            for reply in (fetched, recorded, pruned):
                assert not reply.ok and f"a client at {OUTSIDE} is not on this buck's host" in reply.reason
                assert "query_allow_remote" in reply.reason
            assert bid in held(data)
            assert outside.ask(local_ep, p.FetchRequest(bid)).records == (b"x",)
            # From this host too, a prune without the asker's record deletes nothing.
            assert "no record from any porter" in outside.ask(local_ep, p.PruneRequest((bid,))).refused[bid]
            assert outside.ask(local_ep, p.RecordRequest("porter@here", (bid,), (bid,))).ok
            assert outside.ask(local_ep, p.PruneRequest((bid,))).deleted == (bid,)
        assert bid not in held(data)
        outside.close()
    finally:
        ctx.destroy(linger=0)


# --------------------------------------------------------------------------- the porter, end to end

def plant_events(data: Path, env: str, start: int, n: int = 5) -> str:
    """A closed window of real events, as a buck stores them."""
    t = start * 1_000_000_000
    events = [Event(os.urandom(16), t + i * 1000, t, "web-1", "app", 6, "", None, f"{env} line {i}".encode(),
                    None, b"", env) for i in range(n)]
    path = layout.bucket_path(data / "buckets", env, start, 60)
    with RecordWriter(path) as w:
        w.append(codec.encode_events(env, "web-1", events))
    return layout.bucket_id(layout.BucketName(env, start, 60))


def run_porter(keys, tmp_path, key: str, query: str) -> subprocess.CompletedProcess:
    cfg = tmp_path / f"porter-{key}.toml"
    cfg.write_text(f'[security]\ncurve = true\nsecret_key = "{keys.dir}/private/{key}.key_secret"\n'
                   f'server_key = "{keys.dir}/server.key"\n')
    state = tmp_path / f"porter-{key}"
    return helios("porter", "once", "-c", str(cfg), "--query", query, "--state-dir", str(state), "--index-dir",
                  str(state / "index"), "--archive-dir", str(state / "archive"), "--grace", "0", "--timeout", "3",
                  "--archive-age", "0", "--prune-age", "0", "--recent-days", "30", "--workers", "0", timeout=90)


@pytest.mark.parametrize("key,pruned", [("porter", {"prod", "staging"}), ("porter-prod", {"prod"}),
                                        ("web", set())])
def test_the_porter_prunes_with_curve_only_what_it_ported_and_its_key_allows(keys, buck, tmp_path, key, pruned):
    """A porter with a porter key of every environment ports and prunes all;
    with a porter key of prod it sees, ports and prunes prod only; with a
    reader key (web's) it ports what it can read and prunes nothing."""
    _, _, data = buck("a", None, "-c", keys.buck)
    q = buck_query(data)
    start = (int(time.time()) // 60) * 60 - 600
    ids = {env: plant_events(data, env, start) for env in ("prod", "staging")}
    r = run_porter(keys, tmp_path, key, q)
    gone = {env for env, bid in ids.items() if bid not in held(data)}
    assert gone == pruned, (r.stdout, r.stderr)
    if key == "web":
        assert "may not record: that takes a porter or admin key" in r.stderr
    queries = poll_until(lambda: (stats_of(data).get("queries") or {}).get("prune_requests" if pruned else
                                                                           "refused_record") and
                         stats_of(data)["queries"], what="the porter's queries in the buck's stats")
    assert (f"{key}.key" in queries["records"]) is bool(pruned)


def test_keygen_writes_the_role_and_environments_the_buck_reads_and_refuses_half_given_options(tmp_path):
    r = helios("keygen", "tail-1", "--dir", str(tmp_path), "--role", "sender", "--env", "prod,staging")
    assert r.returncode == 0 and "tail-1.key (sender of prod, staging)" in r.stdout, r
    got = curve.read_rights(tmp_path / "tail-1.key")
    assert got.may("send", "staging") and not got.may("send", "dev") and not got.may("read", "prod")
    r = helios("keygen", "ops", "--dir", str(tmp_path), "--role", "admin")
    assert r.returncode == 0 and curve.read_rights(tmp_path / "ops.key").may("prune", "anything")
    r = helios("keygen", "plain", "--dir", str(tmp_path))
    assert r.returncode == 0 and "sender of every environment; no role declared" in r.stdout
    for args in (("x", "--env", "prod"), ("y", "--role", "reader", "--env", "bad/env"),
                 ("--token", "prod", "--role", "sender")):
        r = helios("keygen", *args, "--dir", str(tmp_path))
        assert r.returncode == 2 and "Error" in r.stderr, r
    assert not (tmp_path / "x.key").exists() and not (tmp_path / "y.key").exists()


def test_a_keys_rights_changed_in_its_file_count_after_sighup(keys, curve_buck):
    b = curve_buck
    ctx = zmq.Context()
    try:
        push = SocketFactory(ctx, curve=keys.client("tailer")).make("sender", b.ingest)
        poll_until(lambda: push.poll(100, zmq.POLLOUT), timeout=10, what="the tailer key's connection")
        now = time.time_ns()

        def frame(env: str) -> bytes:
            return codec.encode_events(env, "web-1", [Event(os.urandom(16), now, now, "web-1", "app", 6, "", None,
                                                            b"x", None, b"", env)])
        push.send(frame("staging"))
        poll_until(lambda: stats_of(b.data).get("bad_frames"), what="the staging frame to be refused")
        allowed = keys.allow / "tailer.key"
        allowed.write_text(allowed.read_text().replace('environments = "prod"', 'environments = "prod staging"'))
        b.proc.p.send_signal(signal.SIGHUP)
        poll_until(lambda: "rights changed: tailer.key (sender of prod, staging)" in b.proc.output(),
                   what="the buck to reload the rights")

        def sent() -> int:
            try:
                push.send(frame("staging"), zmq.NOBLOCK)  # the connection was ended: resend until through
            except zmq.Again:
                pass
            return stats_of(b.data).get("events", 0)
        poll_until(sent, timeout=15, interval=0.3, what="a staging frame to be taken after the reload")
        push.close(linger=0)
    finally:
        ctx.destroy(linger=0)
    assert stats_of(b.data)["bad_frames"] == {"environment not allowed for the key": 1}


def test_a_wrong_rights_file_in_the_allow_list_is_named_by_check_config_and_stops_the_buck(keys, tmp_path):
    (keys.allow / "porter.key").write_text((keys.dir / "porter.key").read_text().replace(
        'role = "porter"', 'role = "superuser"'))
    r = helios("check-config", keys.buck)
    assert r.returncode == 2 and "porter.key: unknown role 'superuser'" in r.stderr, r
    r = helios("buck", "-c", keys.buck, "--data-dir", str(tmp_path / "d"), "--ingest", free_endpoint())
    assert r.returncode == 2 and "porter.key: unknown role 'superuser'" in r.stderr, r


def test_with_curve_off_a_client_over_ipc_is_on_the_bucks_host(buck, tmp_path):
    endpoint = f"ipc://{tmp_path}/query.sock"
    _, _, data = buck("a", None, "--query", endpoint)
    bid = plant(data, "prod", OLD)
    ctx = zmq.Context()
    try:
        qc = QueryClient(timeout=5.0, factory=SocketFactory(ctx, curve=None))
        assert qc.ask(endpoint, p.FetchRequest(bid)).records == (b"x",)
        assert qc.record(endpoint, "porter@here", indexed=[bid], archived=[bid]) is None
        assert qc.prune([endpoint], [bid])[endpoint].deleted == (bid,)
        qc.close()
    finally:
        ctx.destroy(linger=0)
