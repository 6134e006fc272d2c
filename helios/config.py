"""The one configuration schema of Helios, and its loader.

One TOML file holds one table per service. Each section is a frozen dataclass
below, and each of its fields is declared with ``setting(default, doc,
*checks)``: the field carries its own default, its documentation and its
validation, and its annotation is its type. ``Config`` lists the sections; its
field names are the TOML table names. The loader is generic: it reads the file,
lays the CLI overrides over it, checks every key of every section present, and
collects every problem, each as ``"key.path: what is wrong"``, before raising
one ``ConfigError``.

To add a section, say ``[porter]``:

1. declare ``@dataclass(frozen=True) class Porter:`` with a docstring (it heads
   the section in ``describe()``) and one ``setting(...)`` per key, annotated
   ``str``, ``int``, ``float``, ``bool`` or ``tuple[str, ...]``;
2. add ``porter: Porter = Porter()`` to ``Config``.

A check is a function ``value -> problem text or None`` (see ``between``,
``endpoint``, ...), run only on a value of the right type; the first failing
check is the key's problem. ``each=`` checks apply to every item of a list and
report ``key[i]``. A section may define ``cross_check(values)`` for rules
between its keys; it sees only the keys whose values passed their own checks.
"""

from __future__ import annotations

import math
import os
import re
import textwrap
import tomllib
import zoneinfo
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any, get_args, get_origin, get_type_hints

from helios.errors import ConfigError
from helios.wire import address as buck_address

Check = Callable[[Any], "str | None"]

DAY = 86400


def setting(default: Any, doc: str, *checks: Check, each: tuple[Check, ...] = (),
            required: bool = False, example: Any = None, unless: tuple[str, ...] = ()) -> Any:
    """A config key: its default, its doc, its checks. A required key has no
    meaningful default (it is not required when a key of ``unless`` is set);
    ``example`` is what ``describe()`` shows for it."""
    meta = {"doc": doc, "checks": checks, "each": each, "required": required, "example": example,
            "unless": unless}
    return field(default=default, metadata=meta)


# --- checks: each returns None when the value is fine, else what is wrong ---

def between(lo: float, hi: float) -> Check:
    return lambda v: None if lo <= v <= hi else f"must be {lo}..{hi}, got {v}"


def at_least(lo: float) -> Check:
    return lambda v: None if v >= lo else f"must be >= {lo}, got {v}"


def above(lo: float, at_most: float | None = None) -> Check:
    """lo < v (<= at_most). Written so that NaN fails too."""
    if at_most is None:
        return lambda v: None if v > lo else f"must be > {lo}, got {v}"
    return lambda v: None if lo < v <= at_most else f"must be > {lo} and <= {at_most}, got {v}"


def one_of(*choices: str) -> Check:
    return lambda v: None if v in choices else f"must be one of {', '.join(choices)}, got {v!r}"


def divides(n: int, what: str) -> Check:
    return lambda v: None if n % v == 0 else f"must divide {n} ({what}), got {v}"


def matches(pattern: str, what: str) -> Check:
    rx = re.compile(pattern)
    return lambda v: None if rx.fullmatch(v) else f"{v!r} is not {what} ({pattern})"


def not_empty(v: Any) -> str | None:
    return None if len(v) else "must not be empty"


def unique(v: tuple) -> str | None:
    twice = sorted({x for x in v if v.count(x) > 1})
    return None if not twice else f"{', '.join(map(repr, twice))} listed more than once"


_TCP = re.compile(r"tcp://(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(?P<port>[0-9]+|\*)")


def endpoint(bind: bool = False) -> Check:
    """tcp://HOST:PORT, ipc://PATH or inproc://NAME; host ``*`` only if
    ``bind``, and port ``*`` (one the OS picks, which the service reports)
    only if ``bind``."""
    def check(v: str) -> str | None:
        if v.startswith(("ipc://", "inproc://")) and v.partition("://")[2]:
            return None
        m = _TCP.fullmatch(v)
        if not m:
            return f"{v!r} is not a ZeroMQ endpoint (tcp://HOST:PORT, ipc://PATH or inproc://NAME)"
        if m["port"] == "*":
            return None if bind else f"{v!r}: port '*' is for binding; name the port to connect to"
        if not 1 <= int(m["port"]) <= 65535:
            return f"{v!r}: port must be 1..65535"
        if m["host"] == "*" and not bind:
            return f"{v!r}: host '*' is for binding; name the host to connect to"
        return None
    return check


def regex(v: str) -> str | None:
    try:
        re.compile(v)
    except re.error as exc:
        return f"{v!r} is not a valid regular expression ({exc})"
    return None


def time_zone(v: str) -> str | None:
    if v == "local":
        return None
    try:
        zoneinfo.ZoneInfo(v)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return f"{v!r} is not an IANA time zone name (like 'Europe/Paris') or 'local'"
    return None


def listen_address(v: str) -> str | None:
    """HOST:PORT to listen on; port 0 lets the OS pick (IPv6 hosts in brackets)."""
    host, sep, port = v.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        return f"{v!r} is not HOST:PORT (like 127.0.0.1:7380)"
    return None


def client_endpoint(v: str) -> str | None:
    """Where the client library sends: a ZeroMQ endpoint or an http(s) URL."""
    if v.startswith(("http://", "https://")):
        rest = v.partition("://")[2]
        return None if rest and not rest.startswith("/") else f"{v!r} is not an HTTP URL (http://HOST:PORT)"
    return endpoint()(v)


def one_transport(v: tuple) -> str | None:
    kinds = {x.startswith(("http://", "https://")) for x in v}
    return None if len(kinds) <= 1 else "must all be HTTP URLs or all ZeroMQ endpoints, not a mix"


# --- the sections ---

