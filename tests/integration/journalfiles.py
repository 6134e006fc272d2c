"""Real journal files for the journal tests: export-format input written by
``helios.tail.journal.serialize`` and turned into a journal file by Debian's
``systemd-journal-remote`` (read back by journalctl, as the tailer does)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from helios.tail.journal import serialize

JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"
BOOT = b"0123456789abcdef0123456789abcdef"


def numbered(n: int, start: int = 0, unit: str = "app.service", ident: str = "app", **extra: bytes) -> list:
    """``n`` entries "entry NUMBER" of one unit and identifier, a microsecond apart."""
    out = []
    for i in range(start, start + n):
        e = [("__REALTIME_TIMESTAMP", b"%d" % (1_700_000_000_000_000 + i)),
             ("__MONOTONIC_TIMESTAMP", b"%d" % (1_000_000 + i)), ("_BOOT_ID", BOOT),
             ("_HOSTNAME", b"web-1"), ("_SYSTEMD_UNIT", unit.encode()), ("SYSLOG_IDENTIFIER", ident.encode()),
             ("PRIORITY", b"6"), ("_PID", b"4242"), ("MESSAGE", b"entry %08d" % i)]
        out.append(e + list(extra.items()))
    return out


def write_journal(path: Path, entries: list) -> Path:
    """Write ``entries`` into the journal file ``path`` (its name must end in
    .journal), appending if it exists."""
    export = path.with_name(path.name + ".export")
    export.write_bytes(serialize(entries))
    r = subprocess.run([JOURNAL_REMOTE, f"--output={path}", str(export)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    export.unlink()
    return path


def number_of(message: bytes) -> int | None:
    return int(message[6:14]) if message.startswith(b"entry ") else None
