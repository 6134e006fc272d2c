"""Syslog over the network into the relay, with real clients: util-linux
``logger`` (UDP, TCP in both framings, RFC 3164 and 5424), a private
``rsyslogd`` forwarding with ``omfwd``, and ``openssl s_client`` over TLS.
Every message must be in both bucks with its host, app and severity."""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import threading

import pytest

from helios.wire.ports import free_endpoint
from tests.helpers import buck_events, poll_until, require

FAST = ["--spool-window", "2", "--resend-jitter", "0", "--stats-interval", "0.1", "--sync-interval", "0.2",
        "--live-wait", "0.2"]


@pytest.fixture(autouse=True)
def _logger():
    if shutil.which("logger") is None:
        require("logger", "util-linux logger is not installed")


def start_relay(procs, tmp_path, bucks, *extra, udp=True, tcp=True, name="relay"):
    state = tmp_path / name
    args = ["relay", "--listen", f"ipc://{tmp_path}/run/{name}.sock", "--state-dir", str(state),
            "--copies", str(min(2, len(bucks))), *FAST, *extra]
    if udp:
        args += ["--syslog-udp", "127.0.0.1:0"]
    if tcp:
        args += ["--syslog-tcp", "127.0.0.1:0"]
    for ep in bucks:
        args += ["--buck", ep]
    p = procs(*args, name=name)
    poll_until(lambda: stats(state).get("syslog") or not p.alive(), what="the relay to listen")
    assert p.alive(), p.output()
    return p, state


def stats(state) -> dict:
    try:
        return json.loads((state / "stats.json").read_text())
    except (OSError, ValueError):
        return {}


def port(state, kind: str) -> int:
    return int(stats(state)["syslog"]["listening"][kind][0].rpartition(":")[2])


def taken(state, kind: str) -> int:
    return stats(state).get("syslog", {}).get("inputs", {}).get(kind, {}).get("events", 0)


def problems(state, kind: str) -> dict:
    return stats(state).get("syslog", {}).get("drops", {}).get(kind, {})


def messages(data, needle: bytes):
    return {e.message: e for e in buck_events(data)[0] if needle in e.message}


def logger(*args: str, stdin: bytes | None = None) -> None:
    subprocess.run(["logger", *args], input=stdin, check=True, timeout=30)


@pytest.mark.parametrize("transport", [["--udp"], ["--tcp"], ["--tcp", "--octet-count"]],
                         ids=["udp", "tcp-newline", "tcp-octet-count"])
@pytest.mark.parametrize("form", ["--rfc3164", "--rfc5424"])
def test_logger_messages_reach_both_bucks_with_host_app_and_severity(procs, buck, tmp_path, transport, form):
    _, ep_a, data_a = buck("a")
    _, ep_b, data_b = buck("b")
    _, state = start_relay(procs, tmp_path, [ep_a, ep_b])
    kind = "udp" if "--udp" in transport else "tcp"
    lines = b"".join(b"order %d paid\n" % i for i in range(200))
    extra = ["--sd-id", "shop@32473", "--sd-param", 'tenant="acme"'] if form == "--rfc5424" else []
    logger(*transport, form, *extra, "-n", "127.0.0.1", "-P", str(port(state, kind)), "-t", "shop",
           "-p", "local3.err", stdin=lines)
    for data in (data_a, data_b):
        got = poll_until(lambda: len(got := messages(data, b"paid")) == 200 and got,
                         what=f"200 messages in {data.name}")
    e = next(iter(got.values()))
    assert (e.app, e.severity, e.host) == ("shop", 3, socket.gethostname())
    assert e.source == f"syslog/{kind}" and e.fields["peer"].startswith("127.0.0.1:")
    if form == "--rfc5424":
        assert e.fields["shop@32473.tenant"] == "acme"
    assert {m.split(b"order ")[1] for m in got} == {b"%d paid" % i for i in range(200)}
    poll_until(lambda: taken(state, kind) == 200, what="the relay to count them")


RSYSLOG_FORWARD = """
global(workDirectory="{work}")
module(load="imfile")
input(type="imfile" file="{input}" tag="billing:" severity="warning" facility="local1")
action(type="omfwd" target="127.0.0.1" port="{port}" protocol="{protocol}" TCP_Framing="{framing}")
"""


