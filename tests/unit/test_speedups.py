"""The hot loops in C (helios/_speedups.c) give what their Python twins
give. The BSD fast pass's header scan gives exactly what the regex it stands for gives (layouts.RFC3164_FAST and
RFC3164_FAST_PRI), on real logs, on the public test vectors and on
generated lines built to sit on every edge of the layout; and the parser
reads the same columns with it and without it."""

from __future__ import annotations

import datetime
import json
import pathlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helios.parse import Parser
from helios.parsing import layouts as L
from tests.helpers import LOGHUB, require

C = L._speedups


@pytest.fixture(autouse=True)
def built():
    if C is None:
        require("speedups", "helios/_speedups.c is not built (no C compiler or Python headers): "
                           "pip install -e . builds it")


def regex_heads(text: bytes, n: int) -> list[bytes]:
    heads = L.RFC3164_FAST.findall(text)
    del heads[n:]
    return heads


def regex_pri_heads(text: bytes, n: int) -> tuple[list[bytes], list[bytes]]:
    rows = L.RFC3164_FAST_PRI.findall(text)
    del rows[n:]
    return [r[0] for r in rows], [r[1] for r in rows]


def same(text: bytes, n: int | None = None) -> None:
    if n is None:
        n = text.count(b"\n") + 1
    want = regex_heads(text, n)
    got = C.bsd_heads(text, n)
    assert got == want, first_difference(text, want, got)
    want_p, want_h = regex_pri_heads(text, n)
    got_p, got_h = C.bsd_pri_heads(text, n)
    assert got_h == want_h, first_difference(text, want_h, got_h)
    assert got_p == want_p, first_difference(text, want_p, got_p)


def first_difference(text: bytes, want: list, got: list) -> str:
    if len(want) != len(got):
        return f"{len(got)} entries, the regex gives {len(want)}"
    lines = text.split(b"\n")
    i = next(i for i, (a, b) in enumerate(zip(want, got)) if a != b)
    return f"line {i} {lines[i]!r}: C gives {got[i]!r}, the regex {want[i]!r}"


def with_pris(text: bytes) -> bytes:
    return b"\n".join(b"<%d>" % (i * 7 % 200) + line for i, line in enumerate(text.split(b"\n")))


def test_counts_lines_as_findall_does():
    line = b"<13>Dec  5 17:42:15 web-1 sshd[12]: hello"
    for text in (b"", b"\n", line, line + b"\n", line + b"\n\n" + line, b"\n" * 5):
        for n in range(0, 8):
            same(text, n)


EDGES = [
    b"Dec  5 17:42:15 web-1 sshd[4305]: Accepted publickey",
    b"<13>Dec  5 17:42:15 web-1 sshd: x",
    b"<0>Jan 01 00:00:00 h t: x",
    b"<191>Feb 29 23:59:59 h syslogd 1.4.1: restart",
    b"<1234>Dec  5 17:42:15 web-1 sshd: x",          # four digits: no PRI, and no header
    b"<>Dec  5 17:42:15 web-1 sshd: x",
    b"<13 >Dec  5 17:42:15 web-1 sshd: x",
    b"Dec  5 17:42:15 2019 web-1 sshd: x",           # a year, not a host
    b"Dec  5 17:42:15 20190 web-1 sshd: x",
    b"Dec  5 17:42:15 web-1: sshd: x",               # a host ending in ":"
    b"Dec  5 17:42:15 web-1] sshd: x",
    b"Dec  5 17:42:15   web-1    sshd: x",
    b"Dec  5 17:42:15 web-1\tsshd: x",
    b"Dec  5 17:42:15\tweb-1 sshd: x",
    b"Dec 5 17:42:15 web-1 sshd: x",
    b"dec  5 17:42:15 web-1 sshd: x",
    b"DEC  5 17:42:15 web-1 sshd: x",
    b"Dec  5 17:42:15 web-1 sshd",
    b"Dec  5 17:42:15 web-1 sshd ",
    b"Dec  5 17:42:15 web-1 sshd[1]",
    b"Dec  5 17:42:15 web-1 sshd[1] : x",
    b"Dec  5 17:42:15 web-1 sshd[]: x",
    b"Dec  5 17:42:15 web-1 sshd[" + b"9" * 32 + b"]: x",
    b"Dec  5 17:42:15 web-1 sshd[" + b"9" * 33 + b"]: x",
    b"Dec  5 17:42:15 web-1 sshd[1[2]: x",
    b"Dec  5 17:42:15 web-1 " + b"t" * 48 + b": x",
    b"Dec  5 17:42:15 web-1 " + b"t" * 49 + b": x",
    b"Dec  5 17:42:15 web-1 tag " + b"w" * 24 + b": x",
    b"Dec  5 17:42:15 web-1 tag " + b"w" * 25 + b": x",
    b"Dec  5 17:42:15 web-1 tag two three: x",
    b"Dec  5 17:42:15 web-1 tag  two: x",
    b"Dec  5 17:42:15 web-1 tag two[7]: x",
    b"Dec  5 17:42:15 web-1 -- MARK --",
    b"Dec  5 17:42:15 " + b"h" * 300 + b" sshd: x",
    b"Dec  5 17:42:15 web-1 ss\rhd: x",
    b"Dec  5 17:42:15 web-1 ss]hd: x",
    b"Dec  5 17:42:15 web-1 :x",
    b"Dec  5 17:42:15 web-1 ",
    b"Dec  5 17:42:15 ",
    b"Dec  5 17:42:1",
    b"Dec  5 7:42:15 web-1 sshd: x",
    b"Dec 15 17:42:15 web-1 sshd: x",
    b"Dec x5 17:42:15 web-1 sshd: x",
    b"<13>",
    b"<",
    b"",
] + [b"Dec  5 17:42:15 web%s1 sshd: x" % w for w in (b"\t", b"\x0b", b"\x0c", b"\r", b"\x1c", b"\xa0")] \
  + [b"Dec  5 17:42:15 web-1%ssshd: x" % w for w in (b"\t", b"\x0b", b"\x0c", b"\r", b"\x1c", b"\xa0")]


