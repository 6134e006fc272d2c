"""OpenTelemetry logs (OTLP/HTTP) as Helios events. Pure: no I/O.

The buck's HTTP ingest takes ``POST /v1/logs`` (``helios.buck.http_ingest``);
this module owns the format: a body (an ``ExportLogsServiceRequest``, in
protobuf or in OTLP/JSON) becomes event rows for ``helios.codec``, and the
answers (``ExportLogsServiceResponse``, ``google.rpc.Status``) are written
in the request's own encoding.

    decode(body, kind)            -> ExportLogsServiceRequest   (EventError if undecodable)
    encode(request, kind)         -> bytes                      (its inverse: tests, tools)
    rows(request, now)            -> [Record]                   one per log record, in order
    copied_bytes(request)         -> int                        what rows() copies into every record
    response(kind, rejected, why) -> bytes                      the 200 answer
    status(kind, code, why)       -> bytes                      the 4xx/5xx answer

``kind`` is ``"protobuf"`` (``application/x-protobuf``) or ``"json"``
(``application/json``).

OTLP/JSON is protobuf's JSON mapping with the OTLP spec's exceptions:
``traceId`` and ``spanId`` are hex strings (not base64), enums are integers,
64-bit integers are strings or numbers, keys are lowerCamelCase (the
protobuf names are taken too) and unknown keys are ignored.

The mapping of one log record::

    resource service.name                     -> app
    resource host.name                        -> host
    resource deployment.environment.name      -> environment (the older
             (or deployment.environment)         deployment.environment too)
    severity_number 1-24                      -> severity (SEVERITY_OF below)
    severity_text (when the number is 0)      -> severity, if it names one
    body: a string                            -> message (UTF-8)
          bytes                               -> message as they are
          any other value (map, list, number) -> message as JSON
    time_unix_nano, else observed_time_unix_nano, else the receive time -> time
    attributes                                -> fields, by their keys
    other resource attributes                 -> fields (a record's own win)
    trace_id, span_id (hex), flags            -> fields trace_id, span_id, trace_flags
    scope name, version                       -> fields otel.scope.name, otel.scope.version
    severity_text, severity_number, event_name -> fields of those names (when set)

The id of a record is derived, not random: BLAKE2b (16 bytes) of its
resource, its scope and itself (each as deterministic protobuf bytes, so the
same content sent as JSON or protobuf gets the same id) and its position in
the request (resource, scope and record index). An exporter that retries a
request (on 429, 503 or a timeout) sends the same body again, so its records
get the same ids and the porter's dedup keeps them once. The price: two
records identical in every byte, at the same position of two requests, are
one event; their times are in nanoseconds, so that takes two copies of one
record. A record with neither time nor observed time gets the receive time
and a random id instead (a retry may then store it twice, never lose it).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import struct
from typing import Any, NamedTuple

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.logs.v1.logs_pb2 import SeverityNumber

from helios.errors import EventError
from helios.eventmap import _SEVERITY  # the severity spellings /v1/events takes
from helios.model import Event, ROW_FIELDS

KINDS = {"application/x-protobuf": "protobuf", "application/protobuf": "protobuf",
         "application/json": "json"}
CONTENT_TYPES = {"protobuf": "application/x-protobuf", "json": "application/json"}

# OTLP SeverityNumber (1-4 TRACE, 5-8 DEBUG, 9-12 INFO, 13-16 WARN, 17-20 ERROR,
# 21-24 FATAL) -> syslog severity (0 emerg .. 7 debug). The INFO range's upper
# half is notice; FATAL climbs from crit to emerg.
SEVERITY_OF = {**{n: 7 for n in range(1, 9)}, 9: 6, 10: 6, 11: 5, 12: 5,
               **{n: 4 for n in range(13, 17)}, **{n: 3 for n in range(17, 21)},
               21: 2, 22: 2, 23: 1, 24: 0}

MAX_NS = 2**63 - 1
_TAIL = [Event._field_defaults[name] for name in Event._fields[10:ROW_FIELDS]]
_ENV_KEYS = ("deployment.environment.name", "deployment.environment")
_MAPPED = frozenset(("service.name", "host.name", *_ENV_KEYS))
_PERSON = b"helios-otlp-1"  # the id's domain: changing it changes every id
_LENGTH, _POSITION = struct.Struct(">Q"), struct.Struct(">QQQ")


class Record(NamedTuple):
    """One log record as Helios keeps it. ``environment``, ``host`` and
    ``app`` are None when the resource names none (the ingest fills them
    in); ``problem`` says why the record cannot be kept (then ``row`` is
    None)."""

    environment: str | None
    host: str | None
    app: str | None
    row: list[Any] | None
    problem: str | None = None


def kind_of(content_type: str) -> str | None:
    """``"protobuf"``, ``"json"`` or None for a Content-Type header."""
    return KINDS.get(content_type.split(";", 1)[0].strip().lower())


# ------------------------------------------------------------------ decoding

def decode(body: bytes, kind: str) -> ExportLogsServiceRequest:
    """The request in a body; raises EventError saying why it is not one."""
    request = ExportLogsServiceRequest()
    if kind == "protobuf":
        try:
            request.ParseFromString(body)
        except (DecodeError, RecursionError, ValueError) as exc:
            raise EventError(f"the body is not a protobuf ExportLogsServiceRequest: {exc or 'cannot parse'}") from None
        return request
    try:
        value = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise EventError(f"the body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise EventError(f"the body must be a JSON object (an ExportLogsServiceRequest), got {type(value).__name__}")
    try:
        # The C constructor takes nested dicts for messages (its stubs say messages only).
        resource_logs: Any = [_resource_logs(x) for x in _items(value, "resourceLogs", "resource_logs")]
        return ExportLogsServiceRequest(resource_logs=resource_logs)
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        raise EventError(f"the body is not an OTLP/JSON ExportLogsServiceRequest: {exc}") from None


# OTLP/JSON, read by hand: protobuf's own JSON parser (json_format) is pure
# Python and general, and takes about 0.2 ms a record; these few functions,
# which know the schema, turn the parsed JSON into constructor arguments and
# the message's C constructor does the rest. Each takes a key in lowerCamelCase
# or as the protobuf spells it, ignores keys it does not know, and raises
# ValueError or TypeError for a value of the wrong kind.

MAX_DEPTH = 100  # nested arrays and maps in one value, as protobuf's parser allows


def _get(obj: dict[str, Any], camel: str, snake: str) -> Any:
    v = obj.get(camel)
    return obj.get(snake) if v is None else v


def _spec(*fields: tuple[str, str, Any]) -> dict[str, tuple[str, Any]]:
    """Both spellings of each field -> (protobuf name, conversion)."""
    return {name: (snake, conv) for camel, snake, conv in fields for name in (camel, snake)}


def _items(obj: Any, camel: str, snake: str) -> list[Any]:
    if not isinstance(obj, dict):
        raise TypeError(f"expected an object, got {type(obj).__name__}")
    v = _get(obj, camel, snake)
    if v is None:
        return []
    if not isinstance(v, list):
        raise TypeError(f"{camel} must be an array, got {type(v).__name__}")
    return v


def _object(v: Any, what: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise TypeError(f"{what} must be an object, got {type(v).__name__}")
    return v


def _str(v: Any) -> str:
    if type(v) is not str:
        raise TypeError(f"expected a string, got {type(v).__name__}")
    return v


def _bool(v: Any) -> bool:
    if type(v) is not bool:
        raise TypeError(f"expected true or false, got {type(v).__name__}")
    return v


_INT = re.compile(r"-?[0-9]{1,20}")


def _int(v: Any) -> int:
    """A 64-bit integer: a number, or a string of digits (the OTLP/JSON way).
    The message's constructor checks the range."""
    kind = type(v)
    if kind is int:
        return int(v)
    if kind is str and _INT.fullmatch(v):
        return int(v)
    if kind is float and v.is_integer():
        return int(v)
    raise ValueError(f"expected an integer, got {v!r:.40}")


