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


def rfc3164_line(rng: random.Random, t: float) -> str:
    app, msg = rng.choice(TEMPLATES)
    values = dict(
        pid=rng.randint(100, 65000), user=rng.choice(USERS), a=rng.randint(0, 255), b=rng.randint(0, 255),
        c=rng.randint(1, 254), port=rng.randint(1024, 65535), hex=f"{rng.getrandbits(48):012x}",
        n=rng.randint(1, 10_000_000),
    )
    tm = time.gmtime(t)
    stamp = f"{MONTHS[tm.tm_mon - 1]} {tm.tm_mday:2d} {tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}"
    return f"{stamp} {rng.choice(HOSTS)} {app.format(**values)}: {msg.format(**values)}\n"


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
