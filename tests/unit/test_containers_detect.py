"""Which followed files the tailer treats as container logs outside the
--kubernetes roots: told by the first line, or by a [[tailer.parse]] format."""

from __future__ import annotations

import json

import pytest

from helios.parsing.containers import looks_like
from helios.parsing.profiles import Profiles, check_table


def test_a_docker_or_cri_first_line_says_container_log_and_an_app_json_or_text_line_does_not():
    assert looks_like(json.dumps({"log": "hi\n", "stream": "stdout", "time": "2024-03-11T08:15:02Z"}).encode())
    assert looks_like(b"2024-03-11T08:15:02.118000000Z stderr P a piece")
    assert looks_like(b"2024-03-11T08:15:02+01:00 stdout F \r")
    assert not looks_like(b'{"log": "hi", "level": "info"}')           # an app's JSON: no stream
    assert not looks_like(b'{"log": 1, "stream": "stdout", "time": "2024-03-11T08:15:02Z"}')
    assert not looks_like(b'{"log": "x", "stream": "stdout", "time": "2024-03-11T08:15:02Z", "user": "bob"}')
    assert looks_like(b'{"log": "x", "stream": "stdout", "time": "2024-03-11T08:15:02Z", "attrs": {"tag": "a"}}')
    assert not looks_like(b"2024-03-11T08:15:02Z INFO started")
    assert not looks_like(b"")


def test_a_table_format_docker_or_cri_joins_auto_decides_and_another_format_never_joins():
    profiles = Profiles(tables=[{"paths": ["/srv/ctr/*"], "format": "docker"},
                                {"paths": ["/srv/cri/*"], "format": "cri"},
                                {"paths": ["/srv/raw/*"], "format": "raw"},
                                {"paths": ["/srv/tz/*"], "timezone": "UTC"}])
    assert profiles.container_format("/srv/ctr/a.log") == "join"
    assert profiles.container_format("/srv/cri/a.log.1") == "join"          # a rotation, by its base name
    assert profiles.container_format("/srv/raw/a.log") == ""
    assert profiles.container_format("/srv/tz/a.log") == "auto"
    assert profiles.container_format("/elsewhere.log") == "auto"
    assert Profiles("rfc5424").container_format("/elsewhere.log") == ""
    assert profiles.parser("/srv/ctr/a.log").fmt == "auto"                  # records read by the auto parser


def test_the_config_accepts_format_docker_and_cri_and_names_them_when_a_format_is_wrong():
    assert check_table({"paths": ["/x/*"], "format": "cri"}) is None
    assert check_table({"paths": ["/x/*"], "format": "docker"}) is None
    assert "auto, rfc3164, rfc5424, iso8601, json, raw, docker, cri" in check_table({"paths": ["/x/*"], "format": "k8s"})


# --- joining, whatever the read chunks are ---

from helios.audit import span  # noqa: E402
from helios.model import Event  # noqa: E402
from helios.parsing import containers  # noqa: E402

KEY = b"k" * 16


def _records():
    out = []
    for i in range(4):
        out.append(b"2024-03-11T08:15:02Z stdout P part %d a, " % i)
        out.append(b"2024-03-11T08:15:02Z stderr F err %d" % i)
        out.append(b"2024-03-11T08:15:02Z stdout F end %d" % i)
        out.append(json.dumps({"log": "d%d\n" % i, "stream": "stdout"}).encode())
    return out


def _with_offsets(lines):
    out, off = [], 0
    for line in lines:
        out.append((off, line))
        off += len(line) + 1
    return out


def test_join_lines_gives_the_same_events_however_the_lines_are_cut_into_reads():
    items = _with_offsets(_records())
    whole, pending = containers.join_lines([], items)
    assert pending == [] and len(whole) == 12
    for cut in range(len(items) + 1):
        first, pending = containers.join_lines([], items[:cut])
        rest, pending = containers.join_lines(pending, items[cut:])
        assert first + rest == whole and pending == [], cut