def _double(v: Any) -> float:
    if type(v) in (int, float):
        return float(v)
    if type(v) is str and v.strip() == v:
        return float(v)  # "NaN", "Infinity", "-Infinity", "1.5"; ValueError for any other text
    raise TypeError(f"expected a number, got {type(v).__name__}")


_URLSAFE = str.maketrans("-_", "+/")


def _b64(v: Any) -> bytes:
    text = _str(v).translate(_URLSAFE)
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _hex(v: Any) -> bytes:
    try:
        return bytes.fromhex(_str(v))
    except ValueError:
        raise ValueError(f"{v[:40]!r} is not hex") from None


def _severity_number(v: Any) -> int:
    if type(v) is str and v.startswith("SEVERITY_NUMBER_"):
        return int(SeverityNumber.Value(v))
    return _int(v)


_SCALARS = _spec(
    ("stringValue", "string_value", _str), ("boolValue", "bool_value", _bool), ("intValue", "int_value", _int),
    ("doubleValue", "double_value", _double), ("bytesValue", "bytes_value", _b64))


def _any(v: Any, depth: int = 0) -> dict[str, Any]:
    """An AnyValue's constructor arguments."""
    v = _object(v, "a value")
    if depth > MAX_DEPTH:
        raise ValueError(f"a value is nested more than {MAX_DEPTH} deep")
    out = _fields(v, _SCALARS)
    x = _get(v, "arrayValue", "array_value")
    if x is not None:
        out["array_value"] = {"values": [_any(y, depth + 1) for y in _items(x, "values", "values")]}
    x = _get(v, "kvlistValue", "kvlist_value")
    if x is not None:
        out["kvlist_value"] = {"values": [_kv(y, depth + 1) for y in _items(x, "values", "values")]}
    if len(out) > 1:
        raise ValueError(f"a value has {len(out)} kinds at once ({', '.join(out)})")
    return out


