"""Severity words and numbers, as logs spell them, mapped to syslog's 0..7.

``LEVEL_WORD`` is the regex text of a level word where a layout puts one
(after the time, in brackets, in a column). It is deliberately closed: a word
that is not a level must not be taken for one, or a message's first word
would become a severity. Single letters (``E``, ``W``, ``I``, ``D``...) are
upper case only.
"""

from __future__ import annotations

from helios.model import SEVERITY_BY_NAME

# Every spelling below, lower-cased, to the syslog number (RFC 5424 numbering).
WORDS: dict[str, int] = dict(SEVERITY_BY_NAME)
WORDS.update({
    "emerg": 0, "emergency": 0, "panic": 0,
    "alert": 1,
    "crit": 2, "critical": 2, "fatal": 2, "ftl": 2, "crt": 2,
    "err": 3, "error": 3, "eror": 3, "erro": 3, "severe": 3, "dpanic": 3,
    "warn": 4, "warning": 4, "wrn": 4, "wrng": 4,
    "notice": 5, "ntc": 5,
    "info": 6, "inf": 6, "information": 6, "informational": 6, "config": 6, "log": 6,
    "debug": 7, "dbg": 7, "dbug": 7, "trace": 7, "trc": 7, "verbose": 7, "vrb": 7,
    "fine": 7, "finer": 7, "finest": 7, "all": 7,
    # One letter (glog, logcat, zap's console, ...).
    "e": 3, "w": 4, "i": 6, "d": 7, "f": 2, "t": 7, "v": 7, "c": 2, "n": 5, "a": 1,
})

# The regex text (bytes) of a level word; the caller wraps it in a group.
LEVEL_WORD = (
    rb"(?:(?i:emerg(?:ency)?|alert|crit(?:ical)?|fatal|err(?:or)?|eror|severe|warn(?:ing)?|wrn"
    rb"|notice|info(?:rmation(?:al)?)?|inf|debug|dbg|trace|trc|verbose|panic|fine(?:r|st)?|config|log)"
    rb"|[EWIDFTV])(?![\w-])"
)

# OpenTelemetry's SeverityNumber: 1-4 trace, 5-8 debug, 9-12 info, 13-16 warn,
# 17-20 error, 21-24 fatal.
_OTEL = (7, 7, 6, 4, 3, 2)
# Bunyan and pino: 10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal.
_BUNYAN = {10: 7, 20: 7, 30: 6, 40: 4, 50: 3, 60: 2}


def of_word(word: bytes | str) -> int | None:
    """b"WARN" -> 4; b"trace3" (Apache 2.4) -> 7; None when not a level."""
    if isinstance(word, bytes):
        word = word.decode("ascii", "replace")
    return WORDS.get(word.strip().lower().rstrip("0123456789") or word)


def of_value(value, otel: bool = False) -> int | None:
    """A JSON value of a level key: a word, a digit string 0..7, a syslog
    number, a Bunyan/pino level, or (``otel``) an OpenTelemetry SeverityNumber."""
    if isinstance(value, str):
        if len(value) == 1 and "0" <= value <= "7":
            return int(value)
        if len(value) > 16:
            return None
        return WORDS.get(value.strip().lower())
    if type(value) is int:
        if otel:
            return _OTEL[(value - 1) // 4] if 1 <= value <= 24 else None
        return value if 0 <= value <= 7 else _BUNYAN.get(value)
    return None
