"""Follow the systemd journal through ``journalctl -o export --follow``.

As Vector does: a ``journalctl`` child process writes the export format
(``helios.tail.journal``) to a pipe that a ``JournalReader`` reads without
blocking, a turn at a time. The tailer runs the reader in a worker process
(``JournalWorker``), which parses and encodes the entries into frames; its
loop takes whole frames and stays with its files. Where it starts:

- after the committed cursor (``--after-cursor``), when the positions have one;
- else, with ``start_at = "beginning"``, at the oldest entry (``--no-tail``);
- else after the newest entry there is now: its cursor is asked first
  (``-n 1``), so an entry written between this start and the first one read
  is not skipped however soon the tailer stops.

Entries read are *read*, not *committed*: the tailer commits a cursor (into
its positions) only once the events before it are in the spool, so a crash
reads again from the committed cursor and the ids (``helios.tail.journal``)
make the second copy a duplicate the porter drops.

Included units and identifiers are journalctl matches (what is left out
never leaves journalctl); excluded ones are dropped here after reading,
journalctl having no negative match. If journalctl ends (killed, journal
files vacuumed under it), it is started again after the last cursor read,
at most once a second, and the tailer says so. A journalctl that cannot be
run, or a journal directory that cannot be read, stops the tailer at start
with a sentence saying which (``ServiceError``).
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import msgpack

from helios import codec
from helios.errors import ServiceError
from helios.gctune import tune_gc
from helios.tail import journal
from helios.workerprocs import Pipe, close_workers, start_worker

log = logging.getLogger(__name__)

READ_LIMIT = 1024 * 1024   # bytes of export format read per turn
PIPE_BYTES = 1024 * 1024   # what an unprivileged process may ask (/proc/sys/fs/pipe-max-size)
RESTART_S = 1.0
RETRY_S = 30.0      # between tries to run a journalctl that could not be run
STDERR_LINES = 20   # journalctl's stderr lines logged per start of it


def source_name(directory: str) -> str:
    """The events' ``source`` and the positions' key: "journal" for the
    local journal, "journal:/abs/dir" for a directory of journal files."""
    return "journal:" + os.path.abspath(directory) if directory else "journal"


def check(directory: str, command: str = "journalctl") -> str:
    """The journalctl to run; ``ServiceError`` when it cannot be, or when the
    directory cannot be read."""
    exe = shutil.which(command)
    if exe is None:
        raise ServiceError(f"cannot read the systemd journal: {command} is not installed or not on PATH "
                           "(on Debian it is in the package systemd)")
    if directory:
        d = Path(directory)
        try:
            names = os.listdir(d)
        except OSError as exc:
            raise ServiceError(f"cannot read the journal directory {directory}: {exc.strerror or exc}") from None
        for name in names:
            if name.endswith((".journal", ".journal~")):
                try:
                    with open(d / name, "rb"):
                        pass
                except OSError as exc:
                    raise ServiceError(f"cannot read the journal file {d / name}: {exc.strerror or exc}") from None
    return exe


class JournalReader:
    def __init__(self, directory: str, saved: dict, start_at: str, filter: journal.Filter,
                 host: str, app: str, command: str = "journalctl", max_value: int = journal.MAX_VALUE,
                 environment: str = "", batch_events: int = 500, run: bool = True) -> None:
        self.directory = directory
        self.environment, self.batch_events = environment, batch_events
        self.exe = check(directory, command)
        self.filter = filter
        self.max_value = max_value
        self.host, self.app = host, app
        self.source = source_name(directory)
        cursor = saved.get("cursor", "")
        self.read_cursor = cursor          # the cursor of the last entry read (committed or not)
        # seqnum id -> last seqnum sent (the audit's spans: an excluded entry is not sent, so its
        # seqnum stays in the span of the next one sent)
        self.after: dict[str, int] = dict(saved.get("after", {}))
        self.first: dict[str, int] = dict(saved.get("first", {}))   # seqnum id -> first seqnum sent
        if cursor:
            try:
                journal.parse_cursor(cursor)
            except ValueError:
                log.warning("The saved journal cursor %r is not one; the journal is read from its beginning.",
                            cursor[:120])
                self.read_cursor = ""
        elif start_at == "end":
            self.read_cursor = self.newest_cursor()
        self.proc: subprocess.Popen | None = None
        self.buf = b""
        self.restart_at = 0.0
        self.counts = {"entries": 0, "excluded": 0, "bytes": 0, "errors": 0, "restarts": 0}
        if run:     # (not: where to start is all that is asked, for a worker to start there)
            self.start()

    def base_args(self) -> list[str]:
        args = [self.exe, "-o", "export", "--no-pager"]
        if self.directory:
            args.append(f"--directory={self.directory}")
        return args

    def newest_cursor(self) -> str:
        """The cursor of the newest entry now ("" when there is none)."""
        try:
            done = subprocess.run(self.base_args() + ["-n", "1"], capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ServiceError(f"cannot run {self.exe}: {exc}") from None
        if done.returncode != 0:   # not "from the beginning" instead: that could be months of entries
            why = done.stderr.decode(errors="replace").strip().replace("\n", "; ")
            raise ServiceError(f"cannot find the newest journal entry ({why or f'exit status {done.returncode}'})")
        entries, _ = journal.parse(done.stdout, final=True)
        for name, value in entries[-1] if entries else []:
            if name == "__CURSOR":
                c = journal.parse_cursor(value.decode("ascii", "replace"))
                self.after[c.seqnum_id] = c.seqnum
                self.first[c.seqnum_id] = c.seqnum + 1   # what came before is not this tailer's
                return c.text
        return ""

    def command(self) -> list[str]:
        args = self.base_args() + ["--follow", "--no-tail"]
        if self.read_cursor:
            args.append(f"--after-cursor={self.read_cursor}")
        return args + self.filter.matches()

    def start(self) -> None:
        self.buf = b""
        self.skip = 0   # bytes of a dropped value still to come (drop_oversized)
        try:
            self.proc = subprocess.Popen(self.command(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         stdin=subprocess.DEVNULL)
        except OSError as exc:
            raise ServiceError(f"cannot run {self.exe}: {exc}") from None
        for f in (self.proc.stdout, self.proc.stderr):
            fl = fcntl.fcntl(f.fileno(), fcntl.F_GETFL)
            fcntl.fcntl(f.fileno(), fcntl.F_SETFL, fl | os.O_NONBLOCK)
        try:
            # A bigger pipe: journalctl writes a backlog on while the tailer spools and sends.
            fcntl.fcntl(self.proc.stdout.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_BYTES)
        except OSError:
            pass  # the default 64 KiB: slower on a backlog, as correct
        self.stderr = b""
        self.stderr_lines = 0

    def fileno(self) -> int | None:
        """journalctl's output pipe, to wait on with other descriptors (None while it is not running)."""
        proc = getattr(self, "proc", None)
        return proc.stdout.fileno() if proc is not None and proc.stdout is not None else None

    def position(self) -> dict:
        """What the positions keep: where to start again and the audit's spans."""
        return {"cursor": self.read_cursor, "after": dict(self.after), "first": dict(self.first)}

    def inventory(self, position: dict) -> list[tuple[str, SimpleNamespace]]:
        """(identity hex, what ``Tailer.send_inventory`` reads of a file's
        position) per numbering of a committed ``position``: seqnums
        [first, last sent + 1) were read; the audit finds any no buck holds."""
        return [(journal.series_key(sid).hex(),
                 SimpleNamespace(paths=[self.source], first=position.get("first", {}).get(sid, last + 1), end="",
                                 detail="", size=last + 1, offset=last + 1))
                for sid, last in position.get("after", {}).items()]

    def read(self, received: int, limit: int = READ_LIMIT) -> tuple[list[tuple], str, bool]:
        """(event rows, cursor of the last entry read, more waiting?). The
        cursor is that of the last entry read even when it was excluded."""
        if self.proc is None:
            if time.monotonic() < self.restart_at:
                return [], self.read_cursor, False
            try:
                self.start()
            except ServiceError as exc:   # journalctl removed under a running tailer, say
                self.counts["errors"] += 1
                log.error("%s; the journal is not read, tried again in %.0f s.", exc, RETRY_S)
                self.restart_at = time.monotonic() + RETRY_S
                return [], self.read_cursor, False
        parts, total, eof = [], 0, False
        fd = self.proc.stdout.fileno()
        while total < limit:
            try:
                part = os.read(fd, limit - total)
            except BlockingIOError:
                break
            if not part:
                eof = True
                break
            parts.append(part)
            total += len(part)
        self.drain_stderr()
        if eof and not parts:
            self.ended()
            return [], self.read_cursor, False
        if not parts:
            return [], self.read_cursor, False
        data = b"".join(parts)
        self.counts["bytes"] += len(data)
        if self.skip:   # the rest of a value too long to carry streams by
            n = min(self.skip, len(data))
            self.skip -= n
            data = data[n:]
        self.buf += data
        rows: list[tuple] = []
        while True:
            t = journal.take(self.buf, received, self.host, self.app, self.source, self.filter, self.after,
                             self.first, self.max_value)
            rows += t.rows
            self.buf = self.buf[t.used:]
            if t.cursor is not None:
                self.read_cursor = t.cursor
            self.counts["excluded"] += t.excluded
            self.counts["errors"] += t.errors
            if t.error is not None:
                # journalctl wrote something else: start it again after the last good entry
                # (the rows before it are sent and their cursor committed as usual).
                self.counts["errors"] += 1
                log.error("journalctl wrote something that is not the export format (%s); it is started again "
                          "after the last entry read.", t.error)
                self.stop()
                self.restart_at = time.monotonic() + RESTART_S
                self.counts["entries"] += len(rows)
                return rows, self.read_cursor, False
            if not self.drop_oversized():
                break
        self.counts["entries"] += len(rows)
        return rows, self.read_cursor, True   # more may wait: the next turn looks without sleeping

    def read_frames(self, received: int) -> tuple[list[bytes], list[int], str, bool]:
        """``read``, the rows in batch frames: (frames, their events, cursor, more waiting?)."""
        rows, cursor, more = self.read(received)
        frames, sizes = frames_of(rows, self.environment, self.host, self.batch_events)
        return frames, sizes, cursor, more

    def drop_oversized(self) -> bool:
        """If the entry being read has a value longer than ``max_value``, put
        a ``journal.CUT_PREFIX`` field in its place (a MESSAGE keeps its first
        ``max_value`` bytes) and drop the rest as it arrives (``skip``), so a
        core dump is never held whole. True if the buffer changed."""
        found = journal.oversized(self.buf, self.max_value)
        if found is None:
            return False
        start, vstart, name, size = found
        keep = self.buf[:start]
        if name == "MESSAGE":
            if len(self.buf) < vstart + self.max_value:
                return False   # its first max_value bytes are kept: wait for them
            keep += journal.binary_field("MESSAGE", self.buf[vstart:vstart + self.max_value])
        keep += f"{journal.CUT_PREFIX}{name}={size}\n".encode()
        taken = min(len(self.buf) - vstart, size + 1)   # the value and its newline
        self.skip = size + 1 - taken
        self.buf = keep + self.buf[vstart + taken:]
        return True

    def drain_stderr(self) -> None:
        """Read what journalctl says on stderr (never let it block on a full
        pipe); each new line is logged, at most ``STDERR_LINES`` per start
        (its hints matter: "you are currently not seeing messages from other
        users and the system")."""
        try:
            while chunk := os.read(self.proc.stderr.fileno(), 65536):
                self.stderr = (self.stderr + chunk)[-4096:]
                for line in chunk.decode(errors="replace").splitlines():
                    if line.strip() and self.stderr_lines < STDERR_LINES:
                        self.stderr_lines += 1
                        log.warning("journalctl: %s", line.strip()[:500])
        except (BlockingIOError, OSError):
            pass

    def ended(self) -> None:
        """journalctl closed its output: say why, start it again in a while."""
        self.drain_stderr()
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:   # closed its output but runs on: not a reader any more
            self.proc.kill()
            code = self.proc.wait()
        why = self.stderr.decode(errors="replace").strip().replace("\n", "; ") or f"exit status {code}"
        self.counts["errors"] += 1
        self.counts["restarts"] += 1
        log.warning("journalctl stopped (%s); it is started again after the last entry read.", why)
        self.close_proc()
        self.restart_at = time.monotonic() + RESTART_S

    def close_proc(self) -> None:
        if self.proc is not None:
            for f in (self.proc.stdout, self.proc.stderr):
                f.close()
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.close_proc()

    close = stop