def _kv(v: Any, depth: int = 0) -> dict[str, Any]:
    v = _object(v, "an attribute")
    out: dict[str, Any] = {"key": _str(v.get("key", ""))}
    x = v.get("value")
    if x is not None:
        out["value"] = _any(x, depth)
    return out


def _attributes(v: Any) -> list[dict[str, Any]]:
    if not isinstance(v, list):
        raise TypeError(f"attributes must be an array, got {type(v).__name__}")
    return [_kv(x) for x in v]


def _fields(obj: dict[str, Any], spec: dict[str, tuple[str, Any]]) -> dict[str, Any]:
    """Constructor arguments from the keys of ``obj`` that ``spec`` knows
    (by either spelling), each through its conversion."""
    out: dict[str, Any] = {}
    for key, x in obj.items():
        known = spec.get(key)
        if known is None or x is None:
            continue
        try:
            out[known[0]] = known[1](x)
        except (TypeError, ValueError) as exc:  # say where: "body: intValue: ..."
            raise type(exc)(f"{key}: {exc}") from None
    return out


_RECORD = _spec(
    ("timeUnixNano", "time_unix_nano", _int), ("observedTimeUnixNano", "observed_time_unix_nano", _int),
    ("severityNumber", "severity_number", _severity_number), ("severityText", "severity_text", _str),
    ("body", "body", _any), ("attributes", "attributes", _attributes),
    ("droppedAttributesCount", "dropped_attributes_count", _int), ("flags", "flags", _int),
    ("traceId", "trace_id", _hex), ("spanId", "span_id", _hex), ("eventName", "event_name", _str))
_SCOPE = _spec(("name", "name", _str), ("version", "version", _str), ("attributes", "attributes", _attributes),
               ("droppedAttributesCount", "dropped_attributes_count", _int))