@dataclass(frozen=True)
class Buck:
    """A buck server: takes batches on its PULL ingest socket and appends them,
    as they arrived, to per-environment time bucket files."""

    name: str = setting("", 'Shown in logs and stats; "" means "buck-<port of ingest>".')
    data_dir: str = setting("./helios-data/buck", "Bucket files go under DATA_DIR/buckets/ENV/...",
                            not_empty)
    ingest: str = setting("tcp://127.0.0.1:7301", "PULL endpoint the buck binds for batches.",
                          endpoint(bind=True))
    window: int = setting(60, "Bucket width in seconds; 1..86400 and must divide 86400.",
                          between(1, DAY), divides(DAY, "a day"))
    fsync: bool = setting(False, "Fsync bucket files after each batch (default: write to the OS only).")
    max_frame_bytes: int = setting(64 * 1024 * 1024, "Larger batch frames are refused (>= 4096).",
                                   at_least(4096))
    stats_interval: float = setting(1.0, "Seconds between writes of DATA_DIR/stats.json (> 0).",
                                    above(0))
    rcvhwm: int = setting(1000, "ZeroMQ receive high-water mark, in messages (>= 1).", at_least(1))
    publish: str = setting("auto", "XPUB endpoint the buck binds for its live feed (helios "
                           'subscribe, check, graphite, web); "auto" is the ingest port + 1 '
                           '(7302 for the default ingest), so bucks on one host never clash; '
                           '"" turns the live feed off.',
                           lambda v: None if v in ("", "auto") else endpoint(bind=True)(v))
    publish_hwm: int = setting(1000, "Live messages queued per subscriber; a subscriber that falls "
                               "further behind misses messages (counted in stats.json), it never "
                               "slows the buck. A whole-batch message is a stored batch (~70 KB), "
                               "so this bounds what a stuck subscriber costs a buck (>= 1).",
                               at_least(1))
    http: str = setting("", 'HOST:PORT the HTTP ingest listens on (POST /v1/events, GET /healthz), '
                        'like "127.0.0.1:7380"; port 0 picks a free one (see stats.json); '
                        '"" turns HTTP ingest off.', lambda v: None if v == "" else listen_address(v))
    durability: str = setting(
        "fsynced", "When HTTP ingest answers: received (once parsed and valid), written (once in "
        "the bucket file: survives a crash of the buck), fsynced (once on disk: survives a crash "
        "of the machine; concurrent requests share one fsync). A request's Helios-Durability "
        "header overrides it. fsynced by default: HTTP sends each batch to one buck, so only the "
        "fsync keeps an acked event through that machine's crash, as two copies do for tailed "
        "lines (docs/analyses/duralog.md).", one_of("received", "written", "fsynced"))
    http_max_body: int = setting(8 * 1024 * 1024, "HTTP request bodies over this many bytes, "
                                 "compressed or after decompression, get 413 (1024..1073741824).",
                                 between(1024, 1 << 30))
    http_max_events: int = setting(100_000, "HTTP requests with more events get 413 "
                                   "(1..10000000).", between(1, 10_000_000))
    http_max_pending: int = setting(256, "HTTP requests in progress at once (from their headers until "
                                    "stored); more get 503 with Retry-After (1..100000).",
                                    between(1, 100_000))
    http_environment: str = setting(
        "default", "Environment of HTTP events that name none (and whose request has no "
        "Helios-Environment header).", matches(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", "an environment name"))
    query: str = setting("auto", "ROUTER endpoint the buck binds for bucket queries (list, fetch, "
                         'stats, prune: helios buckets, helios audit --buck, the porter); "auto" is '
                         'the ingest port + 2 (7303 for the default ingest); "" turns queries off.',
                         lambda v: None if v in ("", "auto") else endpoint(bind=True)(v))
    query_max_bytes: int = setting(4 * 1024 * 1024, "Most bytes of records in one fetch reply: a "
                                   "bucket is streamed in chunks of this size, each read between "
                                   "ingest messages (65536..268435456).", between(65536, 1 << 28))
    metrics: str = setting("", 'HOST:PORT of the Prometheus metrics endpoint (GET /metrics), like '
                           '"127.0.0.1:9731"; port 0 picks a free one (logged, and in DATA_DIR/stats.json); '
                           '"" turns it off.', lambda v: None if v == "" else listen_address(v))
    # --- authentication and limits of what senders may send (docs/security.md) ---
    http_tokens: tuple[str, ...] = setting(
        (), 'Bearer tokens of the HTTP ingest, each "ENV=sha256:HEX" (the hash `helios keygen '
        '--token ENV` prints; "*=sha256:HEX" for every environment; several per environment to '
        "rotate). Set: every request needs `Authorization: Bearer TOKEN` (401 without, 403 for "
        "events of an environment its token is not for). Empty: no authentication.", unique,
        each=(matches(r"(\*|[A-Za-z0-9][A-Za-z0-9_.-]{0,63})=sha256:[0-9a-f]{64}",
                      '"ENV=sha256:" and 64 lower-case hex digits'),))
    http_tls_cert: str = setting("", 'PEM certificate (chain) file: the HTTP ingest speaks HTTPS; "" '
                                 "is plain HTTP (for 127.0.0.1, or behind a TLS proxy).")
    http_tls_key: str = setting("", "PEM private key file of http_tls_cert.")
    http_max_connections: int = setting(1024, "Open HTTP connections at once (idle keep-alive ones "
                                        "too); past it the one that has waited longest for a request "
                                        "is closed, or if none waits the new one (1..1000000).",
                                        between(1, 1_000_000))
    http_max_connections_per_client: int = setting(
        128, "Open HTTP connections from one client address at once; more are answered 503 and "
        "closed at once. Behind a proxy every request comes from its address: raise this, and cap "
        "clients in the proxy (0: no cap; 1..1000000).", between(0, 1_000_000))
    http_header_timeout: float = setting(
        10.0, "Seconds a connection has to send a request's whole headers, from its opening or "
        "from the previous answer (idle keep-alive connections are closed after it too); "
        "slower ones are closed (0 < x <= 3600).", above(0, 3600))
    http_body_timeout: float = setting(
        30.0, "Seconds a request has to send its whole body once its headers are in; slower "
        "ones get 408 and are closed. A request takes one of http_max_pending only once its "
        "body is in, so slow senders cannot hold them. Raise it for large bodies over slow "
        "links (8 MiB at 2 Mbit/s takes 34 s) (0 < x <= 3600).", above(0, 3600))
    http_max_fields: int = setting(1000, "HTTP events with more fields get 400 (0..100000).",
                                   between(0, 100_000))
    http_max_field_bytes: int = setting(1024 * 1024, "HTTP events with a message or a field value "
                                        "larger than this many bytes (msgpack-encoded) get 400 "
                                        "(64..67108864).", between(64, 64 * 1024 * 1024))
    max_raw_bytes: int = setting(64 * 1024 * 1024, "Batch frames whose events would take more "
                                 "than this many bytes uncompressed are refused before anything is "
                                 "decompressed (4096..1073741824).", between(4096, 1 << 30))
    max_batch_events: int = setting(100_000, "Batch frames of more events are refused "
                                    "(1..10000000).", between(1, 10_000_000))
    query_allow_remote: bool = setting(False, "With [security] curve off: answer fetch, prune, record "
                                       "and report queries from other hosts too. Off (the default), "
                                       "only clients on this host (loopback, ipc://) may read bucket "
                                       "contents or delete them; with CURVE on, each key's role and "
                                       "environments decide instead (docs/security.md).")
    check_events: str = setting(
        "header", "How a buck checks the events of a frame it takes: header (the time span the frame's "
        "header gives; a frame whose span leaves the sane range below is decoded and checked event by "
        "event, the others are stored without decoding) or all (every frame is decoded and every event "
        "checked: 1 to 2.5 us of the buck's CPU per event more, several times what storing costs; for senders you do not trust). The porter sets aside "
        "(quarantines) whatever still cannot be indexed or archived.", one_of("header", "all"))
    event_max_age: float = setting(
        0.0, "Seconds before the buck's clock past which an event time is not sane; 0: any time from the "
        "epoch (1970) on is. An event time not sane (before that, negative, past int64, or beyond "
        "event_max_ahead) keeps its line with its receive time (or the time the buck took it) and a mark in its "
        'fields ("helios.corrected": the time as sent and why). >= 0.', at_least(0))
    event_max_ahead: float = setting(
        DAY, "Seconds past the buck's clock beyond which an event time is not sane (see event_max_age). > 0.",
        above(0))
    query_max_request: int = setting(1024 * 1024, "Larger bucket query requests (all parts together) "
                                     "are refused (4096..67108864).",
                                     between(4096, 64 * 1024 * 1024))
    max_message_bytes: int = setting(64 * 1024 * 1024, "Ingest messages larger than this, all parts "
                                     "together, are refused whole (a frame is one part; >= 4096 and "
                                     ">= max_frame_bytes).", at_least(4096))
    max_message_parts: int = setting(65536, "Ingest messages of more parts are refused whole (a re-sent "
                                     "spool slice of small frames can hold ~10,000; 1..10000000).",
                                     between(1, 10_000_000))
    live_max_subscriptions: int = setting(100_000, "Live feed topic prefixes the buck publishes for; "
                                          "subscriptions beyond are ignored and counted (1..10000000).",
                                          between(1, 10_000_000))
    live_max_subscriptions_per_peer: int = setting(
        20_000, "Live feed topic prefixes one peer may have: a CURVE key (all its connections together), "
        "or without CURVE an IP address; beyond, its subscriptions are ignored and counted. A helios web "
        "with 200 pages may need 12,800 (1..10000000).",
        between(1, 10_000_000))
    full_retry: float = setting(1.0, "Once the data directory is full, seconds between tries to "
                                "write again; meanwhile ZeroMQ batches wait in their queues and the "
                                "tailers' spools, and HTTP writes get 507 (0 < x <= 60).",
                                above(0, 60))
    full_log_interval: float = setting(10.0, "While the data directory is full, what was refused is "
                                       "logged once per this many seconds (0 < x <= 3600).",
                                       above(0, 3600))
    # --- OpenTelemetry (helios.buck.otlp) ---
    otlp: bool = setting(True, "With http set: take OpenTelemetry logs (OTLP/HTTP, protobuf or JSON, "
                         "gzip too) at POST /v1/logs, with the tokens, limits and durability of "
                         "/v1/events. Point an SDK or collector at it: "
                         "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=http://HOST:PORT/v1/logs. false: 404.")

    @staticmethod
    def cross_check(values: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
        cert, key = values.get("http_tls_cert"), values.get("http_tls_key")
        if cert is not None and key is not None and bool(cert) != bool(key):
            yield ("http_tls_key" if cert else "http_tls_cert"), "http_tls_cert and http_tls_key go together"
        yield from message_fits_frame(values)


def message_fits_frame(values: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    frame, message = values.get("max_frame_bytes"), values.get("max_message_bytes")
    if frame is not None and message is not None and message < frame:
        yield "max_message_bytes", f"must be >= max_frame_bytes ({frame}): a frame is a message of one part"


@dataclass(frozen=True)
class Spool:
    """The spool keys: one sub-schema, the same keys, defaults and checks in
    [tailer] and [relay] (both sections are Spool plus their own keys). Not a
    section of its own."""

    spool_window: int = setting(60, "Width of a spool bucket in seconds; 1..86400 and must divide "
                                "86400. A bucket is re-sent once its window has passed.",
                                between(1, DAY), divides(DAY, "a day"))
    spool_max_bytes: int = setting(1024 ** 3, "The spool is pruned, oldest bucket first, above this "
                                   "size (>= 1 MiB).", at_least(1024 * 1024))
    spool_max_age: float = setting(86400.0, "Spool buckets older than this many seconds are "
                                   "pruned (> 0).", above(0))
    resend_jitter: float = setting(10.0, "Each closed spool bucket is re-sent up to this many "
                                   "seconds after its window ends (0..3600).", between(0, 3600))
    live_wait: float = setting(1.0, "How long a batch waits for a connected but busy buck before "
                               "it is left to the spool's re-send (0..60).", between(0, 60))


@dataclass(frozen=True)
class Tailer(Spool):
    """The tailer of one host: follows files by glob, parses their lines, and
    sends each batch to several bucks."""

    environment: str = setting(
        "default", "Environment of the events; it becomes a directory name.",
        matches(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", "an environment name"))
    host: str = setting("", 'Host name of the events; "" means this machine\'s hostname.')
    paths: tuple[str, ...] = setting((), "Globs of the files to follow (none: only the journal, "
                                     "with journal = true or journal_dir).",
                                     each=(not_empty,), required=True, unless=("journal", "journal_dir"),
                                     example=["/var/log/syslog", "/var/log/app/*.log"])
    format: str = setting("auto", "Line format: auto, rfc3164, rfc5424, iso8601, json or raw.",
                          one_of("auto", "rfc3164", "rfc5424", "iso8601", "json", "raw"))
    app: str = setting("", "App name for lines that do not name one.")
    timezone: str = setting("local", "Zone of timestamps without an offset: an IANA name "
                            '(like "Europe/Paris"), "UTC" or "local" (this host\'s zone, with its DST '
                            "rules); [[tailer.parse]] may set one per path.", time_zone)
    start_at: str = setting("end", "end or beginning: where to start in files that exist at first "
                            "start (files created later are always read from the beginning).",
                            one_of("end", "beginning"))
    bucks: tuple[str, ...] = setting((), "Buck ingest endpoints to connect to; left out, [mesh] bucks "
                                     "gives them (this list wins, for bucks with unrelated ports; an entry may be a buck's address, HOST[:PORT]).", not_empty,
                                     unique,
                                     each=(endpoint(),), required=True,
                                     example=["tcp://buck-a:7301", "tcp://buck-b:7301"])
    copies: int = setting(2, "Each batch goes to this many distinct bucks (1..8; with fewer "
                          "bucks, to every one, and the service says so once).", between(1, 8))
    batch_events: int = setting(2000, "A batch closes at this many events (1..100000)...",
                                between(1, 100_000))
    batch_bytes: int = setting(1024 * 1024, "... or this many bytes of lines (1024..67108864)...",
                               between(1024, 64 * 1024 * 1024))
    batch_delay: float = setting(0.1, "... or this many seconds after its first line (0 < x <= 60).",
                                 above(0, 60))
    poll_interval: float = setting(0.02, "Seconds between looks at idle files (0 < x <= 10).",
                                   above(0, 10))
    rescan_interval: float = setting(1.0, "Seconds between glob rescans for new files "
                                     "(0 < x <= 3600).", above(0, 3600))
    sndhwm: int = setting(1000, "ZeroMQ send high-water mark per buck, in messages (>= 1).",
                          at_least(1))
    state_dir: str = setting("./helios-data/tailer", "Where the tailer keeps its positions file and "
                             "its spool (STATE_DIR/positions.json, STATE_DIR/spool/).", not_empty)
    spool: bool = setting(True, "Append every batch to the local spool before its offset is saved, "
                          "and re-send each closed spool bucket to one random buck.")
    positions_interval: float = setting(1.0, "Seconds between saves of the positions file "
                                        "(0 < x <= 60).", above(0, 60))
    rotate_wait: float = setting(5.0, "A rotated or deleted file is let go once it has stayed at "
                                 "its end this many seconds (any growth restarts the wait).",
                                 above(0, 3600))
    partial_flush: float = setting(5.0, "A last line without its newline is sent as it is after "
                                   "this many seconds, marked unterminated (0 < x <= 3600).",
                                   above(0, 3600))
    max_line_bytes: int = setting(1024 * 1024, "Longer lines are split into pieces of this size, "
                                  "each marked with a 'split' field (256..67108864).",
                                  between(256, 64 * 1024 * 1024))
    multiline_start: str = setting("", "A regular expression that starts an event; lines that do "
                                   "not match it belong to the event before (stack traces). "
                                   '"" means every line is an event.', regex)
    max_open_files: int = setting(512, "Above this many open files, the idlest are closed and "
                                  "reopened when they grow (>= 8).", at_least(8))
    metrics: str = setting("", 'HOST:PORT of the Prometheus metrics endpoint (GET /metrics), like '
                           '"127.0.0.1:9732"; port 0 picks a free one (logged, and in STATE_DIR/stats.json); '
                           '"" turns it off.', lambda v: None if v == "" else listen_address(v))
    parse: tuple[dict, ...] = setting((), "Per-path parsing, first matching table wins: [[tailer.parse]] "
                                      "with paths (globs), and optionally timezone, format, app, key_values "
                                      "(every key=value pair becomes a field), mask (regexes whose matches "
                                      "are overwritten with '*' before lines leave the host), drop (regexes whose "
                                      "lines do not leave the host; counted), rename, fields, "
                                      "encoding (utf-16, shift_jis, ...), environment (of these files' events) and "
                                      "[[tailer.parse.rules]] "
                                      "(regex or grok, time_format, timezone, app, fields, environment; first match wins, "
                                      "the default parser reads the rest). See README, Parsing.",
                                      each=(lambda v: _parse_table(v),))
    encoders: int = setting(2, "Processes that parse and encode lines beside the one that reads "
                            "them (0..16; 0: the tailer does it all in one process). Parsing is most "
                            "of a tailer's work: with 2, a backlog is read on every core of a small host.",
                            between(0, 16))
    # --- the systemd journal (README, The systemd journal) ---
    journal: bool = setting(False, "Also read the local systemd journal (journalctl -o export --follow); "
                            "its cursor is kept with the positions.")
    journal_dir: str = setting("", "A directory of journal files to read instead of the local journal "
                               '(journalctl --directory); setting it turns the journal on. "": the local one.')
    journal_include_units: tuple[str, ...] = setting((), 'Read only these units\' entries ("nginx" means '
                                                     '"nginx.service"), and those of journal_include_identifiers; '
                                                     "none: every entry.", unique, each=(not_empty,))
    journal_include_identifiers: tuple[str, ...] = setting((), "Read only entries with these SYSLOG_IDENTIFIERs "
                                                           "(and those of journal_include_units).",
                                                           unique, each=(not_empty,))
    journal_exclude_units: tuple[str, ...] = setting((), "Leave out these units' entries.", unique,
                                                     each=(not_empty,))
    journal_exclude_identifiers: tuple[str, ...] = setting((), "Leave out entries with these "
                                                           "SYSLOG_IDENTIFIERs.", unique, each=(not_empty,))
    journal_start_at: str = setting("", 'Where to start in the journal when no cursor is saved yet: "end" '
                                    '(after its newest entry), "beginning", or "" (as start_at).',
                                    lambda v: None if v in ("", "end", "beginning") else
                                    f'must be "end", "beginning" or "" (as start_at), got {v!r}')
    # --- containers and many files (README: Containers and Kubernetes; Many files) ---
    kubernetes: bool = setting(False, "Follow container logs: kubernetes_root/NAMESPACE_POD_UID/CONTAINER/N.log "
                               "(CRI) and docker_root/ID/ID-json.log (Docker json-file), unwrapped, with "
                               "partial records joined into one event and namespace, pod, pod_uid, container "
                               "and stream as fields.")
    kubernetes_root: str = setting("/var/log/pods", "Where the kubelet keeps pod logs.", not_empty)
    docker_root: str = setting("/var/lib/docker/containers", "Where Docker keeps json-file logs "
                               '("" to leave Docker out).')
    watch: str = setting("auto", 'How changes are noticed: "inotify" (one watch per directory: an idle '
                         'tailer sleeps), "poll" (a look every poll_interval), or "auto" (inotify, '
                         "with polling for network and FUSE filesystems or where inotify is missing).",
                         one_of("auto", "inotify", "poll"))
    watch_safety_poll: float = setting(2.0, "With inotify, every open file is still looked at this "
                                       "often, and the globs rescanned every rescan_interval x 60, "
                                       "whatever the events say (0 < x <= 60).", above(0, 60))

    @staticmethod
    def cross_check(values: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
        if "paths" in values and not values["paths"] and not values.get("journal") and not values.get("journal_dir"):
            yield "paths", "must not be empty"


def _parse_table(v: dict) -> str | None:
    from helios.parsing.profiles import check_table  # pure; imports nothing of config
    return check_table(v)


def host_port(v: str) -> str | None:
    """HOST:PORT to connect to or serve on (IPv6 hosts in brackets)."""
    host, sep, port = v.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        return f"{v!r} is not HOST:PORT (like 127.0.0.1:7390)"
    return None


@dataclass(frozen=True)
class Web:
    """The web process: the browser live tail. It subscribes to the live feed
    (PUB) of every buck, dedups, merges in time order and filters per browser,
    and serves the page and its socket.io endpoint."""

    bucks_pub: tuple[str, ...] = setting(
        ("tcp://127.0.0.1:7302",), "Live feed (PUB) endpoints of the bucks, one per buck; left out, [mesh] "
        "bucks gives them (this list wins; an entry may be a buck's address, HOST[:PORT]).",
        not_empty, unique, each=(endpoint(),))
    listen: str = setting("127.0.0.1:7390", "HOST:PORT the page and socket.io are served on "
                          "(port 0: a free one, logged).", listen_address)
    max_lines: int = setting(10_000, "Lines a page keeps (oldest dropped first); also what a "
                             "paused page holds back (100..1000000).", between(100, 1_000_000))
    reorder_delay: float = setting(0.1, "Seconds an event waits so that the streams of all bucks "
                                   "merge in time order (0..5).", between(0, 5))
    dedup_window: float = setting(60.0, "Seconds an event id is remembered to drop the copy from "
                                  "another buck (0 < x <= 3600)...", above(0, 3600))
    dedup_max: int = setting(200_000, "... and at most this many ids (1000..10000000).",
                             between(1000, 10_000_000))
    max_age: float = setting(60.0, "Events first read more than this many seconds ago are not "
                             "live (re-sent spool buckets) and are not shown; 0: only those older "
                             "than the dedup window are not.", at_least(0))
    session_rate: int = setting(20_000, "Most lines per second sent to one browser (1..1000000).",
                                between(1, 1_000_000))
    max_lag: float = setting(0.5, "A line that waited this many seconds for a slow browser is "
                             "dropped and counted instead (0 < x <= 60).", above(0, 60))
    max_delay: float = setting(5.0, "A line that reaches the web process more than this many "
                               "seconds after its tailer read it (the mesh is behind) is counted "
                               "as dropped instead of shown late; needs host clocks that agree "
                               "to well within it. 0: show late lines.", at_least(0))
    flush_interval: float = setting(0.05, "Seconds between batches sent to a browser "
                                    "(0 < x <= 1).", above(0, 1))
    max_line_chars: int = setting(4096, "Longer messages are cut for display (80..1000000).",
                                  between(80, 1_000_000))
    # --- who may look (docs/security.md) ---
    users: tuple[str, ...] = setting(
        (), 'Users who may log in, each "NAME:HASH" or "NAME:HASH:ENV,ENV" (only those '
        "environments); HASH is the argon2id hash `helios hash-password` prints. With users or "
        "tokens set, every page and socket needs a login; listening beyond 127.0.0.1 needs them.",
        unique, each=(matches(r"[A-Za-z0-9_.@-]{1,64}:\$argon2id\$[^:\s]+(:[A-Za-z0-9_.,*-]+)?",
                              '"NAME:$argon2id$...[:ENV,ENV]"'),))
    tokens: tuple[str, ...] = setting(
        (), 'Login tokens, each "NAME:sha256:HEX" or "NAME:sha256:HEX:ENV,ENV" (the hash `helios '
        "keygen --token NAME` prints): typed into the login page, or sent by scripts as "
        "`Authorization: Bearer TOKEN`.", unique,
        each=(matches(r"[A-Za-z0-9_.@-]{1,64}:sha256:[0-9a-f]{64}(:[A-Za-z0-9_.,*-]+)?",
                      '"NAME:sha256:HEX[:ENV,ENV]"'),))
    secret_file: str = setting("", "File holding the key that signs session cookies (readable by "
                               'its owner only); "" makes a new key at each start, which logs '
                               "everybody out at a restart.")
    logouts_file: str = setting("", "File that records ended logins (a cookie copied before a "
                                "logout stays refused across restarts); \"\" is SECRET_FILE.logouts "
                                "with a secret_file (sessions outlive restarts only with one), "
                                "else the record is kept in memory only.")
    session_max_age: float = setting(43200.0, "Seconds a login lasts (60..31536000).",
                                     between(60, 31_536_000))
    secure_cookies: bool = setting(False, "Send the session cookie over HTTPS only (set it when a "
                                   "TLS proxy serves the page).")
    max_message_bytes: int = setting(65536, "Larger socket.io messages from a browser close its "
                                     "connection (1024..16777216).", between(1024, 16 * 1024 * 1024))
    max_connections: int = setting(200, "Requests served at once and open socket.io websockets "
                                   "(each holds a thread); more are answered 503 (1..100000).",
                                   between(1, 100_000))
    # --- slow clients and DNS rebinding (docs/security.md) ---
    max_waiting: int = setting(4096, "Open connections that have not yet sent a whole request "
                               "(idle keep-alive ones too): they wait without a thread; more are "
                               "answered 503 and closed (1..1000000).", between(1, 1_000_000))
    max_connections_per_client: int = setting(
        64, "Open connections from one client address at once (waiting, served and websockets); "
        "more are answered 503 and closed. Behind a proxy every request comes from its address: "
        "raise this and cap clients in the proxy (0: no cap; 1..1000000).", between(0, 1_000_000))
    header_timeout: float = setting(
        10.0, "Seconds a connection has to send a request's whole headers from its opening; "
        "slower (and idle) connections are closed, having held no thread (0 < x <= 3600).",
        above(0, 3600))
    body_timeout: float = setting(
        30.0, "Seconds a request has to send its body, and an answer has to be taken by a slow "
        "reader, before the connection is closed (0 < x <= 3600).", above(0, 3600))
    allowed_hosts: tuple[str, ...] = setting(
        (), "Host names (or HOST:PORT) the web app answers to besides its listen address, "
        "localhost, 127.0.0.1 and [::1]: the names people type to reach it (a proxy's name). A "
        "request with any other Host header gets 421, which stops DNS rebinding. \"*\" allows "
        "every Host (not advised).", unique,
        each=(matches(r"\*|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?|[A-Za-z0-9_.-]{1,253}(:[0-9]{1,5})?",
                      "a host name, [IPv6] or HOST:PORT"),))
    login_max_failures: int = setting(
        5, "Failed logins in a row, per user name and per client address, before further tries "
        "wait (1..1000)...", between(1, 1000))
    login_backoff: float = setting(
        1.0, "... this many seconds, doubled after each further failure up to login_max_backoff "
        "(0 < x <= 3600); a try during the wait gets 429 with Retry-After.", above(0, 3600))
    login_max_backoff: float = setting(300.0, "The longest wait between failed logins "
                                       "(1..86400).", between(1, DAY))
    metrics: str = setting("", 'HOST:PORT of the Prometheus metrics endpoint (GET /metrics): live '
                           'events received, shown once, sent to browsers and dropped, open pages; '
                           'port 0 picks a free one (logged); "" turns it off.',
                           lambda v: None if v == "" else listen_address(v))


@dataclass(frozen=True)
class Client:
    """The client library applications import (helios.client): where its
    events go, and how it behaves when they cannot go. record() never blocks
    and never raises; an event that cannot be delivered is logged whole
    through Python's logging (ERROR, logger helios.client) and counted."""

    bucks: tuple[str, ...] = setting(
        ("tcp://127.0.0.1:7301",), "Where events go: buck ZeroMQ ingest endpoints (tcp://HOST:PORT) "
        "or buck HTTP ingest URLs (http://HOST:PORT, maybe a load balancer); not a mix.",
        not_empty, unique, one_transport, each=(client_endpoint,))
    copies: int = setting(2, "ZeroMQ: each batch goes to this many distinct bucks (1..8; fewer "
                          "if fewer are listed). HTTP: each batch goes to one buck, acked.",
                          between(1, 8))
    environment: str = setting(
        "default", "Environment of events that name none.",
        matches(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", "an environment name"))
    host: str = setting("", 'Host of events that name none; "" means this machine\'s hostname.')
    app: str = setting("", 'App of events that name none; "" means the program\'s name.')
    queue_size: int = setting(10_000, "Events waiting to be sent; record() logs what does not "
                              "fit (1..10000000).", between(1, 10_000_000))
    batch_events: int = setting(500, "Most events per batch sent (1..100000); a batch leaves as "
                                "soon as the queue is empty.", between(1, 100_000))
    in_flight: int = setting(4, "HTTP: requests in flight per buck, each on its own keep-alive "
                             "connection (1..64).", between(1, 64))
    durability: str = setting("", 'HTTP: ack level asked for (received, written, fsynced); "" '
                              "means the buck's own.", one_of("", "received", "written", "fsynced"))
    timeout: float = setting(10.0, "HTTP: seconds before a request without an answer counts as "
                             "failed and is retried (0 < x <= 600).", above(0, 600))
    retry_for: float = setting(60.0, "Seconds a batch is retried (bucks down, 503, timeouts) "
                               "before its events are logged as undeliverable (0 < x <= 86400).",
                               above(0, 86400))
    flush_timeout: float = setting(5.0, "Seconds the process waits at exit for queued events to "
                                   "be delivered; the rest are logged (0..3600).", between(0, 3600))
    log_max_bytes: int = setting(65_536, "An undeliverable event is logged whole up to this "
                                 "size; beyond it, its first bytes and its size (256..1073741824).",
                                 between(256, 1 << 30))
    relay: str = setting("", "The endpoint of this host's relay (helios relay; its [relay] listen), "
                         'like "ipc:///run/helios/relay.sock": when set, every batch goes there '
                         "(the cheapest way out of the application), and the relay spools it and "
                         'sends it on to the bucks; bucks and copies are then unused. "" sends to '
                         "the bucks directly.", lambda v: None if v == "" else endpoint()(v))
    token: str = setting("", "HTTP: the bearer token sent with every request (the bucks' [buck] "
                         'http_tokens hold its hash); "" sends none. Keep this file unreadable to '
                         "others.", lambda v: None if v == "" or v.isprintable() and " " not in v
                         else "must be printable, without spaces")
    tls_ca: str = setting("", 'HTTPS: a PEM file of the certificate authorities to trust for the '
                          'bucks (a private CA or a self-signed certificate); "" trusts the system\'s.')


@dataclass(frozen=True)
class Subscribe:
    """Live subscribers (helios subscribe, check and graphite): they connect
    to the live feed (PUB) of every buck and drop the second copy of each event."""

    bucks: tuple[str, ...] = setting(
        ("tcp://127.0.0.1:7302",), "Live feed (PUB) endpoints of the bucks, one per buck "
        "(each buck's [buck] publish); left out, [mesh] bucks gives them (this list wins; an entry may be a buck's address, HOST[:PORT]).", not_empty, unique, each=(endpoint(),))
    dedup_window: float = setting(
        10.0, "Seconds an event id is remembered to drop the copy from another buck; events first "
        "read longer ago are not live (re-sent spool buckets) and are skipped (0 < x <= 3600).",
        above(0, 3600))
    dedup_max: int = setting(1_000_000, "Most event ids remembered; past it the window shrinks "
                             "(1000..100000000).", between(1000, 100_000_000))
    rcvhwm: int = setting(10_000, "Live messages queued per buck in this process (>= 1).", at_least(1))
    connect_timeout: float = setting(2.0, "Seconds to wait at start for the bucks to connect "
                                     "(0 < x <= 600).", above(0, 600))


@dataclass(frozen=True)
class Graphite:
    """The graphite bridge: counts live events per environment, app, severity
    and host each interval and writes them to carbon's plaintext protocol."""

    carbon: str = setting("127.0.0.1:2003", "Carbon's plaintext (line) receiver, HOST:PORT.", host_port)
    prefix: str = setting("helios", "First components of every metric path.",
                          matches(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*", "a graphite path"))
    interval: int = setting(10, "Seconds per data point; make it the finest resolution of "
                            "carbon's storage schema for these metrics (1..3600).", between(1, 3600))
    forget_after: int = setting(360, "Intervals without events after which a series is no longer "
                                "written as 0 (1..1000000).", between(1, 1_000_000))
    max_series: int = setting(100_000, "Most series counted in one interval; events of further "
                              "ones count under .other (100..10000000).", between(100, 10_000_000))
    max_buffer: int = setting(1_000_000, "Metric lines kept while carbon is unreachable; the "
                              "oldest go first (1000..100000000).", between(1000, 100_000_000))


@dataclass(frozen=True)
class Relay(Spool):
    """The relay of one host (helios relay): takes batches from the
    applications of the host (client library with [client] relay) on a local
    socket, appends each to its spool, and sends it to several bucks, with the
    same spool, re-send and reconnect behaviour as the tailer. With syslog_udp,
    syslog_tcp or syslog_tls it also takes syslog from the network, each message
    spooled before the next read (README, Syslog over the network)."""

    listen: str = setting("ipc:///run/helios/relay.sock", "PULL endpoint the relay binds for the "
                          "applications' batches; an ipc:// path's directory is created if missing.",
                          endpoint(bind=True))
    state_dir: str = setting("./helios-data/relay", "Where the relay keeps its spool (STATE_DIR/spool/) "
                             "and what it re-sent (STATE_DIR/resent.json).", not_empty)
    bucks: tuple[str, ...] = setting((), "Buck ingest endpoints to connect to; left out, [mesh] bucks "
                                     "gives them (this list wins, for bucks with unrelated ports; an entry may be a buck's address, HOST[:PORT]).", not_empty,
                                     unique,
                                     each=(endpoint(),), required=True,
                                     example=["tcp://buck-a:7301", "tcp://buck-b:7301"])
    copies: int = setting(2, "Each batch goes to this many distinct bucks (1..8; with fewer "
                          "bucks, to every one, and the service says so once).", between(1, 8))
    rcvhwm: int = setting(1000, "ZeroMQ receive high-water mark, in messages (>= 1); a full queue "
                          "makes the applications' sends wait.", at_least(1))
    sndhwm: int = setting(1000, "ZeroMQ send high-water mark per buck, in messages (>= 1).",
                          at_least(1))
    max_frame_bytes: int = setting(64 * 1024 * 1024, "Larger batch frames are refused (>= 4096).",
                                   at_least(4096))
    max_message_bytes: int = setting(64 * 1024 * 1024, "Messages larger than this, all parts together, "
                                     "are refused whole (>= 4096 and >= max_frame_bytes).", at_least(4096))
    max_message_parts: int = setting(4096, "Messages of more parts are refused whole (1..10000000).",
                                     between(1, 10_000_000))
    sync_interval: float = setting(1.0, "Seconds between fsyncs of the spool (0 < x <= 60): what a "
                                   "crash of the machine could lose. A crash of the relay alone "
                                   "loses nothing it spooled.", above(0, 60))
    stats_interval: float = setting(1.0, "Seconds between writes of STATE_DIR/stats.json (> 0).",
                                    above(0))
    metrics: str = setting("", 'HOST:PORT of the Prometheus metrics endpoint (GET /metrics), like '
                           '"127.0.0.1:9733"; port 0 picks a free one (logged, and in STATE_DIR/stats.json); '
                           '"" turns it off.', lambda v: None if v == "" else listen_address(v))

    # Syslog over the network (helios.syslognet; README, Syslog over the network).
    syslog_udp: tuple[str, ...] = setting((), 'HOST:PORT addresses to take syslog on over UDP (RFC 5426), '
                                          'like "0.0.0.0:514"; port 0 picks a free one (in STATE_DIR/stats.json).',
                                          unique, each=(listen_address,))
    syslog_tcp: tuple[str, ...] = setting((), "HOST:PORT addresses to take syslog on over TCP, both RFC 6587 "
                                          "framings (octet counting and newline), told apart per message.",
                                          unique, each=(listen_address,))
    syslog_tls: tuple[str, ...] = setting((), "HOST:PORT addresses to take syslog on over TLS (RFC 5425, "
                                          "usually port 6514); needs syslog_tls_cert and syslog_tls_key.",
                                          unique, each=(listen_address,))
    syslog_tls_cert: str = setting("", "PEM file of the TLS certificate (and its chain) for syslog_tls.")
    syslog_tls_key: str = setting("", "PEM file of the private key of syslog_tls_cert.")
    syslog_environment: str = setting(
        "default", "Environment of the events taken over syslog.",
        matches(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", "an environment name"))
    syslog_timezone: str = setting("local", "Zone of syslog timestamps without an offset (RFC 3164): an "
                                   'IANA name, "UTC" or "local".', time_zone)
    syslog_max_message_bytes: int = setting(64 * 1024, "Longer syslog messages are cut to this many bytes "
                                            "and marked truncated (counted: oversized) (256..16777216).",
                                            between(256, 16 * 1024 * 1024))
    syslog_idle_timeout: float = setting(600.0, "A syslog TCP/TLS connection that sends nothing for this "
                                         "many seconds is closed (counted: idle timeout) (> 0).", above(0))
    syslog_max_connections: int = setting(1000, "More syslog TCP/TLS connections at once are refused "
                                          "(counted: too many connections) (1..100000).", between(1, 100_000))
    syslog_workers: int = setting(2, "Processes that parse and encode syslog messages beside the relay's "
                                  "own, which reads the sockets and spools (0..16; 0: the relay does it all).",
                                  between(0, 16))

    @staticmethod
    def cross_check(values: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
        yield from message_fits_frame(values)
        if values.get("syslog_tls"):
            for key in ("syslog_tls_cert", "syslog_tls_key"):
                if values.get(key) == "":
                    yield key, "syslog_tls needs a certificate and its key (syslog_tls_cert, syslog_tls_key)"


@dataclass(frozen=True)
class Query:
    """Operator tools that ask the bucks over the bucket query protocol
    (helios buckets, helios audit --buck): which bucks, how long to wait."""

    bucks: tuple[str, ...] = setting(
        ("tcp://127.0.0.1:7303",), "Bucket query (ROUTER) endpoints of the bucks, one per buck "
        "(each buck's [buck] query); left out, [mesh] bucks gives them (this list wins; an entry may be a buck's address, HOST[:PORT]).", not_empty, unique, each=(endpoint(),))
    timeout: float = setting(5.0, "Seconds to wait for a buck's answer; a buck that does not "
                             "answer in time is reported as down, the others are not held up "
                             "(0 < x <= 600).", above(0, 600))


def blacklist_entry(v: str) -> str | None:
    from helios.porter.windows import parse_blacklist_entry  # pure, and imports nothing of config

    try:
        parse_blacklist_entry(v)
    except ValueError as exc:
        return str(exc)
    return None


def http_url(v: str) -> str | None:
    rest = v.partition("://")[2]
    if not v.startswith(("http://", "https://")) or not rest or rest.startswith("/"):
        return f"{v!r} is not an HTTP URL (like http://127.0.0.1:9200)"
    return None


@dataclass(frozen=True)
class Porter:
    """The porter (helios porter): loads every closed bucket window from the
    bucks into the recent index (deduplicated, sorted by time), archives
    windows older than the archive age, and asks the bucks to prune windows
    that are indexed, archived and past the buck retention age."""

    bucks: tuple[str, ...] = setting(
        ("tcp://127.0.0.1:7303",), "Bucket query (ROUTER) endpoints of every buck, one per buck "
        "(each buck's [buck] query); left out, [mesh] bucks gives them (this list wins; an entry may be a buck's address, HOST[:PORT]).", not_empty, unique, each=(endpoint(),))
    environments: tuple[str, ...] = setting(
        (), "Environments to port; empty: every environment the bucks hold.", unique,
        each=(matches(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", "an environment name"),))
    state_dir: str = setting("./helios-data/porter", "Where the porter keeps what it has done "
                             "(STATE_DIR/porter.db), its dedup ledger (STATE_DIR/seen/) and its "
                             "status (STATE_DIR/status.json).", not_empty)
    index: str = setting("sqlite", "The recent index: sqlite (embedded, files under index_dir), "
                         "elasticsearch or opensearch (at index_url).",
                         one_of("sqlite", "elasticsearch", "opensearch"))
    index_url: str = setting("", "URL of Elasticsearch or OpenSearch, like http://127.0.0.1:9200 "
                             "(credentials from the URL or the client's usual environment).",
                             lambda v: None if v == "" else http_url(v))
    index_dir: str = setting("./helios-data/index", "Where the sqlite index keeps its files.", not_empty)
    index_name: str = setting("helios-recent", "Name of the recent index (sqlite: its folder under "
                              "index_dir; Elasticsearch/OpenSearch: the prefix of its daily indices).",
                              matches(r"[a-z0-9][a-z0-9_.-]{0,99}", "an index name (lower case)"))
    archive: str = setting("folder", "The archive: folder (embedded, under archive_dir) or s3 "
                           "(s3_bucket; endpoint, region and credentials from s3_endpoint and "
                           "boto3's usual configuration).", one_of("folder", "s3"))
    archive_dir: str = setting("./helios-data/archive", "Where the folder archive keeps its objects.",
                               not_empty)
    s3_bucket: str = setting("", "The S3 bucket of the archive (archive = s3).")
    s3_prefix: str = setting("", 'Prefix of every archive key in the S3 bucket, like "helios/".')
    s3_endpoint: str = setting("", 'URL of an S3-compatible store (MinIO, ...); "" is AWS (or '
                               "AWS_ENDPOINT_URL).", lambda v: None if v == "" else http_url(v))
    archive_level: int = setting(19, "zstd level of archive objects (1..22).", between(1, 22))
    archive_public_key: str = setting("", "Seal every archive object to this public key file (`helios keygen "
                                      "NAME`: NAME.key; PyNaCl sealed box, helios.archive.seal): the store "
                                      "never holds plaintext, and a changed object is refused on read. "
                                      "Writing needs only this; keep it to the porters (anyone who has it "
                                      'can seal objects). "" with archive_secret_key "" stores objects unsealed.')
    archive_secret_key: str = setting("", "The secret key file (private/NAME.key_secret, mode 0600) of a "
                                      "sealed archive: needed to read it (history builds, export, and a "
                                      "porter re-archiving a window that is already archived); its public "
                                      "half seals, so archive_public_key may then be left out.")
    archive_blacklist: tuple[str, ...] = setting(
        (), 'Windows the archiver skips, each "ENV/2026-11-20T10:00" (the window of ENV holding '
        'that instant, UTC unless an offset is given) or a bucket id "ENV/20261120/100000-60s". '
        "They are pruned like archived ones.", each=(blacklist_entry,))
    grace: float = setting(2.0, "Seconds after a window's end before it is loaded: for buck clocks "
                           "that disagree a little, and for the bucks to close it; a longer wait sorts "
                           "nothing better, since bucks file events by arrival (docs/analyses/sortalog.md) "
                           "(0..3600).", between(0, 3600))
    archive_age: float = setting(48 * 3600.0, "Windows that ended this many seconds ago are archived "
                                 "(>= 0).", at_least(0))
    prune_age: float = setting(72 * 3600.0, "Windows that ended this many seconds ago, once indexed "
                               "and archived, are pruned from the bucks: the buck retention age (a "
                               "window is never pruned before it is archived, so a prune_age under "
                               "archive_age acts as archive_age; >= 0).", at_least(0))
    metrics: str = setting("", 'HOST:PORT of the Prometheus metrics endpoint (GET /metrics): windows '
                           'indexed, archived and pruned, and what is behind per environment; port 0 '
                           'picks a free one (logged); "" turns it off.',
                           lambda v: None if v == "" else listen_address(v))
    recent_days: int = setting(7, "Days of events the recent index keeps: older days are dropped "
                               "whole (1..3650).", between(1, 3650))
    dedup_horizon: float = setting(86400.0, "The porter remembers which window each event was "
                                   "ported from, to drop copies that reach a later window (spool "
                                   "re-sends), for archive_age plus this many seconds (>= 0).",
                                   at_least(0))
    poll_interval: float = setting(5.0, "Seconds between looks at the bucks when there is nothing "
                                   "to do (0 < x <= 3600).", above(0, 3600))
    timeout: float = setting(10.0, "Seconds to wait for a buck's answer to one request; a buck that "
                             "does not answer is reported as down and the others go on "
                             "(0 < x <= 600).", above(0, 600))
    backoff_min: float = setting(1.0, "First wait, in seconds, before retrying an index or archive "
                                 "that failed; doubled at each failure ... (0 < x <= 3600)", above(0, 3600))
    backoff_max: float = setting(300.0, "... up to this many seconds (0 < x <= 86400).", above(0, 86400))
    workers: int = setting(2, "Processes that load the index, each a window at a time (0: load in "
                           "the porter's own process; 0..16).", between(0, 16))
    index_open_windows: bool = setting(True, "Also index the events of windows the bucks still hold open, "
                                       "each pass (poll_interval), as they arrive: searchable within seconds "
                                       "instead of once their window closed (false: only closed windows are "
                                       "loaded). A closed window's load goes on from where the early loads "
                                       "left off, so each event is still fetched and decoded once.")

    @staticmethod
    def cross_check(values: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
        v = values.get
        if v("index") in ("elasticsearch", "opensearch") and v("index_url") == "":
            yield "index_url", f"required when index = {v('index')!r}"
        if v("archive") == "s3" and v("s3_bucket") == "":
            yield "s3_bucket", "required when archive = 's3'"
        if v("backoff_min") is not None and v("backoff_max") is not None and v("backoff_max") < v("backoff_min"):
            yield "backoff_max", f"must be at least backoff_min ({v('backoff_min')}), got {v('backoff_max')}"


@dataclass(frozen=True)
class History:
    """History indexes on request (helios history, archie in helios web): a
    request (environment, start, end) gets a temporary index named
    helios-history-ID, built by `helios history serve` from the archive and
    the bucks (the [porter] archive, index and bucks settings), deleted after
    expiry. Requests for the same range share one build."""

    dir: str = setting("./helios-data/history", "Where the requests are kept (DIR/requests.db) and, with "
                       "the sqlite index, the history indexes (DIR/indexes/helios-history-ID/). The "
                       "web, the CLI and `helios history serve` must all see this directory.", not_empty)
    expiry: float = setting(86400.0, "Seconds a history index is kept once ready; then it is deleted. "
                            "Asking again for the same range starts the count again (1..31536000).",
                            between(1, 365 * DAY))
    max_range: float = setting(7 * 86400.0, "Longest time range, in seconds, one request may span "
                               "(60..31536000).", between(60, 365 * DAY))
    margin: float = setting(900.0, "Events reach the bucks a little after their time (batching, spool "
                            "re-sends), so windows up to this many seconds beyond either end of the "
                            "range are read too, and only their events in range kept (0..86400).",
                            between(0, DAY))
    builds: int = setting(1, "Builds one `helios history serve` runs at once (1..16); several serve "
                          "processes may share DIR.", between(1, 16))
    load_workers: int = setting(2, "Processes that load each build into a sqlite history index "
                                "(1..16).", between(1, 16))
    poll_interval: float = setting(1.0, "Seconds between looks at the requests for new ones and "
                                   "expired ones (0 < x <= 60).", above(0, 60))
    lease: float = setting(60.0, "A build whose serve process has not reported for this many seconds "
                           "(it died) is taken over by another (5..3600).", between(5, 3600))


@dataclass(frozen=True)
class Security:
    """Transport encryption of the mesh (helios.wire.curve; docs/security-transport.md):
    with curve on, every ZeroMQ socket over tcp:// or ipc:// is encrypted and
    authenticated with CURVE (NaCl's box), and none can be made without keys.
    Switched on per environment: a config file describes one environment's mesh,
    and every process of it reads this section. A process that connects uses
    secret_key and server_key; one that binds (buck, relay) uses
    server_secret_key and allow_dir. Key files come from `helios keygen NAME`."""

    curve: bool = setting(False, "Encrypt and authenticate every tcp:// and ipc:// ZeroMQ socket with "
                          "CURVE; a process then refuses to start without the keys it needs.")
    secret_key: str = setting("", "This process's own key pair (NAME.key_secret, mode 0600), to connect "
                              "with; its public half (NAME.key) goes in the allow_dir of the bucks "
                              "(and of the relay) it connects to.")
    server_key: str = setting("", "Public key file of the bucks (the public half of their "
                              "server_secret_key): a connecting process talks only to a server that "
                              "holds its secret half.")
    server_secret_key: str = setting("", "Key pair the bound sockets serve with (bucks: the mesh's server "
                                     "key, whose public half is everyone's server_key; a relay: the "
                                     "relay's, whose public half is its applications' relay_key).")
    allow_dir: str = setting("", "Directory of the public key files (*.key) of the clients a buck or "
                             "relay lets in; re-read on SIGHUP (a removed key is refused from then on, "
                             "its open connections are ended).")
    relay_key: str = setting("", "Public key file of this host's relay, checked by the client library "
                             "when [client] relay is set.")

    @staticmethod
    def cross_check(values: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
        v = values.get
        if v("curve") and not (v("secret_key") or v("server_secret_key")):
            yield "curve", "is on, but no key is set: set secret_key (to connect) and/or server_secret_key (to serve)"
        if v("curve") and v("server_secret_key") and not v("allow_dir"):
            yield "allow_dir", "required with server_secret_key when curve = true (who may connect)"


@dataclass(frozen=True)
class Mesh:
    """The bucks, each named once by its address: every command that talks to
    a buck (tailer and relay: its ingest; subscribe, check, graphite, web:
    its live feed; status, buckets, porter, history: its query endpoint)
    derives the endpoint it needs from it. A section's own endpoint list
    ([tailer] bucks, [subscribe] bucks, [web] bucks_pub, [query] bucks,
    [porter] bucks) wins over this, for bucks with unrelated ports."""

    bucks: tuple[str, ...] = setting(
        (), "Every buck's address, HOST[:PORT]: its ingest port (default 7301); its live feed is "
        "that port + 1 and its query endpoint + 2 ([buck] publish and query \"auto\").",
        unique, each=(buck_address.check,), example=("buck-a:7301", "buck-b:7301"))


# The endpoint lists that [mesh] bucks fills: (section, key, role).
MESH_KEYS = (("tailer", "bucks", "ingest"), ("relay", "bucks", "ingest"), ("subscribe", "bucks", "feed"),
             ("web", "bucks_pub", "feed"), ("query", "bucks", "query"), ("porter", "bucks", "query"))


@dataclass(frozen=True)
class Config:
    """The whole configuration: one attribute per section (the TOML table name)."""

    buck: Buck = Buck()
    tailer: Tailer = Tailer()
    client: Client = Client()
    web: Web = Web()
    subscribe: Subscribe = Subscribe()
    graphite: Graphite = Graphite()
    relay: Relay = Relay()
    query: Query = Query()
    porter: Porter = Porter()
    history: History = History()
    security: Security = Security()
    mesh: Mesh = Mesh()
    sections_present: frozenset[str] = frozenset()


SECTIONS: dict[str, type] = {
    name: kind for name, kind in get_type_hints(Config).items() if is_dataclass(kind)}


# --- the loader ---

def load(path: str | os.PathLike | None, overrides: Mapping[str, Any] | None = None,
         require: Iterable[str] = ()) -> Config:
    """Read ``path`` (None: no file), lay ``overrides`` ("section.key" -> value,
    as click gives them) over it, and validate. Overrides of None or () are
    ignored: that is what click passes for a flag not given. Sections present in
    the file or the overrides are fully checked; a section in ``require`` is
    checked even when absent, so its required keys are reported missing.
    Raises ConfigError listing every problem found."""
    require = set(require)
    if require - SECTIONS.keys():
        raise ValueError(f"unknown sections required: {sorted(require - SECTIONS.keys())}")
    problems: list[str] = []
    raw = _read(path, problems)
    file_ok = not problems  # if the file is unreadable, don't also call its keys missing
    known_sections = f"(known: {', '.join(SECTIONS)})"
    data: dict[str, dict[str, Any]] = {}
    for name, table in raw.items():
        if name not in SECTIONS:
            problems.append(f"{name}: unknown section{_did_you_mean(name, SECTIONS)} {known_sections}")
        elif not isinstance(table, dict):
            problems.append(f"{name}: must be a table ([{name}]), got {_show(table)}")
        else:
            data[name] = dict(table)
    _addresses_in_lists(data, problems)   # in the file's lists; an explicit endpoint flag takes endpoints
    for dotted, value in (overrides or {}).items():
        if value is None or value == ():
            continue
        name, _, key = dotted.partition(".")
        if name not in SECTIONS:
            problems.append(f"{dotted}: unknown section {known_sections}")
            continue
        data.setdefault(name, {})[key] = list(value) if isinstance(value, tuple) else value
    built = {}
    mesh = _build("mesh", Mesh, data.get("mesh", {}), problems, file_ok) if "mesh" in data else Mesh()
    # Addresses given as flags win over the file's endpoint lists; those in
    # the file fill only the lists the file leaves out. Explicit endpoints
    # given as flags win over both.
    given = {tuple(k.split(".", 1)) for k, v in (overrides or {}).items() if v not in (None, ())}
    keep = given if ("mesh", "bucks") in given else {(n, k) for n, t in data.items() for k in t}
    filled = _mesh_fill(mesh.bucks, keep)
    for name, cls in SECTIONS.items():
        if name == "mesh":
            built[name] = mesh
        elif name in data or name in require:
            built[name] = _build(name, cls, {**data.get(name, {}), **filled.get(name, {})}, problems, file_ok)
        else:
            built[name] = replace(cls(), **{k: tuple(v) for k, v in filled.get(name, {}).items()})
    if problems:
        raise ConfigError(problems, source="flags" if path is None else str(path))
    return Config(**built, sections_present=frozenset(data))


def _addresses_in_lists(data: dict[str, dict[str, Any]], problems: list[str]) -> None:
    """A section's own list of buck endpoints may name a buck by its address
    too (``HOST[:PORT]``, no scheme): it becomes the endpoint of the
    section's role, as [mesh] bucks would give it. A bad address is reported
    and left out."""
    for section, key, role in MESH_KEYS:
        values = data.get(section, {}).get(key)
        if not isinstance(values, list):
            continue
        out = []
        for i, v in enumerate(values):
            if not isinstance(v, str) or "/" in v or not v.strip():   # an endpoint, or what endpoint() reports
                out.append(v)
                continue
            try:
                out.append(buck_address.parse(v).endpoint(role))
            except buck_address.AddressError as exc:
                problems.append(f"{section}.{key}[{i}]: {exc}")
        data[section][key] = out


def _mesh_fill(addresses: tuple[str, ...], keep: set[tuple[str, ...]]) -> dict[str, dict[str, Any]]:
    """The endpoint lists that [mesh] bucks gives the sections, but for the
    (section, key) in ``keep`` (section -> key -> endpoints)."""
    if not addresses:
        return {}
    try:
        return {section: {key: list(buck_address.endpoints(addresses, role))}
                for section, key, role in MESH_KEYS if (section, key) not in keep}
    except buck_address.AddressError:
        return {}  # already reported by the [mesh] check


def _did_you_mean(word: str, known: Iterable[str]) -> str:
    """'; did you mean X?' for the known name closest to a misspelt one, or ''."""
    import difflib

    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def _read(path: str | os.PathLike | None, problems: list[str]) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        problems.append(f"file: cannot be read ({e.strerror or e})")
    except tomllib.TOMLDecodeError as e:  # its message ends "(at line L, column C)"
        problems.append(f"file: not valid TOML: {e}")
    except UnicodeDecodeError as e:
        problems.append(f"file: not valid UTF-8 ({e.reason} at byte {e.start})")
    return {}


def _build(name: str, cls: type, table: dict[str, Any], problems: list[str],
           check_required: bool) -> Any:
    """Validate one section's table and return the section; invalid keys keep
    their defaults (the caller raises anyway)."""
    known = {f.name: f for f in fields(cls)}
    for key in table:
        if key not in known:
            problems.append(f"{name}.{key}: unknown key{_did_you_mean(key, known)} "
                            f"(known: {', '.join(sorted(known))})")
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for key, f in known.items():
        path = f"{name}.{key}"
        if key not in table:
            if not f.metadata["required"] or any(table.get(k) for k in f.metadata["unless"]):
                values[key] = f.default
            elif check_required:
                given_by = " (or the bucks' addresses: [mesh] bucks, or --buck)" if any(
                    (name, key) == (n, k) for n, k, _ in MESH_KEYS) else ""
                problems.append(f"{path}: required, not set{given_by}")
            continue
        value, found = _check(path, table[key], hints[key], f.metadata)
        problems.extend(found)
        if not found:
            values[key] = value
    for key, what in getattr(cls, "cross_check", lambda _: ())(values):
        problems.append(f"{name}.{key}: {what}")
    return cls(**values)


def _check(path: str, value: Any, kind: Any, meta: Mapping[str, Any]) -> tuple[Any, list[str]]:
    """Type-check and check one value; return it converted, and its problems."""
    if get_origin(kind) is tuple:
        item_kind = get_args(kind)[0]
        if not isinstance(value, (list, tuple)):
            return value, [f"{path}: must be a list of {_KINDS[item_kind]}s, got {_show(value)}"]
        items, found = [], []
        for i, item in enumerate(value):
            item, what = _convert(item, item_kind)
            what = what or _first(meta["each"], item)
            items.append(item)
            if what:
                found.append(f"{path}[{i}]: {what}")
        if found:
            return value, found
        value = tuple(items)
    else:
        value, what = _convert(value, kind)
        if what:
            return value, [f"{path}: {what}"]
    what = _first(meta["checks"], value)
    return value, [f"{path}: {what}"] if what else []


_KINDS = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "table"}


def _convert(value: Any, kind: type) -> tuple[Any, str | None]:
    """Strict types: bool is not an int, but an int is a fine float."""
    if isinstance(value, bool) and kind is not bool:
        ok = False
    elif kind is float and isinstance(value, int):
        value, ok = float(value), True
    else:
        ok = isinstance(value, kind)
    if not ok:
        return value, f"must be {_a(_KINDS[kind])}, got {_show(value)}"
    if kind is float and not math.isfinite(value):
        return value, f"must be a finite number, got {value}"
    return value, None


def _first(checks: Iterable[Check], value: Any) -> str | None:
    return next((what for check in checks if (what := check(value))), None)


def _show(value: Any) -> str:
    """A value as the user wrote it, and its TOML type."""
    kind = {bool: "boolean", int: "integer", float: "float", str: "string",
            list: "list", tuple: "list", dict: "table"}.get(type(value), type(value).__name__)
    text = _toml(value) if isinstance(value, (bool, list, tuple)) else repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({_a(kind)})"


def _a(noun: str) -> str:
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


# --- the schema as data, for the CLI and the docs ---

def _field(section: str, key: str) -> Any:
    try:
        return next(f for f in fields(SECTIONS[section]) if f.name == key)
    except (KeyError, StopIteration):
        raise KeyError(f"{section}.{key}: no such config key") from None


def default(section: str, key: str) -> Any:
    """The default of ``section.key`` (for --help texts)."""
    return _field(section, key).default


def doc(section: str, key: str) -> str:
    """The documentation of ``section.key`` (for --help texts)."""
    return _field(section, key).metadata["doc"]


def to_dict(cfg: Config) -> dict[str, dict[str, Any]]:
    """Every section's effective values, lists as lists (for printing)."""
    out: dict[str, dict[str, Any]] = {}
    for name in SECTIONS:
        section = getattr(cfg, name)
        out[name] = {f.name: getattr(section, f.name) for f in fields(section)}
        out[name].update({k: list(v) for k, v in out[name].items() if isinstance(v, tuple)})
    return out


def describe() -> str:
    """A commented TOML file of every section and key with its default and doc.
    Required keys show an example value. It loads back without problems."""
    out = ["# Helios configuration: every section and key, with its default.",
           "# A service reads only its own section; unknown keys are errors.", ""]
    for name, cls in SECTIONS.items():
        out += _comment(cls.__doc__ or "")
        out.append(f"[{name}]")
        for f in fields(cls):
            out += _comment(f.metadata["doc"])
            value = f.default
            if f.metadata["required"]:
                out.append("# REQUIRED; an example:")
                value = f.metadata["example"]
            out.append(f"{f.name} = {_toml(value)}")
        out.append("")
    return "\n".join(out)


def _comment(text: str) -> list[str]:
    return ["# " + line for line in textwrap.wrap(" ".join(text.split()), 76)]


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):  # a TOML basic string; these escapes are TOML's too
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return '"' + "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in escaped) + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)
