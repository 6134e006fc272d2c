#!/usr/bin/env python3
"""OTLP/HTTP logs against /v1/events on one buck, in the same run.

Run from the repository root::

    .venv/bin/python bench/otlp_ingest.py [--duration 3] [--repeat 3] [--clients 4] [--records 500]

One buck (``helios buck --http``, fresh data directory, durability ``written``
so the disk's fsync does not hide the HTTP path). The same log records (about
120-byte messages, two attributes, trace and span ids, like a Python
LoggingHandler's) are sent three ways, pre-encoded, ``--records`` per request:

- ``events``: ``POST /v1/events``, a JSON array of event maps;
- ``otlp-pb``: ``POST /v1/logs``, an ExportLogsServiceRequest in protobuf
  (what the OpenTelemetry SDKs send);
- ``otlp-json``: ``POST /v1/logs`` in OTLP/JSON.

``--clients`` threads, each on its own keep-alive connection, POST back to
back for ``--duration`` seconds per way; the ways take turns, ``--repeat``
times. Printed: acked records/s per way (median of the repeats) and each
OTLP way as a ratio of ``events``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest  # noqa: E402
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue  # noqa: E402

from helios.buck import otlp  # noqa: E402

T0 = 1_700_000_000_000_000_000


def bodies(records: int) -> dict[str, tuple[str, str, bytes]]:
    """way -> (path, content type, body) of the same records."""
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    for k, v in (("service.name", "checkout"), ("host.name", "app-1"), ("deployment.environment", "prod")):
        rl.resource.attributes.append(KeyValue(key=k, value=AnyValue(string_value=v)))
    sl = rl.scope_logs.add()
    sl.scope.name = "shop.checkout"
    events = []
    for i in range(records):
        message = f"GET /api/items/{i:06d} answered 200 in 12 ms for user 4711 from 10.1.2.3 (cache hit) ok"
        rec = sl.log_records.add(time_unix_nano=T0 + i, observed_time_unix_nano=T0 + i, severity_number=9,
                                 severity_text="INFO", body=AnyValue(string_value=message),
                                 trace_id=os.urandom(16), span_id=os.urandom(8))
        rec.attributes.append(KeyValue(key="code.function.name", value=AnyValue(string_value="handle")))
        rec.attributes.append(KeyValue(key="code.line.number", value=AnyValue(int_value=42)))
        events.append({"time": (T0 + i) / 1e9, "environment": "prod", "host": "app-1", "app": "checkout",
                       "severity": "info", "message": message, "code.function.name": "handle",
                       "code.line.number": 42, "trace_id": rec.trace_id.hex(), "span_id": rec.span_id.hex()})
    return {"events": ("/v1/events", "application/json", json.dumps(events).encode()),
            "otlp-pb": ("/v1/logs", "application/x-protobuf", otlp.encode(req, "protobuf")),
            "otlp-json": ("/v1/logs", "application/json", otlp.encode(req, "json"))}


def drive(host: str, port: int, path: str, ctype: str, body: bytes, records: int, clients: int,
          duration: float) -> tuple[float, int]:
    """Acked records/s, and the count of non-200 answers."""
    acked, bad = [0] * clients, [0] * clients
    stop = time.monotonic() + duration

    def client(k: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        headers = {"Content-Type": ctype, "Helios-Durability": "written"}
        while time.monotonic() < stop:
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            if resp.status == 200:
                acked[k] += records
            else:
                bad[k] += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(acked) / (time.monotonic() - t0), sum(bad)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--records", type=int, default=500)
    args = ap.parse_args()
    ways = bodies(args.records)
    with tempfile.TemporaryDirectory(prefix="helios-otlp-bench-") as tmp:
        data = Path(tmp) / "buck"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen([sys.executable, "-m", "helios", "buck", "--data-dir", str(data), "--ingest",
                                 "tcp://127.0.0.1:*", "--publish", "tcp://127.0.0.1:*", "--query", "",
                                 "--http", "127.0.0.1:0", "--stats-interval", "0.2",
                                 "--http-max-body", str(64 << 20)],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            address = None
            deadline = time.monotonic() + 30
            while address is None and time.monotonic() < deadline:
                try:
                    address = json.loads((data / "stats.json").read_text())["http"]["address"]
                except (OSError, ValueError, KeyError, TypeError):
                    time.sleep(0.1)
            if address is None:
                sys.exit("the buck did not start")
            host, _, port = address.rpartition(":")
            for path, ctype, body in ways.values():  # warm-up
                drive(host, int(port), path, ctype, body, args.records, args.clients, 0.5)
            rates: dict[str, list[float]] = {w: [] for w in ways}
            for r in range(args.repeat):
                order = list(ways) if r % 2 == 0 else list(reversed(ways))
                for way in order:
                    path, ctype, body = ways[way]
                    rate, bad = drive(host, int(port), path, ctype, body, args.records, args.clients, args.duration)
                    rates[way].append(rate)
                    print(f"repeat {r + 1} {way:<10} {rate:>10,.0f} records/s  ({len(body) / args.records:.0f} "
                          f"bytes/record{f', {bad} refused' if bad else ''})", flush=True)
        finally:
            proc.terminate()
            proc.wait(30)
    base = statistics.median(rates["events"])
    print(f"\nmedian of {args.repeat}, {args.clients} clients, {args.records} records/request, durability written:")
    for way, values in rates.items():
        med = statistics.median(values)
        print(f"  {way:<10} {med:>10,.0f} records/s   {med / base:.2f}x /v1/events")


if __name__ == "__main__":
    main()