_RESOURCE = _spec(("attributes", "attributes", _attributes),
                  ("droppedAttributesCount", "dropped_attributes_count", _int))
_SCHEMA_URL = _spec(("schemaUrl", "schema_url", _str))


def _resource_logs(v: Any) -> dict[str, Any]:
    rl = _object(v, "a resourceLogs item")
    out = _fields(rl, _SCHEMA_URL)
    res = _get(rl, "resource", "resource")
    if res is not None:
        out["resource"] = _fields(_object(res, "resource"), _RESOURCE)
    out["scope_logs"] = [_scope_logs(x) for x in _items(rl, "scopeLogs", "scope_logs")]
    return out


def _scope_logs(v: Any) -> dict[str, Any]:
    sl = _object(v, "a scopeLogs item")
    out = _fields(sl, _SCHEMA_URL)
    scope = _get(sl, "scope", "scope")
    if scope is not None:
        out["scope"] = _fields(_object(scope, "scope"), _SCOPE)
    out["log_records"] = [_fields(_object(x, "a log record"), _RECORD)
                          for x in _items(sl, "logRecords", "log_records")]
    return out


def encode(request: ExportLogsServiceRequest, kind: str) -> bytes:
    """The body of a request: the inverse of ``decode``."""
    if kind == "protobuf":
        return bytes(request.SerializeToString())
    value = json_format.MessageToDict(request, use_integers_for_enums=True)
    for rl in value.get("resourceLogs", ()):
        for sl in rl.get("scopeLogs", ()):
            for rec in sl.get("logRecords", ()):
                for key in ("traceId", "spanId"):
                    if key in rec:
                        rec[key] = base64.b64decode(rec[key]).hex()
    return json.dumps(value).encode()


# ------------------------------------------------------------------ answers

def response(kind: str, rejected: int = 0, why: str = "") -> bytes:
    """An ExportLogsServiceResponse: partial success when records were refused."""
    resp = ExportLogsServiceResponse()
    if rejected or why:
        resp.partial_success.rejected_log_records = rejected
        resp.partial_success.error_message = why
    if kind == "protobuf":
        return bytes(resp.SerializeToString())
    return json.dumps(json_format.MessageToDict(resp)).encode()


# google.rpc.Code values for the HTTP statuses the ingest answers with.
RPC_CODE = {400: 3, 401: 16, 403: 7, 408: 4, 413: 3, 415: 3, 429: 8, 503: 14, 507: 14}


def status(kind: str, http_status: int, why: str) -> bytes:
    """A ``google.rpc.Status`` (code, message): the body of a 4xx or 5xx
    answer, as OTLP/HTTP asks. Written by hand (two fields) rather than
    pulling in googleapis-common-protos."""
    code = RPC_CODE.get(http_status, 2)  # 2: UNKNOWN
    if kind == "json":
        return json.dumps({"code": code, "message": why}).encode()
    text = why.encode()
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


# ------------------------------------------------------------------ mapping

_SCALAR_KINDS = frozenset(("string_value", "int_value", "bool_value", "double_value", "bytes_value"))


