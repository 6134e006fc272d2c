"""The archive object format: pack and unpack are inverses up to canonical order,
what can be derived is not stored, and every bad object is one clear ArchiveError."""

import base64
import itertools
import random
import struct

import hypothesis.strategies as st
import pytest
import xxhash
import zstandard
from hypothesis import HealthCheck, given, settings

from helios.archive import format as fmt
from helios.archive.stamps import CANDIDATES, Stamp
from helios.errors import ArchiveError
from helios.model import Event, line_id, random_id, source_key
from helios.parse import Parser
from tests.helpers import LOGHUB, needs

KEY = source_key(1, 2, b"first line")
T0 = 1_700_000_000_000_000_000


def tailed(offset, message=b"Jun 14 15:16:01 combo sshd[1]: hello", time=T0, key=KEY, env="prod"):
    return Event(line_id(key, offset), time, time + 5, "combo", "sshd", 6, "/var/log/x", offset, message, None, key,
                 env)


def client_event(time=T0, env="prod", fields=None):
    return Event(random_id(), time, time + 1, "h", "app", 3, "", None, b"a client event",
                 fields if fields is not None else {"user": "ann", "n": [1, 2.5, None]}, b"", env)


def file_events(lines, key=KEY, time=T0, start=0):
    """Events as the tailer makes them from consecutive lines of one file."""
    offsets = itertools.accumulate([len(m) + 1 for m in lines], initial=start)
    return [tailed(off, m, time + i, key) for i, (off, m) in enumerate(zip(offsets, lines))]


# Any event at all: random ids, full int64 times, odd bytes.
any_events = st.lists(
    st.builds(
        Event,
        id=st.binary(min_size=16, max_size=16),
        time=st.integers(-(2**63), 2**63 - 1),
        received=st.integers(-(2**63), 2**63 - 1),
        host=st.text(max_size=12),
        app=st.text(max_size=12),
        severity=st.none() | st.integers(0, 7),
        source=st.text(max_size=20),
        offset=st.none() | st.integers(0, 2**63 - 1),
        message=st.binary(max_size=80)
        | st.sampled_from([b"", b"\n", b"a\nb\n", b" ", b"|x|", b"\r", b"a b c d e f g h i j k"]),
        fields=st.none() | st.dictionaries(
            st.text(max_size=8),
            st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8) | st.binary(max_size=8)
            | st.lists(st.integers(0, 9), max_size=3),
            max_size=4),
        source_id=st.just(b"") | st.just(KEY) | st.binary(min_size=1, max_size=20),
        environment=st.just("prod"),
    ),
    max_size=30,
)


@st.composite
def tailed_files(draw):
    """Lines of a few files as the tailer reads them: consecutive offsets,
    derived ids, timestamps at the start of most lines in one of the formats
    the packer tries (at some UTC offset), a few lines that do not match."""
    events = []
    for f in range(draw(st.integers(1, 3))):
        key = source_key(1, f, b"x")
        form = draw(st.sampled_from(CANDIDATES + (None,)))
        stamp = Stamp(form, draw(st.sampled_from([0, 3600, -19800, 14 * 3600]))) if form else None
        t = draw(st.integers(-(2**62), 2**62))
        off = draw(st.integers(0, 10**9))
        for _ in range(draw(st.integers(0, 25))):
            t += draw(st.integers(0, 3 * 10**9))
            body = draw(st.sampled_from([b" web-1 sshd[12]: Accepted key", b" kernel: x|y|z", b"", b" a\nb c",
                                         b"\xff\xfe bad utf8", b" INFO  spaced   out "]) | st.binary(max_size=30))
            prefix = stamp.render(t) if stamp and draw(st.integers(0, 9)) else b""
            message = prefix + body
            events.append(Event(line_id(key, off), t, t + 10**6, "web-1", draw(st.sampled_from(["sshd", "kernel", ""])),
                                draw(st.none() | st.integers(0, 7)), f"/var/log/f{f}", off, message, None, key, "prod"))
            off += len(message) + 1 + draw(st.sampled_from([0, 0, 0, 7]))
    return events


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=any_events)
def test_unpack_is_the_inverse_of_pack_for_any_events(events):
    data = fmt.pack(events, environment="prod")
    assert fmt.unpack(data) == fmt.canonical(events)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=tailed_files())