def test_edges_of_the_layout():
    for line in EDGES:
        same(line)
        same(line + b"\n")
    same(b"\n".join(EDGES))
    same(b"\n".join(EDGES) + b"\n")


PIECES = st.sampled_from([
    b"<13>", b"<0>", b"<191>", b"<1234>", b"<>", b"<x>", b"<", b">", b"Dec", b"Jan", b"dec", b"Mon", b" 5", b"05",
    b"5", b"17:42:15", b"1:2:3", b"2019", b"20", b"web-1", b"h:", b"h]", b"sshd", b"tag", b"[", b"]", b"[42]",
    b":", b": ", b" ", b"  ", b"\t", b"\r", b"\x0b", b"x" * 24, b"y" * 25, b"z" * 47, b"\xff\xfe", b"=",
])
LINE = st.builds(lambda parts: b"".join(parts), st.lists(PIECES, max_size=16))
SEPARATED = st.builds(lambda words: b" ".join(words), st.lists(PIECES, max_size=12))
HEADER = st.builds(
    lambda pri, mon, day, t, sp1, host, sp2, tag, rest: pri + mon + b" " + day + b" " + t + sp1 + host + sp2 + tag + rest,
    st.sampled_from([b"", b"<13>", b"<191>", b"<1000>"]), st.sampled_from([b"Dec", b"Jan", b"Foo", b"dec"]),
    st.sampled_from([b" 5", b"15", b"5", b"x5"]), st.sampled_from([b"17:42:15", b"7:42:15"]),
    st.sampled_from([b" ", b"  ", b"\t", b""]), st.binary(max_size=12), st.sampled_from([b" ", b"   ", b"\t", b""]),
    st.binary(max_size=60), st.binary(max_size=40))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(LINE, SEPARATED, HEADER), max_size=30), st.booleans())
def test_generated_lines(lines, end):
    text = b"\n".join(lines) + (b"\n" if end else b"")
    same(text)


def test_public_vectors():
    data = json.loads((pathlib.Path(__file__).parent.parent / "data" / "syslog_vectors.json").read_text("utf-8"))
    text = b"\n".join(v["line"].encode("utf-8") for v in data["vectors"])
    same(text)
    same(with_pris(text))


def test_real_logs():
    if not LOGHUB.is_dir():
        require("loghub", f"the loghub samples are not in {LOGHUB}")
    files = sorted(p for p in LOGHUB.rglob("*.log") if p.is_file())
    assert files
    for path in files:
        text = path.read_bytes()
        same(text)
        same(with_pris(text))


def test_the_parser_reads_the_same_columns_without_it(monkeypatch):
    """The regex fallback (a build without a compiler) and the C scan give the
    parser the same columns, line for line."""
    text = b"\n".join(EDGES + [b"<30>Dec  5 17:42:15 web-%d app%d[%d]: n=%d" % (i % 7, i % 5, i, i) for i in range(500)])
    if LOGHUB.is_dir():
        text += b"\n" + with_pris((LOGHUB / "Linux_2k.log").read_bytes())
    chunk = text + b"\n"
    now = 1_733_420_000 * 10**9

    def columns():
        cols = Parser("auto", default_host="", default_app="", tz=datetime.timezone.utc).parse_chunk(chunk, now)
        return (cols.times, cols.hosts, cols.apps, cols.severities, cols.fields, cols.messages)

    with_c = columns()
    monkeypatch.setattr(L, "_speedups", None)
    assert columns() == with_c


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40).map(lambda b: b.replace(b"\x00", b"\n")), st.integers(-2, 45))
def test_digit_after_newline_is_the_deframers_regex(data, end):
    from helios.syslognet import framing

    assert C.digit_after_newline(data, end) == (framing._DIGIT_AFTER_LF.search(data, 0, end) is not None)
    for text in (b"a\n1", b"\n1", b"a\n", b"\n\n1", b"1\na", b"a\nb\n2x"):
        for k in range(-1, len(text) + 2):
            assert C.digit_after_newline(text, k) == (framing._DIGIT_AFTER_LF.search(text, 0, k) is not None)