@pytest.mark.parametrize("protocol,framing", [("tcp", "octet-counted"), ("tcp", "traditional"),
                                               ("udp", "traditional")])
def test_rsyslog_forwarding_reaches_both_bucks(procs, buck, tmp_path, protocol, framing):
    if shutil.which("rsyslogd") is None:
        require("rsyslog", "rsyslogd is not installed")
    _, ep_a, data_a = buck("a")
    _, ep_b, data_b = buck("b")
    _, state = start_relay(procs, tmp_path, [ep_a, ep_b])
    work = tmp_path / "rsyslog"
    work.mkdir()
    source = tmp_path / "billing.log"
    n = 3000
    source.write_bytes(b"".join(b"invoice %d sent\n" % i for i in range(n)))
    conf = work / "rsyslog.conf"
    conf.write_text(RSYSLOG_FORWARD.format(work=work, input=source, port=port(state, protocol), protocol=protocol,
                                           framing=framing))
    rsyslogd = subprocess.Popen(["rsyslogd", "-n", "-f", str(conf), "-i", str(work / "pid")],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for data in (data_a, data_b):
            got = poll_until(lambda: len(got := messages(data, b"invoice")) == n and got, timeout=30,
                             what=f"{n} forwarded messages in {data.name}")
    finally:
        rsyslogd.terminate()
        out = rsyslogd.communicate(timeout=10)[0]
    e = next(iter(got.values()))
    assert (e.app, e.severity, e.host) == ("billing", 4, socket.gethostname()), out
    assert not {k: v for k, v in problems(state, protocol).items() if v}


def test_tls_with_a_certificate_from_the_config(procs, buck, tmp_path):
    if shutil.which("openssl") is None:
        require("openssl", "openssl is not installed")
    _, ep_a, data_a = buck("a")
    _, ep_b, data_b = buck("b")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost"],
                   check=True, capture_output=True)
    _, state = start_relay(procs, tmp_path, [ep_a, ep_b], "--syslog-tls", "127.0.0.1:0", "--syslog-tls-cert",
                           str(cert), "--syslog-tls-key", str(key), "--syslog-idle-timeout", "3",
                           udp=False, tcp=False)
    # RFC 5425: octet-counted frames; one of them holds a newline.
    frames = [b"<85>1 2026-03-11T08:15:02Z gate sshd 41 - - accepted key %d" % i for i in range(500)]
    frames.append(b"<85>1 2026-03-11T08:15:02Z gate sshd 41 - - two\nlines")
    body = b"".join(b"%d %s" % (len(f), f) for f in frames)
    client = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port(state, 'tls')}", "-quiet",
                             "-no_ign_eof"], input=body, capture_output=True, timeout=30)
    for data in (data_a, data_b):
        got = poll_until(lambda: len(got := messages(data, b"gate sshd")) == 501 and got,
                         what=f"501 messages in {data.name}", timeout=15)
    assert set(got) == set(frames), client.stderr
    e = got[frames[-1]]
    assert (e.host, e.app, e.severity, e.source) == ("gate", "sshd", 5, "syslog/tls")

    # A client that is no TLS client is counted, and the listener goes on.
    with socket.create_connection(("127.0.0.1", port(state, "tls"))) as s:
        s.sendall(b"<13>plain text on the TLS port\n")
        poll_until(lambda: problems(state, "tls").get("tls handshake failed"), what="a counted handshake failure")
    # A peer that connects and never says a word (not even its handshake) is let go.
    with socket.create_connection(("127.0.0.1", port(state, "tls"))) as s:
        poll_until(lambda: problems(state, "tls").get("idle timeout"), what="the silent peer closed")
        s.settimeout(10)
        assert s.recv(10) == b""