def test_unpack_is_the_inverse_of_pack_for_tailed_lines(events):
    data = fmt.pack(events, environment="prod")
    back = fmt.unpack(data)
    assert back == fmt.canonical(events)
    assert fmt.describe(data).columns["id"][1] == 0  # every id was derived


def test_pack_deduplicates_by_id_and_sorts_by_time_then_file_order():
    a = file_events([b"one", b"two", b"three"], time=T0)
    same_second = [e._replace(time=T0) for e in a]
    client = client_event(time=T0 - 1)
    events = [same_second[2], client, same_second[0], same_second[1], same_second[0], client]
    assert fmt.unpack(fmt.pack(events)) == [client] + same_second


def test_two_porters_packing_the_same_window_write_the_same_bytes():
    events = file_events([b"Jun 14 15:16:%02d x y z %d" % (i % 60, i) for i in range(500)]) + [client_event()]
    shuffled = events * 2
    random.Random(3).shuffle(shuffled)
    assert fmt.pack(shuffled) == fmt.pack(events)


def test_message_bytes_are_preserved_exactly():
    messages = [b"\xff\xfe not utf-8 \r", b"", b"\r", b"  leading spaces", b"trailing   ", b"a\nb\r\nc", b"\n",
                b"\x00|\t,"]
    events = file_events(messages)
    assert [e.message for e in fmt.unpack(fmt.pack(events))] == messages


def test_environment_is_restored():
    events = [tailed(0, env="staging-2")]
    assert fmt.unpack(fmt.pack(events))[0].environment == "staging-2"
    assert fmt.describe(fmt.pack([], environment="qa")).environment == "qa"
    assert fmt.unpack(fmt.pack([], environment="qa")) == []


def test_ids_of_tailed_lines_are_not_stored_but_client_ids_are():
    tailed_only = fmt.pack(file_events([b"x %d" % i for i in range(100)]))
    assert fmt.describe(tailed_only).columns["id"][2] == 0
    clients = [client_event(T0 + 1000 + i) for i in range(10)]
    mixed = fmt.pack(file_events([b"x %d" % i for i in range(100)]) + clients)
    assert fmt.describe(mixed).columns["id"][2] == 16 * 10
    assert fmt.unpack(mixed)[-10:] == clients


def test_a_tailed_line_whose_id_is_not_its_derived_id_keeps_it():
    odd = tailed(0)._replace(id=b"\x01" * 16)
    assert fmt.unpack(fmt.pack([odd, tailed(50, time=T0 + 1)]))[0] == odd


def test_timestamps_derivable_from_times_are_not_stored_as_text():
    stamp = Stamp("%b %e %H:%M:%S", 0)
    lines = [stamp.render(T0 + i * 10**9) + b" web-1 sshd[1]: hello %d" % i for i in range(300)]
    events = [e._replace(time=T0 + i * 10**9) for i, e in enumerate(file_events(lines))]
    data = fmt.pack(events)
    info = fmt.describe(data)
    assert info.stamp == ("%b %e %H:%M:%S", 0)
    assert fmt.unpack(data) == events


def test_stamps_render_like_the_logs_they_came_from():
    t = 1_702_197_346_811_000_000  # 2023-12-10 08:35:46.811 UTC, a Sunday
    assert Stamp("%b %e %H:%M:%S", 0).render(t) == b"Dec 10 08:35:46"
    assert Stamp("%b %e %H:%M:%S", 0).render(t - 9 * 86400 * 10**9) == b"Dec  1 08:35:46"
    assert Stamp("%m-%d %H:%M:%S.%3f", 3600).render(t) == b"12-10 09:35:46.811"
    assert Stamp("[%a %b %d %H:%M:%S %Y]", 0).render(t) == b"[Sun Dec 10 08:35:46 2023]"
    assert Stamp("%Y-%m-%dT%H:%M:%S.%9f", 0).render(-1) == b"1969-12-31T23:59:59.999999999"