def test_longest_line():
    for text in (b"", b"a", b"ab\nc", b"a\n", b"\n\nabc\n", b"x" * 70000 + b"\nyy"):
        assert C.longest_line(text) == max(map(len, text.split(b"\n")))


CANONICAL = st.builds(
    lambda pri, day, s, host, app, pid, msg: b"<%d>Dec %2d 17:42:%02d %s %s%s: %s" % (pri, day, s, host, app, pid, msg),
    st.integers(0, 200), st.integers(1, 31), st.integers(0, 61), st.sampled_from([b"web-1", b"db", b"10.0.0.7", b"h" * 300]),
    st.sampled_from([b"sshd", b"CRON", b"postfix/smtp", b"syslogd 1.4.1", b"a" * 48]),
    st.sampled_from([b"", b"[42]", b"[" + b"9" * 32 + b"]"]),
    st.sampled_from([b"hello", b"", b"level=debug x", b"a\rb", b"key=value with spaces", b"\xff\xfe"]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(CANONICAL, HEADER), min_size=1, max_size=20))
def test_a_block_of_bsd_lines_reads_as_parse_chunk_reads_it(lines):
    """Parser.parse_bsd_block (the syslog relay's block, never cut into
    lines) gives parse_chunk's columns, or None (and parse_chunk then)."""
    chunk = b"\n".join(lines) + b"\n"
    now = 1_733_420_000 * 10**9
    fast = Parser("auto", default_host="", default_app="").parse_bsd_block(chunk, now)
    cols = Parser("auto", default_host="", default_app="").parse_chunk(chunk, now)
    if fast is None:
        # (a line not of the layout with a PRI, a "\r", or a PRI over 191: no severity from it)
        matches = [L.RFC3164_FAST_PRI.match(line) for line in lines]
        assert any(b"\r" in line or not (m[1] and m[2]) or int(m[1]) > 191 for line, m in zip(lines, matches))
        return
    assert fast == (cols.times, cols.hosts, cols.apps, cols.severities)
    assert cols.fields == [None] * len(lines) and cols.messages == lines


def test_a_parser_with_more_to_do_reads_no_block():
    chunk = b"<13>Dec  5 17:42:15 web-1 sshd[7]: password=hunter2\n"
    now = 1_733_420_000 * 10**9
    assert Parser("auto").parse_bsd_block(chunk, now) is not None
    for kw in ({"masks": ["password=\\S+"]}, {"drops": ["sshd"]}, {"rename": {"a": "b"}}, {"add_fields": {"a": 1}},
               {"key_values": True}, {"encoding": "latin-1"}):
        assert Parser("auto", **kw).parse_bsd_block(chunk, now) is None, kw
    assert Parser("rfc5424").parse_bsd_block(chunk, now) is None
    p = Parser("auto")
    p.explain = True
    assert p.parse_bsd_block(chunk, now) is None


def test_a_service_says_when_it_runs_without_them(monkeypatch):
    assert L.speedups_missing() is None
    monkeypatch.setattr(L, "_speedups", None)
    assert "gcc and python3-dev" in L.speedups_missing()
    assert L.fast_pri_heads(b"<13>Dec  5 17:42:15 web-1 sshd: x\n", 1) == ([b"13"], [b"Dec  5 17:42:15 web-1 sshd"])
    assert L.longest_line(b"ab\nc") == 2


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_edges_mutated_from_a_seed(seed):
    """Each edge line with bytes put in, taken out and swapped at random
    (what the layout's boundaries are made of): 1,500 texts a seed."""
    import random

    rnd = random.Random(seed)
    alphabet = [b"<", b">", b"1", b"9", b"0", b"2", b"Dec", b"Jan", b" ", b"  ", b":", b"[", b"]", b"\t", b"\r",
                b"\x0b", b"\n", b"a", b"web-1", b"sshd", b"17:42:15", b" 5", b"x" * 20, b"\xff"]
    for _ in range(1500):
        lines = []
        for _ in range(rnd.randint(1, 20)):
            line = bytearray(rnd.choice(EDGES))
            for _ in range(rnd.randint(0, 4)):
                at, op = rnd.randint(0, len(line)), rnd.random()
                if op < 0.4:
                    line[at:at] = rnd.choice(alphabet)
                elif op < 0.7:
                    del line[at:at + rnd.randint(1, 3)]
                else:
                    line[at:at + 1] = rnd.choice(alphabet)
            lines.append(bytes(line))
        text = b"\n".join(lines) + rnd.choice([b"", b"\n"])
        same(text)
        same(with_pris(text))
