"""``helios buck``: run a buck."""

from __future__ import annotations

from typing import Any

import click

from helios.commands.common import config_option, flag, load, run_service


@click.command()
@config_option
@flag("buck.ingest", "--ingest", metavar="ENDPOINT")
@flag("buck.data_dir", "--data-dir", metavar="DIR")
@flag("buck.window", "--window", type=int, metavar="SECONDS")
@flag("buck.fsync", "--fsync/--no-fsync")
@flag("buck.name", "--name")
@flag("buck.max_frame_bytes", "--max-frame-bytes", type=int)
@flag("buck.stats_interval", "--stats-interval", type=float, metavar="SECONDS")
@flag("buck.publish", "--feed", metavar="ENDPOINT")
@flag("buck.publish", "--publish", hidden=True)
@flag("buck.publish_hwm", "--publish-hwm", type=int, metavar="MESSAGES")
@flag("buck.http", "--http", metavar="HOST:PORT")
@flag("buck.durability", "--durability", type=click.Choice(["received", "written", "fsynced"]))
@flag("buck.http_max_body", "--http-max-body", type=int, metavar="BYTES")
@flag("buck.http_max_events", "--http-max-events", type=int, metavar="EVENTS")
@flag("buck.http_max_pending", "--http-max-pending", type=int, metavar="REQUESTS")
@flag("buck.http_environment", "--http-env", metavar="ENV")
@flag("buck.query", "--query", metavar="ENDPOINT")
@flag("buck.query_max_bytes", "--query-max-bytes", type=int, metavar="BYTES")
@flag("buck.metrics", "--metrics", metavar="HOST:PORT")
@flag("buck.http_tokens", "--http-token", multiple=True, metavar="ENV=sha256:HEX")
@flag("buck.http_tls_cert", "--http-tls-cert", metavar="PEM")
@flag("buck.http_tls_key", "--http-tls-key", metavar="PEM")
@flag("buck.http_max_connections", "--http-max-connections", type=int)
@flag("buck.http_max_connections_per_client", "--http-max-connections-per-client", type=int)
@flag("buck.http_header_timeout", "--http-header-timeout", type=float, metavar="SECONDS")
@flag("buck.http_body_timeout", "--http-body-timeout", type=float, metavar="SECONDS")
@flag("buck.http_max_fields", "--http-max-fields", type=int)
@flag("buck.http_max_field_bytes", "--http-max-field-bytes", type=int, metavar="BYTES")
@flag("buck.max_raw_bytes", "--max-raw-bytes", type=int)
@flag("buck.max_batch_events", "--max-batch-events", type=int)
@flag("buck.check_events", "--check-events", type=click.Choice(["header", "all"]))
@flag("buck.event_max_age", "--event-max-age", type=float, metavar="SECONDS")
@flag("buck.event_max_ahead", "--event-max-ahead", type=float, metavar="SECONDS")
@flag("buck.full_retry", "--full-retry", type=float, metavar="SECONDS")
@flag("buck.full_log_interval", "--full-log-interval", type=float, metavar="SECONDS")
def buck(config_path: str | None, **kwargs: Any) -> None:
    """Run a buck: take batches on a PULL socket and append them to
    per-environment time bucket files under DATA_DIR/buckets/ENV/YYYYMMDD/.

    Frames are checked (version, header, checksum) and stored as they arrived;
    a bad frame is counted and logged, never fatal. SIGTERM flushes and exits.

    With --http, also take events as JSON, NDJSON or msgpack on
    POST http://HOST:PORT/v1/events, answered once --durability is reached.

    Bucket queries (helios buckets, helios audit --buck, the porter) are
    answered on --query, by default the ingest port + 2."""
    from helios.buck import Buck

    cfg = load(config_path, kwargs, "buck")
    run_service(lambda: Buck(cfg.buck))


COMMANDS = [buck]
