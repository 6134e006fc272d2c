"""`helios search --histogram` and `--top FIELD` over a real recent index
(sqlite), as a user runs them: text bars and JSON, the top values with
counts, and clear refusals."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest

from helios.index.base import open_index
from helios.model import severity_name
from tests.helpers import ROOT
from tests.integration.historymesh import OLD, events_of, iso

NS = 1_000_000_000


def helios(*args, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "helios", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def recent(tmp_path_factory):
    """A recent index holding 300 events in OLD's first minute and 100 in its fourth."""
    tmp = tmp_path_factory.mktemp("cli-agg")
    events = events_of("prod", OLD, 300, "x", seed=3) + events_of("prod", OLD + 180, 100, "y", seed=4)
    index = open_index("sqlite", str(tmp / "index"))
    index.load("prod", events)
    index.close()
    return ["--index-dir", str(tmp / "index"), "--env", "prod", "--start", iso(OLD), "--end", iso(OLD + 240)], events


def test_histogram_prints_a_bar_per_bucket_and_json_by_severity(recent):
    args, events = recent
    r = helios("search", *args, "--histogram")
    assert r.returncode == 0, r.stderr
    head, *rows = r.stdout.splitlines()
    assert head.startswith("400 event(s) of prod") and "per 10 s" in head
    assert len(rows) == 24                                  # 4 minutes in 10 s buckets, the empty ones too
    counts = [int(line.split()[1].replace(",", "")) for line in rows]
    want = Counter((e.time // NS - OLD) // 10 for e in events)
    assert counts == [want.get(i, 0) for i in range(24)]
    longest = max(rows, key=lambda line: line.count("\u2588"))
    assert longest.count("\u2588") == 50 and int(longest.split()[1]) == max(counts)
    assert rows[10].split()[1:] == ["0"]                   # an empty bucket: no bar

    js = [json.loads(x) for x in helios("search", *args, "--histogram", "-o", "json", "sev:err").stdout.splitlines()]
    errs = [e for e in events if e.severity <= 3]
    assert sum(x["count"] for x in js) == len(errs)
    assert all(x["step_s"] == 10 and x["time"].endswith("Z") for x in js)
    assert Counter(k for x in js for k, c in x["severity"].items() for _ in range(c)) == Counter(
        severity_name(e.severity) for e in errs)


def test_top_prints_the_most_frequent_values_with_counts(recent):
    args, events = recent
    r = helios("search", *args, "--top", "host")
    assert r.returncode == 0, r.stderr
    got = [(line.split()[1], int(line.split()[0])) for line in r.stdout.splitlines()]
    assert got == sorted(Counter(e.host for e in events).items(), key=lambda vc: (-vc[1], vc[0]))
    one = helios("search", *args, "--top", "app", "-n", "1", "-o", "json", "GET").stdout.splitlines()
    assert [json.loads(x) for x in one] == [{"field": "app", "value": "app", "count": 200}]   # a tie: by value
    env = helios("search", *args, "--top", "environment").stdout.split()
    assert env == ["400", "prod"]
    assert helios("search", *args, "--top", "user").returncode == 1      # no such field: nothing, exit 1


@pytest.mark.parametrize("extra, message", [
    (["--top", "no spaces"], "is not a field"),
    (["--histogram", "--top", "host"], "not both"),
    (["--histogram", "--count"], "not with --follow or --count"),
    (["--top", "host", "sev:loud"], "is not a severity"),
])
def test_bad_aggregation_options_are_refused_clearly(recent, extra, message):
    args, _ = recent
    r = helios("search", *args, *extra)
    assert r.returncode == 2 and message in r.stderr, r.stderr
