"""Realistic RFC 3164 log lines, for the demo and the benchmarks.

Lines look like a small fleet's syslog: a handful of hosts, the usual
daemons, messages with ids, addresses and numbers that vary (so compression
ratios are not flattered), about 130 bytes on average.
"""

from __future__ import annotations

import random
import time

HOSTS = [f"web-{i:02d}" for i in range(1, 9)] + [f"db-{i}" for i in range(1, 4)] + ["lb-1", "cache-1"]
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

TEMPLATES = [
    ("sshd[{pid}]", "Accepted publickey for {user} from 10.{a}.{b}.{c} port {port} ssh2: RSA SHA256:{hex}"),
    ("sshd[{pid}]", "Failed password for invalid user {user} from 203.0.{b}.{c} port {port} ssh2"),
    ("sshd[{pid}]", "pam_unix(sshd:session): session closed for user {user}"),
    ("CRON[{pid}]", "({user}) CMD (/usr/local/bin/backup --target s3://bucket-{a}/{hex} --quiet)"),
    ("kernel", "[{n}.{port}] TCP: request_sock_TCP: Possible SYN flooding on port {port}. Sending cookies."),
    ("nginx[{pid}]", "10.{a}.{b}.{c} - - \"GET /api/v1/orders/{n}?page={a} HTTP/1.1\" 200 {port} \"-\" \"curl/8.5\""),
    ("postfix/smtp[{pid}]", "{hex}: to=<{user}@example.org>, relay=mx.example.org[192.0.2.{c}]:25, delay={a}.{b}, status=sent"),
    ("systemd[1]", "Started Session {n} of user {user}; unit session-{n}.scope took {a}ms."),
    ("app[{pid}]", "level=error msg=\"payment declined\" order={n} user={user} amount={a}.{b} trace={hex}"),
]
USERS = ("root", "alice", "bob", "deploy", "backup", "www-data", "carol", "admin")


def _values(rng: random.Random) -> dict[str, object]:
    """The random parts a template is filled with (in one order: a seeded run makes the same lines)."""
    return dict(
        pid=rng.randint(100, 65000), user=rng.choice(USERS), a=rng.randint(0, 255), b=rng.randint(0, 255),
        c=rng.randint(1, 254), port=rng.randint(1024, 65535), hex=f"{rng.getrandbits(48):012x}",
        n=rng.randint(1, 10_000_000),
    )


def _stamp(t: float) -> str:
    """An RFC 3164 timestamp (UTC): ``Mar  4 09:39:40``."""
    tm = time.gmtime(t)
    return f"{MONTHS[tm.tm_mon - 1]} {tm.tm_mday:2d} {tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}"


def rfc3164_line(rng: random.Random, t: float) -> str:
    app, msg = rng.choice(TEMPLATES)
    values = _values(rng)
    stamp = _stamp(t)
    return f"{stamp} {rng.choice(HOSTS)} {app.format(**values)}: {msg.format(**values)}\n"


# The demo's mix: (weight, facility, severity, app, message). Facilities are
# syslog's (kern 0, user 1, mail 2, daemon 3, auth 4, cron 9, local0 16);
# severities 0 emerg .. 7 debug, about as often as a healthy fleet logs them.
DEMO_TEMPLATES = [
    (14, 4, 6, "sshd[{pid}]", "Accepted publickey for {user} from 10.{a}.{b}.{c} port {port} ssh2: RSA SHA256:{hex}"),
    (5, 4, 4, "sshd[{pid}]", "Failed password for invalid user {user} from 203.0.{b}.{c} port {port} ssh2"),
    (8, 4, 6, "sshd[{pid}]", "pam_unix(sshd:session): session closed for user {user}"),
    (6, 9, 6, "CRON[{pid}]", "({user}) CMD (/usr/local/bin/backup --target s3://bucket-{a}/{hex} --quiet)"),
    (2, 0, 4, "kernel", "[{n}.{port}] TCP: request_sock_TCP: Possible SYN flooding on port {port}. Sending cookies."),
    (1, 0, 2, "kernel", "[{n}.{port}] EXT4-fs error (device sda{a}): ext4_find_entry:1463: inode #{n}: "
                        "comm nginx: reading directory lblock 0"),
    (25, 16, 6, "nginx[{pid}]", "10.{a}.{b}.{c} - - \"GET /api/v1/orders/{n}?page={a} HTTP/1.1\" 200 {port} \"-\" \"curl/8.5\""),
    (4, 16, 3, "nginx[{pid}]", "upstream timed out (110: Connection timed out) while reading response header from "
                               "upstream, client: 10.{a}.{b}.{c}, request: \"POST /api/v1/pay HTTP/1.1\""),
    (6, 2, 6, "postfix/smtp[{pid}]", "{hex}: to=<{user}@example.org>, relay=mx.example.org[192.0.2.{c}]:25, delay={a}.{b}, status=sent"),
    (2, 2, 5, "postfix/smtp[{pid}]", "{hex}: to=<{user}@example.net>, status=deferred (connect to mx.example.net: "
                                     "Connection refused)"),
    (6, 3, 6, "systemd[1]", "Started Session {n} of user {user}; unit session-{n}.scope took {a}ms."),
    (8, 1, 6, "app[{pid}]", "level=info msg=\"order placed\" order={n} user={user} amount={a}.{b} trace={hex}"),
    (4, 1, 3, "app[{pid}]", "level=error msg=\"payment declined\" order={n} user={user} amount={a}.{b} trace={hex}"),
    (6, 1, 7, "app[{pid}]", "level=debug msg=\"cache lookup\" key=user:{n} hit={c} took_us={port}"),
    (3, 3, 5, "postgres[{pid}]", "LOG:  checkpoint complete: wrote {a} buffers ({b}.{c}%); sync files={a}"),
    (1, 3, 4, "postgres[{pid}]", "WARNING:  there is already a transaction in progress (user {user}, xid {n})"),
]
_DEMO_WEIGHTS = [t[0] for t in DEMO_TEMPLATES]


def demo_line(rng: random.Random, t: float) -> str:
    """One line of the demo's mix, with its syslog priority (``<PRI>``, so
    every event has a severity): several hosts and apps, mostly info, some
    notices, warnings and errors, now and then a critical one."""
    _, facility, severity, app, msg = rng.choices(DEMO_TEMPLATES, _DEMO_WEIGHTS)[0]
    values = _values(rng)
    stamp = _stamp(t)
    return (f"<{facility * 8 + severity}>{stamp} {rng.choice(HOSTS)} {app.format(**values)}: "
            f"{msg.format(**values)}\n")


def write_file(path, target_bytes: int, seed: int = 1, start: float | None = None) -> int:
    """Write about ``target_bytes`` of lines; returns the number of lines.
    Times advance about one second per 2,000 lines from ``start``."""
    rng = random.Random(seed)
    t = time.time() - 86400 if start is None else start
    lines = 0
    written = 0
    with open(path, "w", encoding="ascii") as out:
        while written < target_bytes:
            block = [rfc3164_line(rng, t + (lines + i) / 2000) for i in range(2000)]
            text = "".join(block)
            out.write(text)
            written += len(text)
            lines += len(block)
    return lines
