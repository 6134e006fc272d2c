"""What one browser asked to see: a filter, checked and compiled.

A browser sends its filter as a JSON object; everything in it is untrusted.
``Filter.parse`` checks every field and raises ``FilterError`` with a
sentence the page shows as it is; a session keeps its old filter until a new
one is valid. Fields (all optional)::

    environment, host, app   exact names; several separated by commas or spaces
    severity                 "" (any), or a name or number 0..7: that severity
                             and more severe (lines of unknown severity are
                             then not shown)
    text                     a substring, or a regular expression when "regex"
    regex                    true: ``text`` is an RE2 regular expression
    ignore_case              true (default): case-insensitive text match

Regular expressions are compiled with RE2 (google-re2), not Python's ``re``:
RE2 matches in time linear in the line, so no pattern typed in a browser can
make the server spin on a line (catastrophic backtracking). RE2 has no
backreferences or lookaround; such a pattern is refused with RE2's reason.

A filter also says which live topics it needs (``prefixes``), so the web
process subscribes to no more than its browsers want (see
``helios.wire.live`` for the topic layout).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any, Callable

import re2

from helios.errors import FilterError
from helios.model import INVENTORY_APP, SEVERITIES, SEVERITY_BY_NAME
from helios.web.lines import Line
from helios.wire import live

MAX_TEXT = 1000      # characters of a text filter
MAX_NAMES = 50       # names in one environment/host/app field
MAX_PREFIXES = 64    # topic subscriptions one filter may ask for
_SPLIT = re.compile(r"[,\s]+")
_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would print its parse errors on stderr


@dataclass(frozen=True)
class Filter:
    environments: frozenset[str] = frozenset()
    hosts: frozenset[str] = frozenset()
    apps: frozenset[str] = frozenset()
    severity: int | None = None  # show this and more severe (lower numbers)
    text: str = ""
    regex: bool = False
    ignore_case: bool = True

    @classmethod
    def parse(cls, spec: Any) -> "Filter":
        if spec is None:
            return cls()
        if not isinstance(spec, dict):
            raise FilterError("a filter must be an object of fields")
        unknown = set(spec) - {"environment", "host", "app", "severity", "text", "regex", "ignore_case"}
        if unknown:
            raise FilterError(f"unknown filter field(s): {', '.join(sorted(map(str, unknown)))}")
        f = cls(
            environments=_names(spec, "environment"),
            hosts=_names(spec, "host"),
            apps=_names(spec, "app"),
            severity=_severity(spec.get("severity")),
            text=_text(spec.get("text")),
            regex=_flag(spec, "regex", False),
            ignore_case=_flag(spec, "ignore_case", True),
        )
        f.matcher()  # compile now, so a bad regex is refused now
        return f

    def matcher(self) -> Callable[[Line], bool]:
        """A function that says whether a line passes; built once per filter."""
        envs, hosts, apps, sev = self.environments, self.hosts, self.apps, self.severity
        text = _text_matcher(self.text, self.regex, self.ignore_case)

        def match(line: Line) -> bool:
            if envs and line.environment not in envs:
                return False
            if hosts and line.host not in hosts:
                return False
            if apps and line.app not in apps or line.app == INVENTORY_APP and not apps:
                return False  # inventory records only when their app is asked for
            if sev is not None and (line.severity is None or line.severity > sev):
                return False
            return text is None or text(line.text)

        return match

    def prefixes(self) -> list[bytes]:
        """Live topic prefixes that cover every line this filter can pass:
        as long as they can be made, and at most MAX_PREFIXES of them."""
        levels: list[list[bytes] | None] = [
            [e.encode() for e in sorted(self.environments)] or None,
            [a.encode() for a in sorted(self.apps)] or None,
            None if self.severity is None else [live.severity_char(s) for s in range(self.severity + 1)],
            [h.encode() for h in sorted(self.hosts)] or None,
        ]
        out = [b""]
        for level in levels:
            if level is None or len(out) * len(level) > MAX_PREFIXES:
                break
            out = [p + part + live.SEP for p, part in itertools.product(out, level)]
        return out

    def describe(self) -> dict:
        """The filter as the page shows it back (normalised)."""
        return {
            "environment": ", ".join(sorted(self.environments)),
            "host": ", ".join(sorted(self.hosts)),
            "app": ", ".join(sorted(self.apps)),
            "severity": "" if self.severity is None else SEVERITIES[self.severity],
            "text": self.text, "regex": self.regex, "ignore_case": self.ignore_case,
        }


def _names(spec: dict, key: str) -> frozenset[str]:
    value = spec.get(key) or ""
    if not isinstance(value, str):
        raise FilterError(f"{key}: must be text, names separated by commas")
    if len(value) > MAX_TEXT:
        raise FilterError(f"{key}: at most {MAX_TEXT} characters")
    names = frozenset(n for n in _SPLIT.split(value.strip()) if n)
    if len(names) > MAX_NAMES:
        raise FilterError(f"{key}: at most {MAX_NAMES} names")
    if any("\x00" in n for n in names):
        raise FilterError(f"{key}: a name cannot contain a NUL character")
    return names


def _severity(value: Any) -> int | None:
    if value is None or value == "" or value == "any":
        return None
    if isinstance(value, bool):
        raise FilterError("severity: must be a name (like warning) or a number 0..7")
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        n = int(value)
        if 0 <= n <= 7:
            return n
        raise FilterError(f"severity: {n} is not 0 (emerg) .. 7 (debug)")
    if isinstance(value, str) and value.strip().lower() in SEVERITY_BY_NAME:
        return SEVERITY_BY_NAME[value.strip().lower()]
    raise FilterError(f"severity: {str(value)[:40]!r} is not one of {', '.join(SEVERITIES)} or 0..7")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise FilterError("text: must be text")
    if len(value) > MAX_TEXT:
        raise FilterError(f"text: at most {MAX_TEXT} characters")
    return value


def _flag(spec: dict, key: str, default: bool) -> bool:
    value = spec.get(key, default)
    if not isinstance(value, bool):
        raise FilterError(f"{key}: must be true or false")
    return value


def _text_matcher(text: str, regex: bool, ignore_case: bool) -> Callable[[str], bool] | None:
    if not text:
        return None
    if not regex:
        if not ignore_case:
            return lambda s: text in s
        folded = text.casefold()
        if folded.isascii():
            # Cheaper than casefolding every line, and the same answer for ASCII needles
            # (a non-ASCII letter never folds to an ASCII one, except for the Kelvin
            # sign and the long s, which a substring search can live with).
            lowered = folded.lower()
            return lambda s: lowered in s.lower()
        return lambda s: folded in s.casefold()
    options = re2.Options()
    options.log_errors = False
    options.case_sensitive = not ignore_case
    try:
        rx = re2.compile(text, options)
    except re2.error as exc:
        reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise FilterError(f"text: not a valid regular expression: {reason}") from None
    search = rx.search
    return lambda s: search(s) is not None