def test_kill_9_of_the_relay_loses_no_syslog_message_it_had_read(procs, buck, tmp_path):
    ep_a, ep_b = free_endpoint(), free_endpoint()   # no buck runs yet: only the spool has them
    relay, state = start_relay(procs, tmp_path, [ep_a, ep_b], udp=False)
    n = 5000
    logger("--tcp", "--octet-count", "--rfc5424", "-n", "127.0.0.1", "-P", str(port(state, "tcp")), "-t", "pay",
           stdin=b"".join(b"charge %d done\n" % i for i in range(n)))
    poll_until(lambda: taken(state, "tcp") == n, what="the relay to spool every message")
    relay.stop(signal.SIGKILL)

    _, _, data_a = buck("a", ep_a)
    _, _, data_b = buck("b", ep_b)
    relay.start()   # the same state directory and spool (the syslog ports are new ones)
    want = {b"charge %d done" % i for i in range(n)}
    poll_until(lambda: {re.search(rb"charge \d+ done", m)[0] for m in
                        messages(data_a, b"charge") | messages(data_b, b"charge")} >= want, timeout=30, what="every spooled message in the bucks after the restart")


def test_bad_framing_oversized_messages_and_idle_connections_are_counted_and_the_relay_goes_on(
        procs, buck, tmp_path):
    _, ep_a, data_a = buck("a")
    _, state = start_relay(procs, tmp_path, [ep_a], "--syslog-max-message-bytes", "1024",
                           "--syslog-idle-timeout", "1")
    tcp, udp = port(state, "tcp"), port(state, "udp")
    with socket.create_connection(("127.0.0.1", tcp)) as s:
        s.sendall(b"12x <13>bad octet count\n")                       # malformed: read as a line
        s.sendall(b"3000 <13>big: " + b"x" * 2991)                  # oversized, octet-counted
        s.sendall(b"<13>long: " + b"y" * 5000 + b"\n")               # oversized, newline-framed
        s.sendall(b"<13>after the bad ones\n")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.sendto(b"<13>udp: " + b"z" * 2000, ("127.0.0.1", udp))
    half = socket.create_connection(("127.0.0.1", tcp))
    half.sendall(b"<13>half: a line without its end")               # then silence: a half-open peer
    try:
        poll_until(lambda: problems(state, "tcp").get("idle timeout") == 1, what="the idle connection closed")
    finally:
        half.close()
    got = poll_until(lambda: len(got := messages(data_a, b"<13>")) == 6 and got, what="six messages")
    assert b"<13>after the bad ones" in got and b"12x <13>bad octet count" in got
    assert got[b"<13>half: a line without its end"]
    cut = [e for m, e in got.items() if len(m) == 1024]
    assert len(cut) == 3 and all(e.fields["truncated"] for e in cut)
    poll_until(lambda: problems(state, "tcp") == {"oversized": 2, "malformed octet count": 1, "idle timeout": 1},
               what="each problem counted once")
    poll_until(lambda: problems(state, "udp").get("oversized") == 1, what="the cut datagram counted")


def test_a_full_spool_stops_the_reading_of_tcp_and_nothing_is_lost(procs, buck, tmp_path):
    """With every buck down the spool fills; the relay stops reading (its
    senders wait) rather than prune what no buck has had, and once the bucks
    are back every message arrives."""
    ep_a, ep_b = free_endpoint(), free_endpoint()
    _, state = start_relay(procs, tmp_path, [ep_a, ep_b], "--spool-max-bytes", str(1024 * 1024), udp=False)
    n = 60_000
    body = b"".join(b"<13>Mar 11 08:15:02 web1 shop[7]: basket %d of a run that fills the spool %s\n"
                    % (i, b"%x" % (i * 2654435761 % 2**32)) for i in range(n))
    done = threading.Event()

    def send() -> None:
        with socket.create_connection(("127.0.0.1", port(state, "tcp"))) as s:
            s.sendall(body)
        done.set()

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    poll_until(lambda: stats(state).get("syslog", {}).get("paused"), timeout=30, what="the relay to stop reading")
    _, _, data_a = buck("a", ep_a)
    _, _, data_b = buck("b", ep_b)
    poll_until(done.is_set, timeout=60, what="the sender to finish")
    want = set(range(n))

    def arrived():
        return {int(re.search(rb"basket (\d+) ", m)[1]) for m in
                messages(data_a, b"basket") | messages(data_b, b"basket")}
    poll_until(lambda: arrived() >= want, timeout=90, interval=1, what="every message in the bucks")