def test_a_line_past_1_mib_is_given_out_in_pieces_marked_partial_that_cover_every_byte():
    piece = b"x" * 16384
    lines = [b"2024-03-11T08:15:02Z stdout P " + piece] * 70 + [b"2024-03-11T08:15:02Z stdout F tail"]
    items = _with_offsets(lines)
    events, pending = containers.join_lines([], items)
    assert pending == [] and len(events) == 2
    assert len(events[0].message) == containers.MAX_JOINED and events[0].fields["partial"] is True
    assert events[1].message == piece * 6 + b"tail" and events[1].fields["partial"] is False
    spans = [span(Event(b"i" * 16, 0, 0, "h", "a", None, "/f", j.offset, j.message, j.fields, b"k" * 16))
             for j in events]
    end = items[-1][0] + len(lines[-1]) + 1
    assert spans == [(0, spans[1][0]), (spans[1][0], end)]          # no gap, no overlap


# --- whole records pass as they are: the same events as joining gives ---

from helios import codec  # noqa: E402
from helios.services.tailer import Tailer  # noqa: E402
from helios.tail.encoder import Encoder, Settings  # noqa: E402
from helios.tail.files import Chunk  # noqa: E402

TEXTS = [(b"2024-03-11 08:15:02 ERROR a", b"stdout"), (b"b x=1", b"stderr"), (b'{"level":"warn","msg":"m"}', b"stdout")]


def _docker_lines(compact: bool):
    sep = (",", ":") if compact else None
    return [json.dumps({"log": t.decode() + "\n", "stream": s.decode(), "time": "2024-03-11T08:15:02.118Z"},
                       separators=sep).encode() for t, s in TEXTS]


@pytest.mark.parametrize("lines", [_docker_lines(True), _docker_lines(False),
                                   [b"2024-03-11T08:15:02.118Z %s F %s" % (s, t) for t, s in TEXTS]],
                         ids=["docker", "docker-spaced", "cri"])
@pytest.mark.parametrize("meta", [{}, {"namespace": "shop", "pod": "web-1", "container": "nginx"}],
                         ids=["anywhere", "kubernetes"])
def test_a_chunk_of_whole_records_passed_as_it_is_gives_the_events_joining_gives(lines, meta):
    data = b"".join(line + b"\n" for line in lines)
    assert containers.nothing_to_join(data)
    settings = Settings("prod", "h", "auto", "", "UTC", 1000, ())
    fast = Chunk("/x", KEY, 0, len(data), data, fields=[meta] if meta else None)   # as the tailer passes it
    events = [e for f in Encoder(settings).encode([(fast, 5)]).frames for e in codec.decode(f)[1]]
    joined, _ = containers.join_lines([], _with_offsets(lines))
    chunk = Tailer.container_chunk("/x", KEY, len(data), joined, meta)
    assert events == [e for f in Encoder(settings).encode([(chunk, 5)]).frames for e in codec.decode(f)[1]]
    assert [e.message for e in events] == [t for t, _ in TEXTS] and events[0].severity == 3
    assert all(meta.items() <= e.fields.items() for e in events)


def test_a_partial_record_anywhere_in_a_chunk_sends_it_the_joining_way():
    docker = b"".join(line + b"\n" for line in _docker_lines(True))
    assert not containers.nothing_to_join(docker.replace(b'a\\n"', b'a"'))
    assert containers.nothing_to_join(b"# banner\n" + docker + b"\n")           # lines that are no record
    assert not containers.nothing_to_join(b"# banner\n" + docker.replace(b'a\\n"', b'a"'))
    cri = b"2024-03-11T08:15:02Z stdout F x\n2024-03-11T08:15:02Z stderr P \n"
    assert not containers.nothing_to_join(cri)
    assert not containers.nothing_to_join(b"2024-03-11T08:15:02Z stdout P\n")   # an empty piece