def frames_of(rows: list[tuple], environment: str, host: str, n: int) -> tuple[list[bytes], list[int]]:
    """Journal event rows in batch frames of at most ``n`` events, and each frame's count."""
    frames, sizes = [], []
    for i in range(0, len(rows), n):
        part = rows[i:i + n]
        frames.append(codec.encode_rows(environment, host, part, min(r[1] for r in part), max(r[1] for r in part),
                                        input="journal"))
        sizes.append(len(part))
    return frames, sizes


# --- in a worker process ---

class JournalWorker:
    """A ``JournalReader`` in a worker process (``helios.workerprocs``): there
    journalctl's output is parsed, turned into events and encoded into frames
    (about nine tenths of the journal's CPU in the tailer: bench/journal_ingest.py),
    and the tailer's loop takes whole frames with the position they reach.

    Same guarantees as in-process: the worker never commits anything; each
    message is (frames, their events, the position after them), and the
    tailer commits that position once it spooled those frames. Where to
    start (the committed cursor, or the newest entry for ``start_at = "end"``)
    is found here, before the worker starts, so a journalctl that cannot run
    stops the tailer at start with its sentence. The worker ends when its
    pipe does (the tailer closed it, or died: a kill -9 loses only what was
    not committed, read again at the next start); it stops its journalctl
    then. A worker that fails is not a loss: the tailer starts journalctl
    again itself after the last cursor it took, and reads the journal in
    its own process from then on, and says so."""

    def __init__(self, directory: str, saved: dict, start_at: str, filter: journal.Filter,
                 host: str, app: str, command: str = "journalctl", max_value: int = journal.MAX_VALUE,
                 environment: str = "", batch_events: int = 500) -> None:
        self.args = dict(directory=directory, host=host, app=app, max_value=max_value, environment=environment,
                         batch_events=batch_events)
        # Where to start, found here; and the reader this process falls back to.
        self.reader = JournalReader(directory, saved, start_at, filter, host, app, command, max_value, environment,
                                    batch_events, run=False)
        self.source, self.exe = self.reader.source, self.reader.exe
        self.pos = self.reader.position()
        self.counts = dict(self.reader.counts)
        self.local: JournalReader | None = None
        self.conn: Pipe | None = None
        self.proc = None
        args = {**self.args, "filter": dataclasses.asdict(filter), "command": self.exe, "saved": self.pos,
                "log_level": logging.getLogger().getEffectiveLevel()}
        try:
            self.conn, self.proc = start_worker("helios.tail.journal_reader", json.dumps(args))
        except OSError as exc:
            self.lost(exc)

    def command(self) -> list[str]:
        return self.reader.command()

    def inventory(self, position: dict) -> list[tuple[str, SimpleNamespace]]:
        return self.reader.inventory(position)

    def position(self) -> dict:
        return self.local.position() if self.local is not None else self.pos

    def fileno(self) -> int | None:
        return self.conn.fileno() if self.conn is not None else self.local.fileno() if self.local else None

    def read_frames(self, received: int) -> tuple[list[bytes], list[int], str, bool]:
        """What the worker sent since, a message a turn (never waits)."""
        if self.conn is None:
            frames, sizes, cursor, more = self.local.read_frames(received)
            self.counts = self.local.counts
            return frames, sizes, cursor, more
        if not self.conn.ready():
            return [], [], self.pos["cursor"], False
        try:
            frames, sizes, self.pos, self.counts = msgpack.unpackb(self.conn.recv(), raw=False)
        except (EOFError, OSError, ValueError) as exc:
            self.lost(exc)
            return [], [], self.pos["cursor"], False
        return frames, sizes, self.pos["cursor"], True

    def lost(self, exc: BaseException) -> None:
        log.error("The journal reader process failed (%s); the tailer reads the journal itself from now on, "
                  "after the last entry it took.", exc or type(exc).__name__)
        self.close()
        r = self.reader     # journalctl started by its first read (and tried again later if it cannot be)
        r.read_cursor, r.after, r.first = self.pos["cursor"], dict(self.pos["after"]), dict(self.pos["first"])
        r.counts, r.restart_at = dict(self.counts), 0.0
        self.local = r

    def close(self) -> None:
        if self.conn is not None:
            close_workers([self.conn], [self.proc])
            self.conn = self.proc = None
        if self.local is not None:
            self.local.close()

    stop = close


