"""The content digests ``helios audit --index --content`` compares: each
backend's digest of an event as its load code maps it equals its digest of
what it then stores (round trips), whatever the time; any other part
changed changes it."""

from __future__ import annotations

import json

from helios.index import elastic
from helios.index.base import open_index
from helios.model import Event, random_id

NS = 1_000_000_000
T = 1_765_000_000 * NS


def events():
    base = Event(random_id(), T, T + 5, "web-1", "sshd", 3, "/var/log/auth.log", 120, b"Failed password for root",
                 None, b"s" * 16, "prod")
    return [
        base,
        base._replace(id=random_id(), severity=None, offset=None, source="", source_id=b"", message=b"\xff\xfe raw"),
        base._replace(id=random_id(), fields={"user": "bob", "ms": 1.5, "n": 2**40, "tags": ["a", 1, None],
                                              "nested": {"k": True}}),
        base._replace(id=random_id(), fields={"blob": b"\x00\x01", 3: "int key"}),    # not JSON: msgpack only
        base._replace(id=random_id(), message="héllo wörld ✓".encode()),
    ]


def altered(e: Event) -> list[Event]:
    return [e._replace(message=e.message[:4]), e._replace(host="elsewhere"), e._replace(app="x"),
            e._replace(severity=7 if e.severity != 7 else 6), e._replace(fields={"user": "eve"}),
            e._replace(received=e.received + 1), e._replace(offset=(e.offset or 0) + 1)]


def test_sqlite_digests_of_rows_equal_those_of_what_it_stores_and_see_every_part_but_time(tmp_path):
    evs = events()
    with open_index("sqlite", str(tmp_path)) as index:
        mine = index.content_digests("prod", evs)
        rows = index.content_digests("prod", [list(e[:11]) for e in evs])      # rows as decode_rows gives them
        assert mine == rows and len(set(mine)) == len(evs)
        assert index.load("prod", evs) == len(evs)
        stored = {i: d for day in index.days("prod") for page in index.contents("prod", day) for i, _, _, d in page}
        assert stored == {e.id: d for e, d in zip(evs, mine)}
        keyed = {i for day in index.days("prod") for page in index.keys("prod", day) for i, _, _ in page}
        assert keyed == set(stored)
        assert index.content_digests("prod", [evs[0]._replace(time=T + 3600 * NS)]) == mine[:1]
        for e in altered(evs[0]):
            assert index.content_digests("prod", [e]) != mine[:1], e


def test_elastic_digest_of_a_document_survives_json_and_sees_every_part_but_time():
    for e in events():
        doc = elastic.document(e, "prod")
        back = json.loads(json.dumps(doc, ensure_ascii=False))       # what a server returns as _source
        assert elastic.content_digest(back) == elastic.content_digest(doc), e
        assert elastic.content_digest(elastic.document(e._replace(time=e.time + NS), "prod")) == \
            elastic.content_digest(doc)
        for other in altered(e):
            assert elastic.content_digest(elastic.document(other, "prod")) != elastic.content_digest(doc), other