def test_connections_over_the_limit_are_refused_and_counted_per_input_in_the_metrics(procs, buck, tmp_path):
    import urllib.request

    _, ep_a, data_a = buck("a")
    _, state = start_relay(procs, tmp_path, [ep_a], "--syslog-max-connections", "1", "--metrics", "127.0.0.1:0")
    tcp = port(state, "tcp")
    first = socket.create_connection(("127.0.0.1", tcp))
    try:
        first.sendall(b"<13>first: holds the only place\n")
        poll_until(lambda: stats(state)["syslog"]["connections"] == 1, what="the first connection")
        with socket.create_connection(("127.0.0.1", tcp)) as second:
            second.settimeout(10)
            assert second.recv(10) == b""           # closed at once
        first.sendall(b"<13>first: still served\n")
    finally:
        first.close()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.sendto(b"<13>udp: hello", ("127.0.0.1", port(state, "udp")))
    poll_until(lambda: len(messages(data_a, b"<13>")) == 3, what="three messages")
    poll_until(lambda: problems(state, "tcp") == {"too many connections": 1}, what="the refusal counted")
    text = urllib.request.urlopen(f"http://{stats(state)['metrics']}/metrics", timeout=10).read().decode()
    assert 'helios_input_events_total{input="syslog/tcp"} 2.0' in text
    assert 'helios_input_events_total{input="syslog/udp"} 1.0' in text
    assert 'helios_input_problems_total{input="syslog/tcp",reason="too many connections"} 1.0' in text
    assert 'helios_input_problems_total{input="syslog/udp",reason="kernel receive buffer full"} 0.0' in text


def test_every_udp_datagram_is_either_in_the_bucks_or_counted_as_a_kernel_drop(procs, buck, tmp_path):
    _, ep_a, data_a = buck("a")
    relay, state = start_relay(procs, tmp_path, [ep_a], tcp=False)
    udp = port(state, "udp")
    sent = 20_000
    relay.p.send_signal(signal.SIGSTOP)    # the relay reads nothing: the socket's buffer overflows
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            for i in range(sent):
                u.sendto(b"<13>flood: datagram %d " % i + b"." * 1000, ("127.0.0.1", udp))
    finally:
        relay.p.send_signal(signal.SIGCONT)

    def accounted():
        s = stats(state).get("syslog", {})
        dropped = s.get("drops", {}).get("udp", {}).get("kernel receive buffer full", 0)
        return dropped > 0 and dropped + s["inputs"]["udp"].get("events", 0) == sent and dropped
    dropped = poll_until(accounted, timeout=30, what="every datagram taken or counted as dropped")
    poll_until(lambda: len(messages(data_a, b"flood")) == sent - dropped, timeout=30,
               what="every datagram taken in the buck")


def test_a_stop_keeps_what_open_connections_sent_a_last_line_without_its_newline_too(procs, buck, tmp_path):
    _, ep_a, data_a = buck("a")
    relay, state = start_relay(procs, tmp_path, [ep_a], udp=False)
    with socket.create_connection(("127.0.0.1", port(state, "tcp"))) as s:
        s.sendall(b"<13>app: first\n<13>app: last words")
        poll_until(lambda: taken(state, "tcp") == 1, what="the first line taken")
        relay.finish()   # SIGTERM, and it must end cleanly
    assert set(messages(data_a, b"app:")) == {b"<13>app: first", b"<13>app: last words"}


def test_a_relay_that_cannot_listen_or_load_its_certificate_says_why_and_exits_1(procs, tmp_path):
    taken_port = socket.socket()
    taken_port.bind(("127.0.0.1", 0))
    taken_port.listen(1)
    try:
        busy = procs("relay", "--listen", f"ipc://{tmp_path}/r1.sock", "--state-dir", str(tmp_path / "r1"),
                     "--buck", "tcp://127.0.0.1:9", "--copies", "1",
                     "--syslog-tcp", f"127.0.0.1:{taken_port.getsockname()[1]}", name="busy").expect_exit(1)
        poll_until(lambda: not busy.alive(), what="the relay to give up")
    finally:
        taken_port.close()
    assert "cannot listen for syslog over TCP on 127.0.0.1:" in busy.output()
    nocert = procs("relay", "--listen", f"ipc://{tmp_path}/r2.sock", "--state-dir", str(tmp_path / "r2"),
                   "--buck", "tcp://127.0.0.1:9", "--copies", "1", "--syslog-tls", "127.0.0.1:0",
                   "--syslog-tls-cert", str(tmp_path / "missing.pem"), "--syslog-tls-key", str(tmp_path / "missing.key"),
                   name="nocert").expect_exit(1)
    poll_until(lambda: not nocert.alive(), what="the relay to give up")
    assert "cannot load the syslog TLS certificate" in nocert.output()


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(c) for c in f.read().split()]