def _work(pipe: Pipe, a: dict) -> None:
    """A worker's life: read the journal, send frames and where they end, until the pipe closes."""
    logging.basicConfig(level=a["log_level"], stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        reader = JournalReader(a["directory"], a["saved"], "beginning", journal.Filter(**{
            k: tuple(v) for k, v in a["filter"].items()}), a["host"], a["app"], a["command"], a["max_value"],
            a["environment"], a["batch_events"])
    except ServiceError as exc:   # (checked by the tailer a moment ago: gone since) it reads itself, and says why
        log.error("The journal reader process cannot start: %s.", exc)
        return
    tune_gc()
    sent = reader.position()["cursor"]
    try:
        while True:
            frames, sizes, cursor, more = reader.read_frames(time.time_ns())
            if frames or cursor != sent:
                pipe.send(msgpack.packb([frames, sizes, reader.position(), reader.counts], use_bin_type=True))
                sent = cursor
            if more:
                if pipe.ready():
                    return      # (the tailer never writes: readable is the pipe's end)
                continue
            fd = reader.fileno()
            if fd is None:      # journalctl ended: started again once restart_at is reached
                wait = max(0.0, min(RETRY_S, reader.restart_at - time.monotonic()))
                ready, _, _ = select.select([pipe], [], [], wait)
            else:
                ready, _, _ = select.select([pipe, fd], [], [])
            if pipe in ready:
                return
    except (OSError, EOFError):   # the tailer let go of this worker
        return
    finally:
        reader.close()


if __name__ == "__main__":
    # A worker: the tailer and its process group get SIGINT and SIGTERM; the
    # tailer decides when its worker is done, by closing its pipe.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _work(Pipe.of_fd(int(sys.argv[1])), json.loads(sys.argv[2]))