def test_times_far_apart_round_trip():
    events = [tailed(0, time=-(2**63)), tailed(10, time=2**63 - 1), tailed(20, time=0)]
    events = [e._replace(received=-e.time - 1) for e in events]
    assert fmt.unpack(fmt.pack(events)) == fmt.canonical(events)


def test_describe_reads_the_header_without_unpacking():
    events = file_events([b"line %d" % i for i in range(20)], time=T0)
    data = fmt.pack(events)
    info = fmt.describe(data)
    assert (info.version, info.environment, info.count) == (fmt.VERSION, "prod", 20)
    assert (info.first_time, info.last_time) == (T0, T0 + 19)
    assert info.message_bytes == len(b"\n".join(e.message for e in events))
    assert info.size == len(data)


@pytest.mark.parametrize("events, problem", [
    ([tailed(0, env="prod"), tailed(9, env="qa")], "one environment"),
    ([tailed(0)._replace(id=b"short")], "ids must be 16 bytes"),
    ([tailed(0)._replace(time=2**63)], "int64"),
    ([tailed(0)._replace(severity=9)], "severity"),
    ([tailed(0)._replace(offset=-1)], "offset"),
    ([tailed(0)._replace(message="text")], "message and source_id must be bytes"),
    ([tailed(0)._replace(fields=[1])], "fields must be a dict"),
    ([tailed(0)._replace(fields={"x": object()})], "cannot be encoded"),
])
def test_pack_refuses_what_the_format_cannot_hold(events, problem):
    with pytest.raises(ArchiveError, match=problem):
        fmt.pack(events)


def _reseal(data: bytes, version: int | None = None, header: bytes | None = None) -> bytes:
    """``data`` with another version byte or header and a valid checksum, so that
    the check under test is the one that refuses it."""
    magic, v, hlen, _ = struct.unpack_from(">4sBIQ", data)
    body = data[fmt.PREFIX_SIZE:]
    if header is not None:
        body = header + body[hlen:]
        hlen = len(header)
    return struct.pack(">4sBIQ", magic, v if version is None else version, hlen, xxhash.xxh3_64_intdigest(body)) + body


def test_an_unknown_version_is_refused():
    data = fmt.pack([tailed(0)])
    later = max(fmt.SUPPORTED_VERSIONS) + 1
    with pytest.raises(ArchiveError, match=f"unknown archive format version {later}"):
        fmt.unpack(_reseal(data, version=later))
    with pytest.raises(ArchiveError, match="unknown archive format version 0"):
        fmt.describe(_reseal(data, version=0))


def test_every_flipped_byte_and_every_truncation_is_refused():
    data = fmt.pack(file_events([b"Jun 14 15:16:01 combo x %d" % i for i in range(5)]) + [client_event()])
    for i in range(len(data)):
        for bit in (0x01, 0x80):
            bad = bytearray(data)
            bad[i] ^= bit
            with pytest.raises(ArchiveError):
                fmt.unpack(bytes(bad))
    for n in range(len(data)):
        with pytest.raises(ArchiveError):
            fmt.unpack(data[:n])
    with pytest.raises(ArchiveError, match="not a Helios archive"):
        fmt.unpack(b"\x28\xb5\x2f\xfd" + data[4:])


def test_a_garbled_header_with_a_valid_checksum_is_refused():
    data = fmt.pack([tailed(0)])
    with pytest.raises(ArchiveError, match="header"):
        fmt.unpack(_reseal(data, header=b"\x93\x01\x02\x03"))
    with pytest.raises(ArchiveError, match="header"):
        fmt.unpack(_reseal(data, header=b"\xc1"))


# A version 1 object written when the format was made (``pack(golden_events(),
# layout=(b" ", 4))``): it must stay readable whatever later versions change
# (shrinkalog may choose a new default format).


