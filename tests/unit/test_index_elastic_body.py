"""What the Elasticsearch/OpenSearch backend sends: bulk request bodies,
documents, and the queries built from a search, checked without a server."""

from __future__ import annotations

import base64
import json

import pytest

from helios.errors import IndexStoreError
from helios.index.elastic import bulk_body, bulk_lines, document, event_from_document, index_name, search_body
from helios.index.query import Query, parse_query
from helios.model import Event

T = 1_700_006_400 * 10**9 + 123       # 2023-11-15T00:00:00.000000123Z


def ev(message: bytes, fields=None, t: int = T, id: bytes = bytes(range(16))) -> Event:
    return Event(id, t, t + 7, "web-1", "sshd", None, "/var/log/auth.log", 42, message, fields, b"\xaa" * 16, "Prod")


def test_a_bulk_body_creates_each_event_under_its_id_in_its_daily_index():
    events = [ev(b"first"), ev(b"second", t=T + 86_400 * 10**9, id=b"\xff" * 16)]
    lines = bulk_body("helios-recent", "Prod", events).decode().split("\n")
    assert lines[-1] == "" and len(lines) == 5                  # NDJSON: every line ends with a newline
    actions, docs = [json.loads(x) for x in lines[0:4:2]], [json.loads(x) for x in lines[1:4:2]]
    assert actions == [
        {"create": {"_index": "helios-recent-prod-2023.11.15", "_id": "000102030405060708090a0b0c0d0e0f"}},
        {"create": {"_index": "helios-recent-prod-2023.11.16", "_id": "ff" * 16}},
    ]
    assert docs[0] == {
        "id": "000102030405060708090a0b0c0d0e0f", "@timestamp": T // 1_000_000, "time": T, "received": T + 7,
        "environment": "Prod", "host": "web-1", "app": "sshd", "severity": None, "source": "/var/log/auth.log",
        "offset": 42, "source_id": "aa" * 16, "message": "first",
    }


def test_documents_turn_back_into_the_same_events():
    for e in (ev(b"plain"), ev("Straße".encode()), ev(b"not utf-8 \xff\xfe\x00"), ev(b""),
              ev(b"with fields", {"user": "alice", "n": [1, 2.5, None]}),
              ev(b"binary fields", {"raw": b"\x00\x01", 7: "int key"})):
        doc = json.loads(json.dumps(document(e, "Prod")))       # through JSON, as the server keeps it
        assert event_from_document(doc) == e


def test_raw_bytes_ride_beside_the_text_only_when_they_are_not_utf8():
    doc = document(ev(b"bad \xff byte"), "Prod")
    assert doc["message"] == "bad \ufffd byte"
    assert base64.b64decode(doc["message_b64"]) == b"bad \xff byte"
    assert "message_b64" not in document(ev(b"good"), "Prod")


def test_fields_are_kept_exactly_and_shown_as_json_when_they_can_be():
    plain = document(ev(b"x", {"user": "alice"}), "Prod")
    assert plain["fields"] == {"user": "alice"} and "fields_mp" in plain
    binary = document(ev(b"x", {"raw": b"\x00"}), "Prod")
    assert "fields" not in binary and "fields_mp" in binary


def test_fields_are_searchable_as_key_value_keywords_nested_or_flat():
    doc = document(ev(b"x", {"http": {"status": 500}, "user.name": "alice", "tags": ["a", "b"], "gone": None}),
                   "Prod")
    assert doc["fields_kv"] == ["http.status=500", "user.name=alice", "tags=a", "tags=b"]
    assert "fields_kv" not in document(ev(b"x"), "Prod")
    assert "fields_kv" not in document(ev(b"x", {"gone": None}), "Prod")


def test_bulk_lines_pair_each_action_with_its_document():
    pairs = list(bulk_lines("helios-history-4f2a", "prod", [ev(b"a")]))
    assert pairs == [({"create": {"_index": "helios-history-4f2a-prod-2023.11.15", "_id": bytes(range(16)).hex()}},
                      document(ev(b"a"), "prod"))]
    assert bulk_body("p", "prod", []) == b""


def test_index_names_lowercase_the_environment_and_use_the_utc_day():
    assert index_name("helios-recent", "Prod-EU", T - 124) == "helios-recent-prod-eu-2023.11.14"
    assert index_name("helios-recent", "Prod-EU", T - 123) == "helios-recent-prod-eu-2023.11.15"


def test_a_search_filters_by_environment_range_and_every_part_of_the_query():
    q = parse_query('error "a*b?c\\\\d" host:web-1 app:sshd sev:err http.status:404,500', environment="Prod",
                    start=5, end=9)
    assert search_body(q) == {"bool": {"filter": [
        {"term": {"environment": "Prod"}},
        {"range": {"time": {"gte": 5, "lt": 9}}},
        {"terms": {"host": ["web-1"]}},
        {"terms": {"app": ["sshd"]}},
        {"range": {"severity": {"lte": 3}}},
        {"terms": {"fields_kv": ["http.status=404", "http.status=500"]}},
        {"wildcard": {"message.wc": {"value": "*a\\*b\\?c\\\\d*"}}},
        {"regexp": {"message.wc": {"value": "(.*[^A-Za-z0-9\u0080-\U0010ffff])?error([^A-Za-z0-9\u0080-\U0010ffff].*)?",
                                   "flags": "NONE", "case_insensitive": True}}},
    ]}}


def test_a_substring_that_is_not_utf8_cannot_be_searched_on_a_server():
    with pytest.raises(IndexStoreError, match="not UTF-8"):
        search_body(Query("prod", 0, 1, substrings=(b"\xff",)))