def value_of(v: Any) -> Any:
    """An AnyValue as a plain value msgpack can carry (None if unset)."""
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [value_of(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: value_of(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, which)


def _message(body: Any) -> bytes:
    which = body.WhichOneof("value")
    if which is None:
        return b""
    if which == "string_value":
        return str(body.string_value).encode("utf-8", "surrogatepass")
    if which == "bytes_value":
        return bytes(body.bytes_value)
    return json.dumps(value_of(body), default=_json_bytes, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8", "surrogatepass")


def _json_bytes(b: Any) -> str:
    if isinstance(b, bytes):
        return base64.b64encode(b).decode()
    raise TypeError(f"{type(b).__name__} is not JSON serializable")


def severity(number: int, text: str) -> int | None:
    """Helios' (syslog) severity of an OTLP severity number, else of its text."""
    found = SEVERITY_OF.get(number)
    if found is not None or not text:
        return found
    return _SEVERITY.get(text.strip()) if len(text) < 32 else None


def copied_bytes(request: ExportLogsServiceRequest) -> int:
    """About how many bytes the resources' and scopes' attributes take once
    copied into each of their records' fields: a small request whose records
    share a large resource would otherwise grow a thousandfold in the buck."""
    total = 0
    for rl in request.resource_logs:
        res = rl.resource.ByteSize()
        for sl in rl.scope_logs:
            total += (res + sl.scope.ByteSize()) * len(sl.log_records)
    return total


def rows(request: ExportLogsServiceRequest, now: int) -> list[Record]:
    """One Record per log record, in the order of the request."""
    out: list[Record] = []
    for ri, rl in enumerate(request.resource_logs):
        res_attrs = {kv.key: value_of(kv.value) for kv in rl.resource.attributes}
        res_bytes = rl.resource.SerializeToString(deterministic=True)
        env = next((res_attrs[k] for k in _ENV_KEYS if res_attrs.get(k) not in (None, "")), None)
        host, app = res_attrs.get("host.name"), res_attrs.get("service.name")
        host, app = (None if host == "" else host), (None if app == "" else app)  # "" says nothing
        bad = None
        for what, v in (("deployment.environment", env), ("host.name", host), ("service.name", app)):
            if v is not None and type(v) is not str:
                bad = f"resource attribute {what} must be a string, got {type(v).__name__}"
        shared = {k: v for k, v in res_attrs.items() if k not in _MAPPED}
        for si, sl in enumerate(rl.scope_logs):
            scope = {}
            if sl.scope.name:
                scope["otel.scope.name"] = sl.scope.name
            if sl.scope.version:
                scope["otel.scope.version"] = sl.scope.version
            scope_bytes = sl.scope.SerializeToString(deterministic=True)
            prefix = _LENGTH.pack(len(res_bytes)) + res_bytes + _LENGTH.pack(len(scope_bytes)) + scope_bytes
            fields = {**shared, **scope}
            for li, rec in enumerate(sl.log_records):
                if bad is not None:
                    out.append(Record(None, None, None, None, bad))
                    continue
                out.append(_record(rec, ri, si, li, prefix, fields, now, env, host, app))
    return out


def _record(rec: Any, ri: int, si: int, li: int, prefix: bytes, shared: dict[str, Any],
            now: int, env: str | None, host: str | None, app: str | None) -> Record:
    t = rec.time_unix_nano or rec.observed_time_unix_nano
    if t > MAX_NS:
        return Record(env, host, app, None, f"time_unix_nano {t} is after the year 2262")
    if t:
        # prefix: the resource's and the scope's bytes, each after its length
        ident = hashlib.blake2b(b"".join((prefix, rec.SerializeToString(deterministic=True),
                                          _POSITION.pack(ri, si, li))), digest_size=16, person=_PERSON).digest()
    else:
        t, ident = now, os.urandom(16)
    fields = shared.copy()
    for kv in rec.attributes:
        v = kv.value
        which = v.WhichOneof("value")
        fields[kv.key] = getattr(v, which) if which in _SCALAR_KINDS else value_of(v)
    trace, span, flags, text, number, name = (rec.trace_id, rec.span_id, rec.flags, rec.severity_text,
                                              rec.severity_number, rec.event_name)
    if trace:
        fields["trace_id"] = trace.hex()
    if span:
        fields["span_id"] = span.hex()
    if flags:
        fields["trace_flags"] = flags
    if text:
        fields["severity_text"] = text
    if number:
        fields["severity_number"] = number
    if name:
        fields["event_name"] = name
    row = [ident, t, now, host, app, severity(number, text), "", None, _message(rec.body), fields, *_TAIL]
    return Record(env, host, app, row)