def golden_events():
    key = source_key(8, 9, b"golden")
    stamp = Stamp("%b %e %H:%M:%S", 0)
    lines = [stamp.render(T0 + i * 10**9) + b" web-1 sshd[%d]: line %d" % (100 + i, i) for i in range(6)]
    lines[3] = b"no stamp \xff here"
    lines[4] = lines[4] + b"\n  continued"
    events = []
    off = 0
    for i, m in enumerate(lines):
        events.append(Event(line_id(key, off), T0 + i * 10**9, T0 + 7, "web-1", "sshd", 6, "/var/log/auth.log",
                            off, m, None, key, "golden"))
        off += len(m) + 1
    events.append(Event(bytes(range(16)), T0 + 2 * 10**9, T0 + 8, "app-1", "billing", 3, "", None, b"paid",
                        {"order": 17, "amount": 2.5, "tags": ["a", "b"]}, b"", "golden"))
    return events


GOLDEN_V1 = (
    "k0hFQQEAAAB+q3xUZowra52apmdvbGRlbgfPF5ec/jYqAADPF5ec/2Av8gDM6AjEASAEkq4lYiAlZSAlSDolTTolUwDcABKTABYW"
    "kwASEpMACAiTAENDkwAICJMACAiTAAQEkwAQEJMAKSmTAAUFkwAEBJMAAgKTAAUFkwADA5MADQ2TASAlkwE7Q5MAKSmTzjuaygDP"
    "F5ec/jYqAACWAQEAAQEBkwHPF5ec/jYqAAeWAAH/AAAAlwYGAwYGBgaSlKV3ZWItMaRzc2hksS92YXIvbG9nL2F1dGgubG9nxBDw"
    "wxuweNJSUsKMg2poIYyclKVhcHAtMadiaWxsaW5noMQAlwAAAQAAAACXAADAAAAAAJMBApAAAQIDBAUGBwgJCgsMDQ4Pl8DAg6Vv"
    "cmRlchGmYW1vdW50y0AEAAAAAAAApHRhZ3OSoWGhYsDAwMCTAgKRAZMBBZCRAZMEApEBkgEDCgpwYWlkCgpubwoKCii1L/0AAL0A"
    "AGB3ZWItMQpzdGFtcAoDADZ5qWSQoRQBKLUv/QAAlQEARAJzc2hkWzEwMF06CjFdOgoyXToK/zRdOgpjb250aW51ZWQ1XToEADjJ"
    "h0n0CyHOihdsaW5lIDAKbGluZSAxCgpsaW5lIDIKaGVyZQpsaW5lIDQKCmxpbmUgNQ=="
)


def test_objects_written_by_format_version_1_stay_readable():
    data = base64.b64decode(GOLDEN_V1)
    assert fmt.describe(data).version == 1
    assert fmt.unpack(data) == fmt.canonical(golden_events())


# --- real logs ----------------------------------------------------------------

def loghub_samples():
    return sorted(LOGHUB.glob("*_2k.log")) if LOGHUB.is_dir() else []


def tailer_events(path):
    """The events the tailer would make of a file (default parsing, one chunk)."""
    data = path.read_bytes()
    now = T0
    cols = Parser("auto", default_host="loghub").parse_chunk(data, now)
    key = source_key(1, 2, data[:64])
    offsets = itertools.accumulate((len(m) + 1 for m in cols.lines), initial=0)
    return [Event(line_id(key, off), t, now, h, a, s, str(path), off, m, None, key, "loghub")
            for m, t, h, a, s, off in zip(cols.lines, cols.times, cols.hosts, cols.apps, cols.severities, offsets)]


@needs("loghub", None if loghub_samples() else f"no loghub samples in {LOGHUB}")
@pytest.mark.parametrize("path", loghub_samples(), ids=lambda p: p.name)
def test_a_real_log_packs_smaller_than_zstd_19_of_its_raw_lines(path):
    events = tailer_events(path)
    data = fmt.pack(events)
    raw_lines = b"\n".join(e.message for e in events)
    zstd19 = len(zstandard.ZstdCompressor(level=19).compress(raw_lines))
    assert len(data) <= zstd19, f"{path.name}: archive {len(data)} bytes, zstd -19 of the raw lines {zstd19}"
    assert fmt.unpack(data) == fmt.canonical(events)