def test_a_framing_process_killed_mid_stream_loses_nothing_and_the_relay_goes_on(procs, buck, tmp_path):
    _, ep_a, data_a = buck("a")
    relay, state = start_relay(procs, tmp_path, [ep_a], "--syslog-workers", "2", udp=False)
    workers = poll_until(lambda: len(c := _children(relay.p.pid)) == 2 and c, what="two framing processes")
    n = 20000
    with socket.create_connection(("127.0.0.1", port(state, "tcp"))) as s:
        s.sendall(b"".join(b"<13>Mar 11 08:15:02 gate pay[7]: charge %d done\n" % i for i in range(n // 2)))
        poll_until(lambda: taken(state, "tcp") > 0, what="the relay to spool a first read")
        for pid in workers:
            subprocess.run(["kill", "-9", str(pid)], check=True)
        s.sendall(b"".join(b"<13>Mar 11 08:15:02 gate pay[7]: charge %d done\n" % i for i in range(n // 2, n)))
    poll_until(lambda: taken(state, "tcp") == n, what="every message spooled")
    got = poll_until(lambda: len(got := messages(data_a, b"charge")) == n and got, what=f"{n} messages in the buck")
    assert {re.search(rb"charge (\d+)", m)[1] for m in got} == {b"%d" % i for i in range(n)}
    assert relay.alive() and "frames syslog by itself" in relay.output()


def test_with_no_framing_processes_the_relay_frames_every_message_itself(procs, buck, tmp_path):
    _, ep_a, data_a = buck("a")
    relay, state = start_relay(procs, tmp_path, [ep_a], "--syslog-workers", "0")
    assert _children(relay.p.pid) == []
    logger("--tcp", "--octet-count", "--rfc5424", "-n", "127.0.0.1", "-P", str(port(state, "tcp")), "-t", "solo",
           stdin=b"".join(b"alone %d\n" % i for i in range(300)))
    logger("--udp", "-n", "127.0.0.1", "-P", str(port(state, "udp")), "-t", "solo",
           stdin=b"".join(b"alone udp %d\n" % i for i in range(50)))
    got = poll_until(lambda: len(got := messages(data_a, b"alone")) == 350 and got, what="350 messages in the buck")
    assert {e.app for e in got.values()} == {"solo"}


def test_the_copy_a_relay_resends_from_its_spool_has_the_same_ids_as_the_live_ones(procs, buck, tmp_path):
    """Ids are no longer stored (a base per frame makes them): the live
    copies and the one re-sent after the spool's window decode to the same
    id for each message, and to a different one for each message, so the
    porter keeps every message once."""
    _, ep_a, data_a = buck("a")
    _, ep_b, data_b = buck("b")
    relay, state = start_relay(procs, tmp_path, [ep_a, ep_b], udp=False)
    n = 3000
    with socket.create_connection(("127.0.0.1", port(state, "tcp"))) as s:
        s.sendall(b"".join(b"<13>Mar 11 08:15:02 gate pay[7]: same words every time\n" for _ in range(n)))

    def copies():
        out: dict[bytes, list[bytes]] = {}
        for data in (data_a, data_b):
            for e in buck_events(data)[0]:
                out.setdefault(e.id, []).append(e.message)
        return out

    # Two live copies of each message, and a third from the re-send of the spool's window.
    got = poll_until(lambda: len(c := copies()) == n and all(len(m) >= 3 for m in c.values()) and c,
                     timeout=30, what="each message live in both bucks and re-sent once")
    assert {m for ms in got.values() for m in ms} == {b"<13>Mar 11 08:15:02 gate pay[7]: same words every time"}
