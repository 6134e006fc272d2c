"""The tailer reads the systemd journal: real journal files written by
systemd-journal-remote, read through journalctl, every entry in both bucks
once by id, restarts and kills included."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from helios.model import line_id
from helios.tail.journal import series_key
from tests.helpers import buck_events, bucks_events, needs, poll_until
from tests.integration.journalfiles import BOOT, JOURNAL_REMOTE, number_of, numbered, write_journal

pytestmark = needs("systemd-journal-remote", None if os.access(JOURNAL_REMOTE, os.X_OK) else
                   f"{JOURNAL_REMOTE} is not installed (make installs it): no journal files to read")

FAST = ["--spool-window", "2", "--resend-jitter", "0.5", "--positions-interval", "0.2", "--live-wait", "0.2"]


class Mesh:
    """Two bucks and a tailer reading a directory of journal files."""

    def __init__(self, tmp_path, procs, buck, extra=()):
        self.tmp, self.procs = tmp_path, procs
        self.dir = tmp_path / "journal"
        self.dir.mkdir(exist_ok=True)
        self.b = [buck("a"), buck("b")]
        self.extra = list(extra)
        self.tailer = None

    def args(self):
        args = ["tailer", "--journal-dir", str(self.dir), "--env", "prod", "--start-at", "beginning",
                "--state-dir", str(self.tmp / "state"), *FAST, *self.extra]
        for _, ep, _ in self.b:
            args += ["--buck", ep]
        return args

    def start(self):
        self.tailer = self.procs(*self.args(), name=f"tailer-{time.monotonic_ns()}")
        poll_until(lambda: "Tailer reads" in self.tailer.output() or not self.tailer.alive(),
                   what="the tailer to start journalctl")
        return self.tailer

    def events(self):
        return bucks_events(data for _, _, data in self.b)

    def held(self):
        """entry number -> ids, over both bucks; and per buck, the numbers it holds."""
        ids, per_buck = defaultdict(set), []
        for _, _, data in self.b:
            mine = set()
            for e in buck_events(data)[0]:
                n = number_of(e.message)
                if n is not None:
                    ids[n].add(e.id)
                    mine.add(n)
            per_buck.append(mine)
        return ids, per_buck

    def check(self, expected: set[int], timeout=60):
        """Every entry in both bucks, each under one id, nothing else; the audit is clean."""
        poll_until(lambda: all(m >= expected for m in self.held()[1]), timeout=timeout, interval=0.3,
                   what="every entry in both bucks")
        ids, _ = self.held()
        twice = {n: i for n, i in ids.items() if len(i) > 1}
        assert not twice, f"{len(twice)} entries under more than one id: {sorted(twice)[:10]}"
        assert ids.keys() == expected, f"unexpected entries: {sorted(ids.keys() - expected)[:10]}"
        self.audit()

    def audit(self):
        args = [sys.executable, "-m", "helios", "audit", "--json"]
        for _, _, data in self.b:
            args += ["--data-dir", str(data)]
        r = subprocess.run(args, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        return json.loads(r.stdout)

    def stats(self):
        try:
            return json.loads((self.tmp / "state" / "stats.json").read_text())
        except (OSError, ValueError):
            return {}

    def positions(self):
        try:
            return json.loads((self.tmp / "state" / "positions.json").read_text()).get("journal", {})
        except (OSError, ValueError):
            return {}


def seqnum_id(journal_file) -> str:
    out = subprocess.run(["journalctl", f"--file={journal_file}", "-o", "export", "-n", "1"],
                         capture_output=True, timeout=30).stdout
    cursor = next(line for line in out.split(b"\n") if line.startswith(b"__CURSOR="))
    return cursor.split(b"s=")[1].split(b";")[0].decode()


def test_every_field_of_an_entry_maps_to_the_event(tmp_path, procs, buck):
    m = Mesh(tmp_path, procs, buck)
    entries = [
        [("__REALTIME_TIMESTAMP", b"1700000000123456"), ("__MONOTONIC_TIMESTAMP", b"5"), ("_BOOT_ID", BOOT),
         ("_HOSTNAME", b"db-7"), ("SYSLOG_IDENTIFIER", b"postgres"), ("_SYSTEMD_UNIT", b"postgresql.service"),
         ("PRIORITY", b"2"), ("_PID", b"777"), ("_COMM", b"postgres"), ("CODE_LINE", b"12"),
         ("_CAP_EFFECTIVE", b"0"), ("MESSAGE", b"checkpoint \xff\x00 done\nsecond line")],
        [("__REALTIME_TIMESTAMP", b"1700000000223456"), ("__MONOTONIC_TIMESTAMP", b"6"), ("_BOOT_ID", BOOT),
         ("_HOSTNAME", b"db-7"), ("_SYSTEMD_UNIT", b"cron.service"), ("MESSAGE", b"plain text")],
    ]
    path = write_journal(m.dir / "x.journal", entries)
    m.start()
    poll_until(lambda: all(len(buck_events(d)[0]) >= 2 for _, _, d in m.b), what="both entries in both bucks")
    events = sorted(buck_events(m.b[0][2])[0], key=lambda e: e.time)
    first, second = events
    sid = seqnum_id(path)
    assert first.message == b"checkpoint \xff\x00 done\nsecond line"    # binary MESSAGE, bytes as they were
    assert (first.time, first.host, first.app, first.severity) == (1700000000123456000, "db-7", "postgres", 2)
    assert first.source == f"journal:{m.dir}" and first.offset == 1
    assert first.id == line_id(series_key(sid), 1) and first.source_id == series_key(sid)
    assert first.fields == {"pid": 777, "_COMM": "postgres", "CODE_LINE": "12", "_BOOT_ID": BOOT.decode(),
                            "_SYSTEMD_UNIT": "postgresql.service", "journal_after": 0}
    assert (second.app, second.severity, second.message, second.offset) == ("cron.service", None, b"plain text", 2)
    assert "pid" not in second.fields
    report = m.audit()
    assert report["ok"] and report["sources"][0]["first"] == 1 and report["sources"][0]["last"] == 3


def test_the_cursor_resumes_after_a_restart_without_a_duplicate(tmp_path, procs, buck):
    m = Mesh(tmp_path, procs, buck)
    write_journal(m.dir / "x.journal", numbered(100))
    t = m.start()
    m.check(set(range(100)))
    poll_until(lambda: ";i=64;" in next(iter(m.positions().values()), {}).get("cursor", ""),
               what="the cursor of the last entry saved")
    t.stop()
    write_journal(m.dir / "x.journal", numbered(50, start=100))   # appended while the tailer was down
    m.start()
    m.check(set(range(150)))
    # The second run read only what followed the cursor.
    poll_until(lambda: m.stats().get("journal_entries") == 50, what="the second run's count of entries read")


def test_a_kill_9_while_reading_a_big_journal_loses_and_duplicates_nothing(tmp_path, procs, buck):
    m = Mesh(tmp_path, procs, buck, extra=["--batch-events", "500"])
    write_journal(m.dir / "x.journal", numbered(50_000))
    t = m.start()
    poll_until(lambda: m.positions(), timeout=60, what="a first cursor committed")
    t.stop(signal.SIGKILL)
    assert len(m.held()[0]) < 50_000, "the kill came after the end: the case proves nothing"
    m.start()
    m.check(set(range(50_000)), timeout=180)


def test_journal_files_written_while_following_are_read(tmp_path, procs, buck):
    m = Mesh(tmp_path, procs, buck)
    write_journal(m.dir / "x.journal", numbered(10))
    m.start()
    m.check(set(range(10)))
    write_journal(m.dir / "x.journal", numbered(10, start=10))     # the same file, appended
    m.check(set(range(20)))
    write_journal(m.dir / "y.journal", numbered(10, start=20))     # a new file in the directory
    m.check(set(range(30)))


def test_included_and_excluded_units_and_identifiers(tmp_path, procs, buck):
    m = Mesh(tmp_path, procs, buck, extra=["--journal-unit", "web", "--journal-identifier", "cron",
                                           "--journal-exclude-identifier", "noisy"])
    entries = (numbered(5, 0, "web.service", "web") + numbered(5, 5, "db.service", "db")
               + numbered(5, 10, "cron.service", "cron") + numbered(5, 15, "web.service", "noisy")
               + numbered(5, 20, "web.service", "web"))
    write_journal(m.dir / "x.journal", entries)
    m.start()
    m.check(set(range(5)) | set(range(10, 15)) | set(range(20, 25)))
    # What was left out was never read as a loss: the audit's spans join over it.
    report = m.audit()
    assert report["ok"] and [s["gaps"] for s in report["sources"]] == [[]]


def drop_entries(m: Mesh, numbers: set[int]) -> tuple[dict, str]:
    """Break it on purpose: stop everything, take the events of these entries
    out of both bucks' files; the audit's report, as JSON and as text."""
    m.tailer.stop()
    for proc, _, _ in m.b:
        proc.stop()
    from helios import codec
    from helios.store import layout
    from helios.store.records import RecordReader, RecordWriter
    for _, _, data in m.b:
        for _, path in layout.list_buckets(data / "buckets"):
            frames = list(RecordReader(path))
            path.unlink()
            with RecordWriter(path) as w:
                for frame in frames:
                    header, events = codec.decode(frame)
                    kept = [e for e in events if number_of(e.message) not in numbers]
                    w.append(codec.encode_events(header.environment, header.host, kept))
    args = [sys.executable, "-m", "helios", "audit"]
    for _, _, data in m.b:
        args += ["--data-dir", str(data)]
    r = subprocess.run(args + ["--json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    text = subprocess.run(args, capture_output=True, text=True, timeout=120).stdout
    return json.loads(r.stdout), text


def test_the_audit_names_an_entry_no_buck_holds(tmp_path, procs, buck):
    m = Mesh(tmp_path, procs, buck)
    write_journal(m.dir / "x.journal", numbered(30))
    m.start()
    m.check(set(range(30)))
    report, text = drop_entries(m, {10, 11})
    gaps = [g for s in report["sources"] for g in s["gaps"]]
    assert gaps == [{"start": 11, "end": 13, "bytes": 2}]   # seqnums 11 and 12: entries 10 and 11
    assert "missing entries 11..13 (2 entries)" in text, text


def test_the_audit_names_the_last_entries_read_that_no_buck_holds(tmp_path, procs, buck):
    """No later entry shows the hole: the tailer's inventory says how far it read."""
    m = Mesh(tmp_path, procs, buck)
    write_journal(m.dir / "x.journal", numbered(30))
    m.start()
    m.check(set(range(30)))
    report, text = drop_entries(m, {28, 29})
    assert [g for s in report["sources"] for g in s["gaps"]] == []
    (finding,) = report["inventory"]
    assert finding["paths"] == [f"journal:{m.dir}"] and finding["end"] == ""
    assert finding["missing"] == [{"start": 29, "end": 31, "bytes": 2}]   # seqnums 29 and 30
    assert "entries 29..31 read, held by no buck (2 entries)" in text, text


