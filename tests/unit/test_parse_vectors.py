"""helios.parse against the public syslog test vectors of rsyslog and Vector
(tests/data/syslog_vectors.json: each line, its source, and what those
parsers make of it; where Helios reads a line otherwise, the file says why)."""

from __future__ import annotations

import datetime
import json
import pathlib

import pytest

from helios.parse import Parser

DATA = json.loads((pathlib.Path(__file__).parent.parent / "data" / "syslog_vectors.json").read_text("utf-8"))


def ns_of(text: str) -> int:
    head, _, frac = text.rstrip("Z").partition(".")
    t = datetime.datetime.fromisoformat(head).replace(tzinfo=datetime.timezone.utc)
    return int(t.timestamp()) * 10**9 + int(frac.ljust(9, "0") if frac else 0)


NOW = ns_of(DATA["now"])


@pytest.mark.parametrize("vector", DATA["vectors"], ids=lambda v: f"{v['source']}: {v['line'][:40]}")
def test_public_syslog_vector_reads_as_rsyslog_and_vector_read_it(vector):
    line = vector["line"].encode("utf-8")
    cols = Parser("auto", default_host="", default_app="", tz=datetime.timezone.utc).parse_chunk(line + b"\n", NOW)
    assert cols.times[0] == ns_of(vector["time"])
    assert cols.hosts[0] == vector["host"]
    if "app" in vector:
        assert cols.apps[0] == vector["app"]
    assert cols.severities[0] == vector["severity"]
    if "fields" in vector:
        assert cols.fields[0] == vector["fields"]
    assert cols.messages[0] == line


def test_every_vector_names_its_source_and_the_sources_their_licence():
    for vector in DATA["vectors"]:
        assert vector["source"].split()[0] in DATA["sources"]
    assert all("licen" in text.lower() or "GPL" in text or "MPL" in text for text in DATA["sources"].values())
