"""Time zones and timestamp layouts that are not ISO 8601. Pure.

``zone("local")`` is the host's zone with its rules (DST included), read from
``TZ`` or ``/etc/localtime``, not the offset of the moment it was asked.
"""

from __future__ import annotations

import datetime
import os
import re
import zoneinfo

MONTHS = {m: i for i, m in enumerate(
    (b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov", b"dec"), 1)}


def zone(name: str) -> datetime.tzinfo:
    """An IANA zone, ``UTC`` or ``local``; ValueError for an unknown name."""
    if name in ("UTC", "utc", "Z"):
        return datetime.timezone.utc
    if name == "local":
        tz = os.environ.get("TZ", "").lstrip(":")
        if tz:
            try:
                return zoneinfo.ZoneInfo(tz)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
                pass
        try:
            with open("/etc/localtime", "rb") as f:
                return zoneinfo.ZoneInfo.from_file(f, key="localtime")
        except (OSError, ValueError):
            return datetime.datetime.now().astimezone().tzinfo or datetime.timezone.utc
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"{name!r} is not an IANA time zone name (like 'Europe/Paris'), 'UTC' or 'local'") from None


# Layouts of the app-log pass other than ISO 8601, whole seconds (the fraction
# is cut off before, see Parser._app_ns). Each gives (y, mo, d, h, mi, s) with
# y None when the layout has no year.
_FORMS = re.compile(
    rb"(\d{4})/(\d\d?)/(\d\d?)[ T](\d\d?):(\d\d):(\d\d)"          # 2024/03/11 08:15:02 (nginx, glog-like)
    rb"|(\d\d)/(\d\d)/(\d\d) (\d\d):(\d\d):(\d\d)"                # 17/06/09 20:10:40 (log4j yy/MM/dd: Spark)
    rb"|(\d\d)(\d\d)(\d\d) (\d\d)(\d\d)(\d\d)"                    # 081109 203615 (yyMMdd HHmmss: HDFS)
    rb"|(\d{4})(\d\d)(\d\d)-(\d\d?):(\d\d?):(\d\d?)"              # 20171223-22:15:29 (or 22:18:2)
    rb"|(\d\d?)-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d)"       # 11-Mar-2024 08:15:02 (Tomcat)
    rb"|(\d\d)\.(\d\d) (\d\d):(\d\d):(\d\d)")                     # 10.30 16:49:06 (MM.dd, no year)


def other_parts(ts: bytes) -> tuple | None:
    """(y or None, mo, d, h, mi, s) of a non-ISO app-log timestamp, else None."""
    m = _FORMS.fullmatch(ts)
    if m is None:
        return None
    g = m.groups()
    if g[0]:
        return int(g[0]), int(g[1]), int(g[2]), int(g[3]), int(g[4]), int(g[5])
    if g[6]:
        return 2000 + int(g[6]), int(g[7]), int(g[8]), int(g[9]), int(g[10]), int(g[11])
    if g[12]:
        return 2000 + int(g[12]), int(g[13]), int(g[14]), int(g[15]), int(g[16]), int(g[17])
    if g[18]:
        return int(g[18]), int(g[19]), int(g[20]), int(g[21]), int(g[22]), int(g[23])
    if g[24]:
        mo = MONTHS.get(g[25].lower())
        return None if mo is None else (int(g[26]), mo, int(g[24]), int(g[27]), int(g[28]), int(g[29]))
    return None, int(g[30]), int(g[31]), int(g[32]), int(g[33]), int(g[34])


# BSD syslog stamps other than the plain "Mmm dd hh:mm:ss": unpadded day,
# a year (rsyslog accepts "Mar 7 2008 19:06:53"; some devices write it after
# the time: "Mar 7 19:06:53 2008"), a fraction.
_BSD = re.compile(rb"([A-Za-z]{3}) +(\d{1,2})(?: (\d{4}))? (\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?: (20\d\d))?")


def bsd_parts(ts: bytes) -> tuple | None:
    """(y or None, mo, d, h, mi, s, frac ns) of a BSD syslog stamp."""
    m = _BSD.fullmatch(ts)
    if m is None:
        return None
    mon, d, y, h, mi, s, frac, y_after = m.groups()
    y = y or y_after
    mo = MONTHS.get(mon.lower())
    if mo is None:
        return None
    return (int(y) if y else None, mo, int(d), int(h), int(mi), int(s),
            int(frac.ljust(9, b"0")) if frac else 0)


def epoch_ns(text: bytes, unit: int) -> int | None:
    """b"1709964000.123" in units of ``unit`` ns (1e9 for seconds) -> ns,
    exactly (no float rounding); None when it is not a number."""
    whole, _, frac = text.strip().partition(b".")
    neg = whole[:1] == b"-"
    if neg:
        whole = whole[1:]
    if not whole.isdigit() or (frac and not frac.isdigit()):
        return None
    digits = len(str(unit)) - 1          # 1e9 -> 9 fraction digits make whole ns
    ns = int(whole) * unit + (int(frac[:digits].ljust(digits, b"0")) if frac and digits else 0)
    return -ns if neg else ns
