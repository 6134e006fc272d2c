"""helios.metrics' own pieces: the endpoint, and HTTP ingest's counts by status code."""

import socket
import urllib.request

import pytest

from helios import metrics
from helios.errors import ServiceError
from helios.services.relay import load_resent
from helios.store import durable


def test_http_ingest_counts_become_requests_by_status_code():
    counts = {"requests": 9, "events": 700, "ok_written": 4, "ok_fsynced": 2, "status_400": 1, "status_413": 1,
              "overloaded": 1}
    assert metrics.http_codes(counts) == {"200": 6, "400": 1, "413": 1, "503": 1}


def test_an_endpoint_on_port_zero_says_where_it_listens_and_serves_its_families():
    ep = metrics.Endpoint.start("relay", "host-1", "127.0.0.1:0",
                                lambda: [metrics.counter("helios_events_in", "Events.", 42)])
    try:
        host, port = ep.address.rsplit(":", 1)
        assert host == "127.0.0.1" and int(port) > 0
        with urllib.request.urlopen(f"http://{ep.address}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    finally:
        ep.close()
    assert "helios_events_in_total 42.0" in text
    assert 'helios_info{name="host-1",service="relay"' in text
    assert "process_cpu_seconds_total" in text
    assert ep.fsync.observe not in durable.observers  # closed: fsyncs are no longer timed


def test_fsyncs_are_timed_while_an_endpoint_serves(tmp_path):
    ep = metrics.Endpoint.start("buck", "b", "127.0.0.1:0", lambda: [])
    try:
        with open(tmp_path / "f", "wb") as f:
            f.write(b"x")
            durable.fsync(f.fileno())
        assert ep.registry.get_sample_value("helios_fsync_seconds_count") == 1
    finally:
        ep.close()


def test_an_endpoint_on_a_port_in_use_is_a_service_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ServiceError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
            metrics.Endpoint.start("buck", "b", f"127.0.0.1:{port}", lambda: [])


def test_a_relays_unreadable_resent_file_means_its_buckets_go_again(tmp_path):
    path = tmp_path / "resent.json"
    assert load_resent(path) == {}
    path.write_text('{"version": 1, "sent": {"prod/20240131/235900-60s.bkt": 1}}')
    assert load_resent(path) == {"prod/20240131/235900-60s.bkt": 1}
    path.write_text("{not json")
    assert load_resent(path) == {}
