"""The real OpenTelemetry Python SDK (opentelemetry-sdk, its LoggingHandler on a
stdlib logger, BatchLogRecordProcessor and the OTLP/HTTP protobuf exporter)
sending to a real buck's /v1/logs: every durability level, gzip, tokens, a
full disk it retries through, and a kill -9 after the acknowledgement."""

import logging
import signal
import threading
import uuid

import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from helios import tokens
from tests.helpers import buck_events, buck_http, poll_until
from tests.integration.test_full_disk import fill, health

# The SDK's own handler is what the issue asks for; it warns that it moves to
# opentelemetry-instrumentation-logging one day.
pytestmark = pytest.mark.filterwarnings("ignore:`LoggingHandler` in `opentelemetry-sdk` is deprecated")

STAGE = tokens.new_token()


class App:
    """An application's stdlib logger wired to OpenTelemetry, exporting to ``url``."""

    def __init__(self, url, env="prod", host="app-host-1", service="checkout", headers=None, gzip=False):
        self.provider = LoggerProvider(resource=Resource.create(
            {"service.name": service, "host.name": host, "deployment.environment": env, "service.version": "2.0"}))
        exporter = OTLPLogExporter(endpoint=f"{url}/v1/logs", headers=headers, timeout=15,
                                   compression=Compression.Gzip if gzip else Compression.NoCompression)
        self.provider.add_log_record_processor(BatchLogRecordProcessor(exporter, schedule_delay_millis=60_000))
        self.logger = logging.getLogger(f"tests.otlp.{uuid.uuid4().hex}")
        self.logger.propagate = False
        self.logger.setLevel(logging.DEBUG)
        self.logger.addHandler(LoggingHandler(level=logging.DEBUG, logger_provider=self.provider))

    def flush(self):
        return self.provider.force_flush(30_000)

    def close(self):
        for h in list(self.logger.handlers):
            self.logger.removeHandler(h)
        self.provider.shutdown()


@pytest.fixture
def apps():
    made = []

    def make(*args, **kwargs):
        made.append(App(*args, **kwargs))
        return made[-1]
    yield make
    for app in made:
        app.close()


def stored(data, env=None):
    events, clean = buck_events(data, env)
    assert clean
    return events


@pytest.mark.parametrize("level,gzip", [("received", False), ("written", False), ("fsynced", False),
                                        ("fsynced", True)])
def test_the_sdk_logging_handler_delivers_through_each_durability_level(buck, apps, level, gzip):
    _, _, data = buck("a", None, "--http", "127.0.0.1:0")
    app = apps(buck_http(data), headers={"Helios-Durability": level}, gzip=gzip)
    tracer = TracerProvider().get_tracer("tests")
    with tracer.start_as_current_span("checkout") as span:
        app.logger.info("order %s paid", 1234, extra={"order_id": 1234, "amount": 12.5})
        ctx = span.get_span_context()
    app.logger.debug("cart loaded")
    app.logger.warning("stock low")
    try:
        raise ValueError("no such product")
    except ValueError:
        app.logger.exception("lookup failed")
    app.logger.critical("payments down")
    assert app.flush()
    if level == "received":  # answered before the buck's loop stored it
        poll_until(lambda: len(stored(data)) == 5, what="the five records stored")
    got = {e.message: e for e in stored(data)}  # written and fsynced: in the file once answered
    assert set(got) == {b"order 1234 paid", b"cart loaded", b"stock low", b"lookup failed", b"payments down"}
    paid = got[b"order 1234 paid"]
    assert (paid.environment, paid.host, paid.app, paid.severity) == ("prod", "app-host-1", "checkout", 6)
    assert paid.fields["order_id"] == 1234 and paid.fields["amount"] == 12.5
    assert paid.fields["trace_id"] == format(ctx.trace_id, "032x") and paid.fields["span_id"] == format(ctx.span_id, "016x")
    assert paid.fields["service.version"] == "2.0" and paid.fields["severity_text"] == "INFO"
    assert paid.fields["code.function.name"] == "test_the_sdk_logging_handler_delivers_through_each_durability_level"
    assert [got[m].severity for m in (b"cart loaded", b"stock low", b"lookup failed", b"payments down")] == [7, 4, 3, 2]
    failed = got[b"lookup failed"].fields
    assert failed["exception.type"] == "ValueError" and "no such product" in failed["exception.stacktrace"]
    assert "trace_id" not in got[b"stock low"].fields  # logged outside the span
    stats = poll_until(lambda: (s := _stats(data)["http"]).get(f"ok_{level}") and s, what="the stats")
    assert stats["otlp_events"] == 5 and not stats.get("otlp_errors")


def _stats(data):
    import json
    return json.loads((data / "stats.json").read_text())


def test_a_token_bound_to_staging_keeps_the_sdks_records_there_and_a_wrong_token_stores_nothing(buck, apps):
    _, _, data = buck("a", None, "--http", "127.0.0.1:0", "--http-token", f"staging={tokens.hash_token(STAGE)}")
    url = buck_http(data)
    good = apps(url, env="prod", headers={"Authorization": f"Bearer {STAGE}"})
    good.logger.error("claims prod")
    assert good.flush()
    bad = apps(url, env="staging", headers={"Authorization": "Bearer forged"})
    bad.logger.error("forged")
    bad.flush()  # 401 is not retried: the SDK drops the batch and logs why
    poll_until(lambda: _stats(data)["http"].get("status_401"), what="the forged request refused")
    assert stored(data, "prod") == []
    (e,) = stored(data)
    assert (e.environment, e.message, e.fields["deployment.environment"]) == ("staging", b"claims prod", "prod")


def test_the_sdk_retries_while_the_disk_is_full_and_its_records_land_once_space_returns(
        small_disk, buck, apps, caplog):  # noqa: F811
    _, _, data = buck("a", None, "--http", "127.0.0.1:0", "--full-retry", "0.2")
    url = buck_http(data)
    app = apps(url)
    filler = fill(small_disk)
    app.logger.warning("written while the disk was full")
    done = []
    flusher = threading.Thread(target=lambda: done.append(app.flush()))
    flusher.start()
    # The exporter gets 503 with Retry-After (a 507 would not be retried), and tries again.
    # (The buck's stats file is on the full disk too: the SDK's own log tells.)
    poll_until(lambda: caplog.text.count("Service Unavailable encountered while exporting logs batch, "
                                         "retrying in 1.00s"), what="the SDK to retry")
    assert health(url)["status"] == "full"
    filler.unlink()
    flusher.join(60)
    assert done == [True]
    assert [e.message for e in stored(data)] == [b"written while the disk was full"]


def test_records_the_sdk_had_acknowledged_fsynced_survive_kill_9_of_the_buck(buck, apps):
    proc, _, data = buck("a", None, "--http", "127.0.0.1:0", "--durability", "fsynced")
    app = apps(buck_http(data))
    for i in range(500):
        app.logger.info("record %d", i)
    assert app.flush()
    proc.stop(signal.SIGKILL)  # right after the acknowledgement
    assert {e.message for e in stored(data)} == {b"record %d" % i for i in range(500)}
    proc.start()
    poll_until(lambda: _stats(data)["pid"] == proc.p.pid, what="the restarted buck to run")
    assert len(stored(data)) == 500
