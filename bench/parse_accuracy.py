"""Parse accuracy on the loghub samples: time, host, app and severity per file,
as correct / wrong / missing counts against each file's known layout.

The truth of each line comes from the sample's ``*_structured.csv`` (loghub's
own field split), read by the rules below, one per file; a field the layout
does not have (Apache's app, Hadoop's host) is not counted. A yearless
timestamp is compared on month, day and time only (its year depends on when
it is read). A value that is the default (the receive time, the default host
or app, no severity) counts as missing; any other disagreement as wrong.

    python bench/parse_accuracy.py [--dir ../shared/data/loghub]

loghub stays outside the repository (it is read where it lies).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from helios.parse import Parser

UTC = datetime.timezone.utc
NOW = int(datetime.datetime(2026, 12, 6, 12, tzinfo=UTC).timestamp()) * 10**9
MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)}
LEVELS = {"INFO": 6, "WARN": 4, "WARNING": 4, "ERROR": 3, "FATAL": 2, "DEBUG": 7, "TRACE": 7, "notice": 5,
          "error": 3, "warn": 4, "V": 7, "D": 7, "I": 6, "W": 4, "E": 3, "F": 2, "A": 0}


def hms(text: str) -> tuple:
    """'18:01:47,978' -> (18, 1, 47, 978000000)."""
    clock, _, frac = text.replace(",", ".").partition(".")
    h, mi, s = (int(x) for x in clock.split(":"))
    return h, mi, s, int(frac.ljust(9, "0")) if frac else 0


# Per file: row -> (time parts (y or None, mo, d, h, mi, s, ns), host, app, severity); None = not in the layout.
def android(r):
    mo, d = (int(x) for x in r["Date"].split("-"))
    return (None, mo, d, *hms(r["Time"])), None, r["Component"].strip(), LEVELS[r["Level"]]


def apache(r):
    t = datetime.datetime.strptime(r["Time"], "%a %b %d %H:%M:%S %Y")
    return (t.year, t.month, t.day, t.hour, t.minute, t.second, 0), None, None, LEVELS[r["Level"]]


def hdfs(r):
    d, t = r["Date"], r["Time"].zfill(6)
    return ((2000 + int(d[:2]), int(d[2:4]), int(d[4:6]), int(t[:2]), int(t[2:4]), int(t[4:6]), 0), None,
            r["Component"], LEVELS[r["Level"]])


def hadoop(r):
    y, mo, d = (int(x) for x in r["Date"].split("-"))
    return (y, mo, d, *hms(r["Time"])), None, r["Component"], LEVELS[r["Level"]]


def healthapp(r):
    day, clock = r["Time"].split("-")
    h, mi, s, ms = clock.split(":")
    return ((int(day[:4]), int(day[4:6]), int(day[6:8]), int(h), int(mi), int(s), int(ms) * 1_000_000), None,
            r["Component"], None)


def linux(r):
    return (None, MONTHS[r["Month"]], int(r["Date"]), *hms(r["Time"])), r["Level"], r["Component"], None


def openssh(r):
    return (None, MONTHS[r["Date"]], int(r["Day"]), *hms(r["Time"])), r["Component"], "sshd", None


def openstack(r):
    y, mo, d = (int(x) for x in r["Date"].split("-"))
    return (y, mo, d, *hms(r["Time"])), None, r["Component"], LEVELS[r["Level"]]


def proxifier(r):
    md, clock = r["Time"].split(" ")
    mo, d = (int(x) for x in md.split("."))
    return (None, mo, d, *hms(clock)), None, r["Program"], None


def spark(r):
    y, mo, d = (int(x) for x in r["Date"].split("/"))
    return (2000 + y, mo, d, *hms(r["Time"])), None, r["Component"], LEVELS[r["Level"]]


TRUTH = {"Android_2k.log": android, "Apache_2k.log": apache, "HDFS_2k.log": hdfs, "Hadoop_2k.log": hadoop,
         "HealthApp_2k.log": healthapp, "Linux_2k.log": linux, "OpenSSH_2k.log": openssh,
         "OpenStack_2k.log": openstack, "Proxifier_2k.log": proxifier, "Spark_2k.log": spark}
FIELDS = ("time", "host", "app", "severity")


def judge(name: str, data: bytes, rows: list[dict]) -> dict[str, list[int]]:
    """{field: [correct, wrong, missing]} for one file."""
    cols = Parser("auto", default_host="", default_app="", tz=UTC).parse_chunk(data, NOW)
    counts = {f: [0, 0, 0] for f in FIELDS}
    if len(cols.lines) != len(rows):
        raise SystemExit(f"{name}: {len(cols.lines)} lines parsed, {len(rows)} in the structured csv")
    for i, row in enumerate(rows):
        when, host, app, severity = TRUTH[name](row)
        t = datetime.datetime.fromtimestamp(cols.times[i] // 10**9, UTC)
        got_time = (t.year, t.month, t.day, t.hour, t.minute, t.second, cols.times[i] % 10**9)
        want = when if when[0] is not None else when[1:]
        have = got_time if when[0] is not None else got_time[1:]
        checks = (("time", want, have, cols.times[i] == NOW), ("host", host, cols.hosts[i], cols.hosts[i] == ""),
                  ("app", app, cols.apps[i], cols.apps[i] == ""),
                  ("severity", severity, cols.severities[i], cols.severities[i] is None))
        for field, expected, got, missing in checks:
            if expected is None:
                continue
            counts[field][0 if got == expected else 2 if missing else 1] += 1
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", default=str(ROOT.parent / "shared" / "data" / "loghub"))
    args = ap.parse_args()
    folder = Path(args.dir)
    if not folder.is_dir():
        raise SystemExit(f"no loghub samples in {folder}")
    print(f"{'file':<18} {'lines':>5} " + " ".join(f"{f + ' c/w/m':>17}" for f in FIELDS))
    totals = {f: [0, 0, 0] for f in FIELDS}
    for name in sorted(TRUTH):
        path = folder / name
        if not path.exists():
            continue
        with open(folder / f"{name}_structured.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        counts = judge(name, path.read_bytes(), rows)
        cells = []
        for field in FIELDS:
            c, w, m = counts[field]
            totals[field] = [a + b for a, b in zip(totals[field], counts[field])]
            cells.append(f"{c}/{w}/{m}" if c + w + m else "n/a")
        print(f"{name:<18} {len(rows):>5} " + " ".join(f"{cell:>17}" for cell in cells))
    cells = []
    for field in FIELDS:
        c, w, m = totals[field]
        cells.append(f"{c / max(1, c + w + m):.1%} ({c}/{w}/{m})")
    print(f"{'all (correct)':<24} " + " ".join(f"{cell:>17}" for cell in cells))


if __name__ == "__main__":
    main()
