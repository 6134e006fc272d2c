"""The command line as a first user meets it: a buck named once by its
address, one buck without --copies 1, a porter pass with no buck, Ctrl-C
while watching a history build, a misspelt config key, the relay's socket
file."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import zmq

from helios import codec
from helios.model import Event, random_id
from helios.wire.ports import free_run
from tests.helpers import ROOT, buck_events, poll_until


def helios(*args, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "helios", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_one_address_reaches_a_bucks_ingest_feed_and_queries_and_one_buck_needs_no_copies_1(tmp_path, procs, buck):
    _, ingest, data = buck("a")
    address = ingest.removeprefix("tcp://")           # HOST:PORT, the buck's one address
    sub = procs("subscribe", "-b", address, "-o", "raw", "--reorder-delay", "0", name="subscribe")
    poll_until(lambda: json.loads((data / "stats.json").read_text())["live"]["subscriptions"] >= 1,
               what="the subscription, by address")
    log = tmp_path / "app.log"
    log.write_bytes(b"<14>Nov 23 10:00:00 web-1 app[1]: hello by address\n")
    tailer = procs("tailer", "-p", str(log), "-b", address, "--start-at", "beginning", "--env", "prod",
                   "--state-dir", str(tmp_path / "tailer"), name="tailer")      # copies 2 (the default), one buck
    poll_until(lambda: len(buck_events(data)[0]) == 1, what="the line at the buck")
    poll_until(lambda: "hello by address" in sub.output(), what="the line on the live feed")
    warned = [ln for ln in tailer.output().splitlines() if "copies" in ln and "warning" in ln]
    assert warned == ["helios: warning: [tailer] copies = 2, but there are 1 buck(s): each batch goes to every "
                      "one (1 copies)."], tailer.output()
    ls = helios("buckets", "ls", "-b", address, "-o", "json")
    assert ls.returncode == 0 and json.loads(ls.stdout)["buckets"][0]["id"].startswith("prod/"), ls


def test_an_address_without_ports_is_refused_and_names_the_endpoint_flags():
    r = helios("subscribe", "-b", "ipc:///run/helios/buck.sock", "--duration", "0")
    assert r.returncode == 2 and "mesh.bucks[0]" in r.stderr and "--ingest, --feed and --query" in r.stderr


def test_porter_once_with_no_buck_answering_exits_1_and_says_why(tmp_path):
    port = free_run(3)
    r = helios("porter", "once", "-b", f"127.0.0.1:{port}", "--timeout", "0.5", "--state-dir", str(tmp_path / "p"),
               "--index-dir", str(tmp_path / "i"), "--archive-dir", str(tmp_path / "a"), "--workers", "0")
    assert r.returncode == 1, r.stderr
    assert f"No buck answered, so nothing was ported: tcp://127.0.0.1:{port + 2}:" in r.stderr


def test_ctrl_c_while_watching_a_history_build_says_it_goes_on_and_how_to_follow_it(tmp_path):
    from helios.archive import format as fmt
    from helios.archive.store import FolderArchive, key_for
    from tests.integration.historymesh import NS, OLD, events_of, iso

    FolderArchive(tmp_path / "archive").put(key_for("prod", OLD * NS, 60), fmt.pack(events_of("prod", OLD, 10, "x", 1),
                                                                                   environment="prod", level=3))
    p = subprocess.Popen([sys.executable, "-m", "helios", "history", "request", "--history-dir", str(tmp_path / "h"),
                          "--archive-dir", str(tmp_path / "archive"), "--index-dir", str(tmp_path / "i"),
                          "--query", "tcp://127.0.0.1:1", "--env", "prod", "--start", iso(OLD), "--end", iso(OLD + 60)],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        request_id = p.stdout.readline().strip()     # printed at once; no `history serve` runs, so it waits
        assert request_id, p.stderr.read()
        assert p.stderr.readline().startswith("queued"), "the first progress line"   # it is watching now
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, err
    assert "Aborted!" not in err and f"history request {request_id} is still being built" in err
    assert f"helios history status --wait {request_id}" in err


def test_check_config_suggests_the_key_meant(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[tailer]\npahts = ["/var/log/syslog"]\n[mesh]\nbucks = ["buck-a"]\n')
    r = helios("check-config", str(path))
    assert r.returncode == 2 and "tailer.pahts: unknown key; did you mean paths?" in r.stderr


def test_the_relay_removes_its_socket_file_when_it_stops(tmp_path, procs, buck):
    _, ingest, _ = buck("a")
    sock = tmp_path / "run" / "relay.sock"
    state = tmp_path / "relay"
    relay = procs("relay", "--listen", f"ipc://{sock}", "--state-dir", str(state), "-b", ingest,
                  "--stats-interval", "0.1", name="relay")
    poll_until(lambda: (state / "stats.json").exists() and sock.is_socket(), what="the relay to listen")
    push = zmq.Context.instance().socket(zmq.PUSH)
    push.connect(f"ipc://{sock}")
    now = time.time_ns()
    push.send(codec.encode_events("prod", "h", [Event(random_id(), now, now, "h", "a", 6, "", None, b"x", None)]))
    push.close(linger=2000)
    assert relay.stop() == 0
    assert not sock.exists()


def test_an_ipv6_address_reaches_the_buck_too(tmp_path, procs, buck):
    import socket

    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        import pytest

        pytest.skip("no IPv6 loopback here")
    port = free_run(3)
    _, ingest, data = buck("six", f"tcp://[::1]:{port}", "--publish", "auto", "--query", "auto")
    assert ingest == f"tcp://[::1]:{port}"
    r = helios("status", "-b", f"[::1]:{port}", "--interval", "0", "-o", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert [b["endpoint"] for b in json.loads(r.stdout)["bucks"]] == [f"tcp://[::1]:{port + 2}"]
    sub = procs("subscribe", "-b", f"[::1]:{port}", "-o", "raw", "--reorder-delay", "0", name="subscribe6")
    poll_until(lambda: json.loads((data / "stats.json").read_text())["live"]["subscriptions"] >= 1,
               what="the subscription over IPv6")
    push = zmq.Context.instance().socket(zmq.PUSH)
    push.setsockopt(zmq.IPV6, 1)
    push.connect(ingest)
    now = time.time_ns()
    push.send(codec.encode_events("prod", "h", [Event(random_id(), now, now, "h", "a", 6, "", None, b"over six", None)]))
    push.close(linger=2000)
    poll_until(lambda: "over six" in sub.output(), what="the event over IPv6")
