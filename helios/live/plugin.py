"""The monitoring-plugins conventions: threshold ranges, states, perfdata.

As the Monitoring Plugins development guidelines define them (and Nagios,
Icinga, Naemon and Shinken read them):

Range ``[@]start:end`` -- a threshold is breached when the value is *outside*
the range, or *inside* it with a leading ``@``. ``start`` defaults to 0 and
may be ``~`` (negative infinity); an empty ``end`` is positive infinity; the
ends are inclusive, and start must not be above end::

    10      outside 0..10          alert if < 0 or > 10
    10:     outside 10..inf        alert if < 10
    ~:10    outside -inf..10       alert if > 10
    10:20   outside 10..20         alert if < 10 or > 20
    @10:20  inside 10..20          alert if >= 10 and <= 20

States and exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (bad
arguments, or the thing cannot be checked). Critical is looked at first.

Output: one line, ``SERVICE STATE - text | perfdata``, perfdata being
space-separated ``'label'=value[UOM];[warn];[crit];[min];[max]``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from helios.errors import ConfigError

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATE_NAMES = ("OK", "WARNING", "CRITICAL", "UNKNOWN")

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_RANGE = re.compile(rf"(?P<inside>@)?(?:(?P<start>~|{_NUMBER})?:)?(?P<end>{_NUMBER})?")


@dataclass(frozen=True)
class Range:
    text: str
    start: float
    end: float
    inside: bool

    @classmethod
    def parse(cls, text: str) -> "Range":
        m = _RANGE.fullmatch(text.strip())
        bad = ConfigError([f"threshold: {text!r} is not a range like 10, 10:, ~:10, 10:20 or @10:20"],
                          source="arguments")
        if not text.strip() or not m or (m["start"] is None and m["end"] is None and ":" not in text):
            raise bad
        start = 0.0 if m["start"] is None else -math.inf if m["start"] == "~" else float(m["start"])
        end = math.inf if m["end"] is None else float(m["end"])
        if m["start"] is None and m["end"] is None:
            raise bad  # ":" or "@" alone
        if start > end:
            raise ConfigError([f"threshold: {text!r} starts above its end"], source="arguments")
        return cls(text.strip(), start, end, bool(m["inside"]))

    def alerts(self, value: float) -> bool:
        within = self.start <= value <= self.end
        return within if self.inside else not within


def state(value: float, warning: Range | None, critical: Range | None) -> int:
    if critical is not None and critical.alerts(value):
        return CRITICAL
    if warning is not None and warning.alerts(value):
        return WARNING
    return OK


def _num(v: float | int | None) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def perfdata(label: str, value: float | int, warning: Range | None = None, critical: Range | None = None,
             minimum: float | int | None = None, maximum: float | int | None = None, uom: str = "") -> str:
    """One perfdata item; trailing empty fields are left out, as the guidelines allow."""
    if "'" in label or "=" in label:
        raise ValueError("a perfdata label may not contain ' or =")
    fields = [f"{_num(value)}{uom}", warning.text if warning else "", critical.text if critical else "",
              _num(minimum), _num(maximum)]
    while len(fields) > 1 and fields[-1] == "":
        fields.pop()
    return f"'{label}'=" + ";".join(fields)


def status_line(service: str, code: int, text: str, perf: list[str] = ()) -> str:
    line = f"{service} {STATE_NAMES[code]} - {text}"
    return f"{line} | {' '.join(perf)}" if perf else line
