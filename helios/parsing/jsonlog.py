"""JSON log lines: which keys are the time, host, app and severity, and the
rest as fields.

Keys are looked up after flattening: ``{"log": {"level": "warn"}}`` and
``{"log.level": "warn"}`` are the same key ``log.level``. The names cover
ECS (Elastic Common Schema: ``@timestamp``, ``log.level``, ``host.name``,
``service.name``, ``log.logger``), OpenTelemetry's log data model as its
exporters write it (``Timestamp``/``timeUnixNano``, ``SeverityText``,
``SeverityNumber``, ``Resource`` attributes ``service.name`` and
``host.name``), Elasticsearch's own JSON logs (``node.name``, ``component``),
Bunyan and pino (``name``, numeric ``level``), NXLog's Windows events
(``EventTime``, ``Hostname``, ``SourceName``, ``Severity``), GELF, Serilog
(``SourceContext``, ``MachineName``, also under ``Properties``), logrus, zap,
structlog, logstash-logback-encoder (``HOSTNAME``), python-json-logger
(``asctime``), Google Cloud's (``serviceContext.service``), ``journalctl -o
json`` (``__REALTIME_TIMESTAMP``, ``_HOSTNAME``, ``SYSLOG_IDENTIFIER``,
``PRIORITY``), Fluent Bit's Kubernetes records (``kubernetes.container_name``)
and the like. The first key of each list that holds a usable value wins.

Fields are every other key, flattened, except the message itself. Values are
kept as JSON gave them (strings, numbers, booleans, null); a list becomes its
JSON text, an integer too big for 64 bits its decimal text, so that every
field can travel in msgpack.
"""

from __future__ import annotations

import json
from typing import NamedTuple

MAX_FIELDS = 64

TIME_KEYS = ("@timestamp", "timestamp", "time", "ts", "Timestamp", "timeUnixNano", "time_unix_nano",
             "TimeUnixNano", "datetime", "date", "t", "eventTime", "observedTimeUnixNano",
             "ObservedTimestamp", "log.time", "@t", "EventTime", "EventReceivedTime", "asctime",
             "__REALTIME_TIMESTAMP")
LEVEL_KEYS = ("log.level", "level", "severity", "SeverityText", "severityText", "severity_text", "lvl",
              "loglevel", "log_level", "levelname", "level_name", "@l", "Level", "Severity", "syslog.severity",
              "PRIORITY")
OTEL_LEVEL_KEYS = ("SeverityNumber", "severityNumber", "severity_number")
HOST_KEYS = ("host.name", "host.hostname", "hostname", "host", "node.name", "elasticsearch.node.name",
             "Resource.host.name", "resource.host.name", "resource.attributes.host.name",
             "kubernetes.node_name", "kubernetes.host", "computer_name", "syslog.hostname", "Hostname", "HOSTNAME",
             "_HOSTNAME", "Properties.MachineName", "MachineName")
APP_KEYS = ("service.name", "Resource.service.name", "resource.service.name",
            "resource.attributes.service.name", "app", "application", "app_name", "appname", "service",
            "program", "syslog.appname", "process.name", "log.logger", "logger", "logger_name",
            "loggerName", "component", "SourceName", "serviceContext.service", "SYSLOG_IDENTIFIER",
            "SourceContext", "Properties.SourceContext", "kubernetes.container_name", "name")
MESSAGE_KEYS = ("message", "msg", "log", "Body", "body", "MESSAGE", "@m", "short_message")
_INT64 = 2**63
# Key -> (role, rank): one walk over a line's keys finds every role (a line
# has a few keys; the lists above have dozens).
_ROLES: dict[str, tuple[str, int]] = {}
for _role, _keys in (("time", TIME_KEYS), ("level", LEVEL_KEYS), ("otel_level", OTEL_LEVEL_KEYS),
                     ("host", HOST_KEYS), ("app", APP_KEYS)):
    for _rank, _key in enumerate(_keys):
        _ROLES.setdefault(_key, (_role, _rank))

DOCKER_KEYS = frozenset(("log", "stream", "time", "attrs"))


def flatten(obj: dict, prefix: str = "", out: dict | None = None) -> dict:
    """{"a": {"b": 1}, "c": 2} -> {"a.b": 1, "c": 2}; at most MAX_FIELDS * 2 keys."""
    if out is None:
        out = {}
    for key, value in obj.items():
        name = prefix + key if prefix else key
        if type(value) is dict:
            if value:
                flatten(value, name + ".", out)
            else:
                out[name] = None
        elif len(out) < MAX_FIELDS * 2:
            out[name] = value
    return out


def text(value) -> str | None:
    """A usable text value (non-empty string), encodable as UTF-8."""
    if isinstance(value, str) and value and value != "-":
        return value if value.isascii() else value.encode("utf-8", "replace").decode("utf-8")
    return None


def field_value(value):
    t = type(value)
    if t is str:
        return value if value.isascii() else value.encode("utf-8", "replace").decode("utf-8")
    if t is int:
        return value if -_INT64 <= value < _INT64 else str(value)
    if t is float or t is bool or value is None:
        return value
    return json.dumps(value)[:4096]


class Plan(NamedTuple):
    """The keys of a line's key set that may name each column, best first."""

    time: tuple
    level: tuple
    otel_level: tuple
    host: tuple
    app: tuple


_PLANS: dict[tuple, Plan] = {}


def plan(flat: dict) -> Plan:
    """The Plan of ``flat``'s keys. Lines of one program share their key
    set, so this is one dict lookup a line."""
    keys = tuple(flat)
    found = _PLANS.get(keys)
    if found is None:
        by_role: dict[str, list] = {}
        for key in keys:
            r = _ROLES.get(key)
            if r is not None:
                by_role.setdefault(r[0], []).append((r[1], key))
        found = Plan(*(tuple(key for _, key in sorted(by_role.get(role, ())))
                       for role in ("time", "level", "otel_level", "host", "app")))
        if len(_PLANS) >= 10_000:
            _PLANS.clear()
        _PLANS[keys] = found
    return found


def rest(flat: dict, used: set) -> dict | None:
    """The fields of a line: every key not used for a column nor the message."""
    out = {}
    for key, value in flat.items():
        if key in used or key in MESSAGE_KEYS:
            continue
        if len(out) >= MAX_FIELDS:
            break
        out[key if key.isascii() else key.encode("utf-8", "replace").decode("utf-8")] = field_value(value)
    return out or None


def is_docker(obj: dict) -> bool:
    """A Docker json-file record: {"log": "...\\n", "stream": "stdout", "time": "..."}."""
    return isinstance(obj.get("log"), str) and "stream" in obj and obj.keys() <= DOCKER_KEYS