def test_a_missing_journal_directory_is_a_clear_error(tmp_path, procs, buck):
    _, ep, _ = buck("a")
    r = subprocess.run([sys.executable, "-m", "helios", "tailer", "--journal-dir", str(tmp_path / "nope"),
                        "--buck", ep, "--copies", "1", "--state-dir", str(tmp_path / "state")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert f"cannot read the journal directory {tmp_path / 'nope'}: No such file or directory" in r.stderr


def test_journalctl_missing_is_a_clear_error(tmp_path, procs, buck):
    _, ep, _ = buck("a")
    env = dict(os.environ, PATH=str(tmp_path))   # no journalctl there
    r = subprocess.run([sys.executable, "-m", "helios", "tailer", "--journal", "--buck", ep, "--copies", "1",
                        "--state-dir", str(tmp_path / "state")], capture_output=True, text=True, timeout=60,
                       env=env)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "journalctl is not installed or not on PATH" in r.stderr


def test_metrics_count_events_bytes_and_errors_per_input(tmp_path, procs, buck):
    from tests.integration.test_metrics import metrics_address, scrape

    log = tmp_path / "app.log"
    log.write_bytes(b"Nov 23 10:00:00 web-1 app[42]: a line\n" * 7)
    m = Mesh(tmp_path, procs, buck, extra=["--metrics", "127.0.0.1:0", "--path", str(log)])
    write_journal(m.dir / "x.journal", numbered(20))
    m.start()
    m.check(set(range(20)))
    addr = metrics_address(tmp_path / "state" / "stats.json")
    poll_until(lambda: scrape(addr)[("helios_input_events_total", (("input", "files"),))] == 7,
               what="the file's lines counted")
    s = scrape(addr)
    assert s[("helios_input_events_total", (("input", "journal"),))] == 20
    assert s[("helios_input_bytes_total", (("input", "journal"),))] > 20 * 100
    assert s[("helios_input_errors_total", (("input", "journal"),))] == 0


def children(pid: int) -> list[int]:
    """The processes ``pid`` started, and theirs (the tailer's journal reader process runs journalctl)."""
    out = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            out += [int(c) for c in (task / "children").read_text().split()]
    except OSError:     # it ended meanwhile
        pass
    return out + [g for c in out for g in children(c)]


def reader_process(pid: int) -> int:
    """The tailer ``pid``'s journal reader process, once it runs."""
    def find():
        found = [c for c in children(pid) if b"helios.tail.journal_reader" in Path(f"/proc/{c}/cmdline").read_bytes()]
        return found[0] if found else None
    return poll_until(find, what="the tailer's journal reader process")


def gone_or_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] in ("Z", "X")
    except OSError:
        return True


def journalctl_of(pid: int) -> int:
    """The journalctl the tailer ``pid`` runs, once it runs."""
    def find():
        found = [c for c in children(pid) if Path(f"/proc/{c}/comm").exists()
                 and Path(f"/proc/{c}/comm").read_text().strip() == "journalctl"]
        assert len(found) <= 1, found
        return found[0] if found else None
    return poll_until(find, what="the tailer's journalctl")


def written(pid: int) -> int:
    """Bytes the process ``pid`` wrote (/proc/PID/io)."""
    io = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    return int(io["wchar"])


def test_journalctl_killed_is_started_again_after_the_last_entry_read(tmp_path, procs, buck):
    m = Mesh(tmp_path, procs, buck)
    write_journal(m.dir / "x.journal", numbered(10))
    t = m.start()
    m.check(set(range(10)))
    os.kill(journalctl_of(t.p.pid), signal.SIGKILL)    # the tailer's own journalctl, by its pid
    poll_until(lambda: "journalctl stopped" in t.output(), what="the tailer to notice journalctl ended")
    write_journal(m.dir / "x.journal", numbered(10, start=10))
    m.check(set(range(20)))
    poll_until(lambda: m.stats().get("journal_restarts") == 1 and m.stats().get("journal_entries") == 20,
               what="one restart, every entry read once")


def test_the_journal_reader_process_killed_loses_and_duplicates_nothing(tmp_path, procs, buck):
    """The journal is parsed and encoded in a worker process; killed in the
    middle of a backlog, the tailer reads on by itself from the last cursor
    it took, and says so."""
    m = Mesh(tmp_path, procs, buck, extra=["--batch-events", "500"])
    write_journal(m.dir / "x.journal", numbered(100_000))
    t = m.start()
    worker = reader_process(t.p.pid)
    poll_until(lambda: m.stats().get("journal_entries", 0) > 0, timeout=60, what="entries read")
    os.kill(worker, signal.SIGKILL)
    poll_until(lambda: "The journal reader process failed" in t.output(), what="the tailer to say so")
    assert len(m.held()[0]) < 100_000, "the kill came after the end: the case proves nothing"
    write_journal(m.dir / "x.journal", numbered(100, start=100_000))
    m.check(set(range(100_100)), timeout=180)
    assert t.alive()
    poll_until(lambda: m.stats().get("journal_entries", 0) >= 100_100, what="the count of entries read going on")


def test_the_journalctl_of_a_journal_reader_process_killed_while_idle_ends_with_it(tmp_path, procs, buck):
    """No journalctl is left behind: even idle (writing nothing, so no broken
    pipe tells it), journalctl --follow watches its output and ends once the
    reader holding the other end is gone."""
    m = Mesh(tmp_path, procs, buck)
    write_journal(m.dir / "x.journal", numbered(10))
    t = m.start()
    m.check(set(range(10)))
    worker = reader_process(t.p.pid)
    journalctl = journalctl_of(worker)
    os.kill(worker, signal.SIGKILL)
    poll_until(lambda: gone_or_zombie(journalctl), what="the worker's journalctl to end with it")
    write_journal(m.dir / "x.journal", numbered(10, start=10))
    m.check(set(range(20)))     # read on by the tailer itself

def test_a_files_line_goes_out_while_a_big_journal_is_read(tmp_path, procs, buck):
    """The journal's backlog is parsed and encoded in a worker process; the
    tailer's loop reads its files on meanwhile."""
    log = tmp_path / "app.log"
    log.write_bytes(b"")
    m = Mesh(tmp_path, procs, buck, extra=["--path", str(log)])
    write_journal(m.dir / "x.journal", numbered(100_000))
    m.start()
    stats = m.b[0][2] / "stats.json"

    def kinds():
        try:
            return {k: v["events"] for k, v in (json.loads(stats.read_text()).get("inputs") or {}).items()}
        except (OSError, ValueError):
            return {}
    poll_until(lambda: kinds().get("journal", 0) > 0, timeout=60, what="the journal's first entries in buck a")
    with open(log, "ab") as f:
        f.write(b"Nov 23 10:00:00 web-1 app[42]: a line written while the journal is read\n")
    got = poll_until(lambda: (k := kinds()).get("file", 0) >= 1 and k, timeout=60, what="the file's line in buck a")
    assert got.get("journal", 0) < 100_000, "the journal was all read first: the case proves nothing"
    m.check(set(range(100_000)), timeout=180)

def test_starting_at_the_end_skips_what_was_there_and_misses_nothing_written_after(tmp_path, procs, buck):
    m = Mesh(tmp_path, procs, buck, extra=["--journal-start-at", "end"])
    write_journal(m.dir / "x.journal", numbered(10))
    t = m.start()
    # The start position is committed at once, before any new entry: a stop now loses nothing.
    poll_until(lambda: ";i=a;" in next(iter(m.positions().values()), {}).get("cursor", ""),
               what="the newest entry's cursor committed")
    t.stop()
    write_journal(m.dir / "x.journal", numbered(5, start=10))     # while the tailer is down
    m.start()
    write_journal(m.dir / "x.journal", numbered(5, start=15))     # while it follows
    m.check(set(range(10, 20)))


def test_without_the_spool_the_cursor_waits_for_a_buck(tmp_path, procs, buck):
    m = Mesh(tmp_path, procs, buck, extra=["--no-spool", "--copies", "1"])
    for proc, _, _ in m.b:
        proc.stop()                                   # no buck takes anything
    write_journal(m.dir / "x.journal", numbered(20))
    t = m.start()
    child = journalctl_of(t.p.pid)
    poll_until(lambda: written(child) > 20 * 300, what="journalctl to write the entries")
    poll_until(lambda: m.stats().get("bucks_connected") == 0, what="the tailer's stats")
    t.stop()
    assert m.positions() == {}, "a cursor was committed with no buck having the entries"
    for proc, _, _ in m.b:
        proc.start()
    m.start()
    poll_until(lambda: m.held()[0].keys() == set(range(20)), timeout=60, what="every entry in a buck")


def test_sighup_applies_new_journal_filters_from_the_cursor(tmp_path, procs, buck):
    m = Mesh(tmp_path, procs, buck)
    conf = tmp_path / "tailer.toml"
    conf.write_text(f'[tailer]\njournal_dir = "{m.dir}"\n')
    m.extra = ["--config", str(conf)]
    write_journal(m.dir / "x.journal", numbered(5, 0, "web.service", "web") + numbered(5, 5, "db.service", "db"))
    t = m.start()
    m.check(set(range(10)))
    conf.write_text(f'[tailer]\njournal_dir = "{m.dir}"\njournal_exclude_units = ["db"]\n')
    t.p.send_signal(signal.SIGHUP)
    poll_until(lambda: t.output().count("Tailer reads") == 2, what="journalctl started again with the new keys")
    write_journal(m.dir / "x.journal", numbered(5, 10, "web.service", "web") + numbered(5, 15, "db.service", "db"))
    m.check(set(range(15)))
    poll_until(lambda: m.stats().get("journal_excluded") == 5, what="the db entries left out")


def test_sighup_with_a_new_environment_sends_the_next_entries_there(tmp_path, procs, buck):
    """The journal's frames are made in its worker: a reload that changes the
    environment starts it again, so no frame keeps the old one."""
    m = Mesh(tmp_path, procs, buck)
    conf = tmp_path / "tailer.toml"
    conf.write_text(f'[tailer]\njournal_dir = "{m.dir}"\nenvironment = "prod"\n')
    write_journal(m.dir / "x.journal", numbered(5))
    args = [a for a in m.args() if a not in ("--env", "prod")] + ["--config", str(conf)]
    t = procs(*args, name="tailer")
    data = m.b[0][2]
    poll_until(lambda: len(buck_events(data, "prod")[0]) >= 5, timeout=60, what="the first entries in prod")
    conf.write_text(f'[tailer]\njournal_dir = "{m.dir}"\nenvironment = "staging"\n')
    t.p.send_signal(signal.SIGHUP)
    poll_until(lambda: t.output().count("Tailer reads") == 2, what="the journal's worker started again")
    write_journal(m.dir / "x.journal", numbered(5, start=5))
    poll_until(lambda: {number_of(e.message) for e in buck_events(data, "staging")[0]} == set(range(5, 10)),
               timeout=60, what="the next entries in staging")
    assert {number_of(e.message) for e in buck_events(data, "prod")[0]} == set(range(5))

def test_a_core_dump_sized_field_is_left_out_and_named_not_a_batch_no_buck_takes(tmp_path, procs, buck):
    m = Mesh(tmp_path, procs, buck, extra=["--max-line-bytes", "65536"])
    small = numbered(1, 0, COREDUMP=bytes(range(256)) * 1024)     # 256 KiB of binary: read whole, then cut
    big = numbered(1, 1, COREDUMP=bytes(range(256)) * 12 * 1024)  # 3 MiB: dropped as it streams by
    long_message = numbered(1, 2)
    long_message[0][-1] = ("MESSAGE", b"entry 00000002 " + b"\x01" * (2 * 1024 * 1024))   # binary, 2 MiB
    write_journal(m.dir / "x.journal", small + big + long_message + numbered(3, 3))
    m.start()
    m.check(set(range(6)))
    events = {number_of(e.message): e for e in buck_events(m.b[0][2])[0]}
    assert events[0].fields["journal_cut"] == {"COREDUMP": 256 * 1024} and "COREDUMP" not in events[0].fields
    assert events[1].fields["journal_cut"] == {"COREDUMP": 3 * 1024 * 1024} and "COREDUMP" not in events[1].fields
    assert events[2].fields["journal_cut"] == {"MESSAGE": 15 + 2 * 1024 * 1024}
    assert events[2].message == (b"entry 00000002 " + b"\x01" * (2 * 1024 * 1024))[:65536]
    assert all("journal_cut" not in events[n].fields for n in (3, 4, 5))


def test_a_journal_file_deleted_while_followed_and_a_new_one_written(tmp_path, procs, buck):
    """As journald's vacuum does: the entries read are kept, the next file is followed."""
    m = Mesh(tmp_path, procs, buck)
    write_journal(m.dir / "x.journal", numbered(10))
    t = m.start()
    m.check(set(range(10)))
    (m.dir / "x.journal").unlink()
    write_journal(m.dir / "y.journal", numbered(10, start=10))
    m.check(set(range(20)))
    assert t.alive()


def test_the_demo_reads_the_machines_journal_when_asked(tmp_path):
    """`make demo` reads the journal by itself when journalctl shows an entry; here it is asked to."""
    r = subprocess.run([sys.executable, "-m", "helios", "demo", "--journal", "--no-web", "--duration", "3",
                        "--dir", str(tmp_path)], capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "and this machine's journal (new entries)" in r.stdout
    log = (tmp_path / "logs" / "tailer.log").read_text()
    assert "Tailer reads the local journal with" in log and "Traceback" not in log
