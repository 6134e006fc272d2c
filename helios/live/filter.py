"""What a live subscriber wants: environments, apps, a severity, hosts and
substrings, as ZeroMQ prefix subscriptions plus a final check per event.

The topic layout (``helios.wire.live``) is ENVIRONMENT, APP, SEVERITY, HOST.
A filter subscribes to the cartesian product of its leading constrained
levels: ``--env prod --app sshd --app nginx --severity err`` becomes the 8
prefixes ``prod/sshd/0/`` .. ``prod/nginx/3/``, so the bucks send only those
events. The first unconstrained level ends the prefix (a host filter without
an app subscribes to the environment and checks hosts here), and so does a
product that would exceed ``MAX_PREFIXES``. ``match`` then checks every
constraint on each decoded event, so a wider subscription never lets a wrong
event through.

A severity filter means "this severe or worse", as syslog selectors do
(``err`` is emerg..err); events of unknown severity pass only when no
severity is asked for. The tailers' inventory records (app
``helios-inventory``) pass only a filter that names their app.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from helios.errors import ConfigError
from helios.model import INVENTORY_APP, SEVERITY_BY_NAME, Event, severity_name
from helios.wire import live

MAX_PREFIXES = 1000


def parse_severity(text: str) -> int:
    """A severity by syslog name (or common spelling) or number 0..7."""
    t = text.strip().lower()
    if t.isdigit() and 0 <= int(t) <= 7:
        return int(t)
    if t in SEVERITY_BY_NAME:
        return SEVERITY_BY_NAME[t]
    raise ConfigError([f"severity: {text!r} is not a severity (emerg, alert, crit, err, warning, "
                       "notice, info, debug, or 0..7)"], source="filter")


@dataclass(frozen=True)
class Filter:
    environments: tuple[str, ...] = ()
    apps: tuple[str, ...] = ()
    severity: int | None = None          # this severe or worse (0 is the most severe)
    hosts: tuple[str, ...] = ()
    contains: tuple[bytes, ...] = ()     # every one must occur in the message

    def prefixes(self) -> list[bytes]:
        levels = [
            [e.encode() for e in self.environments],
            [a.encode() for a in self.apps],
            [] if self.severity is None else [live.severity_char(s) for s in range(self.severity + 1)],
            [h.encode() for h in self.hosts],
        ]
        out = [b""]
        for level in levels:
            if not level or len(out) * len(level) > MAX_PREFIXES:
                break
            out = [p + part + live.SEP for p, part in itertools.product(out, level)]
        return sorted(set(out))

    def match(self, e: Event) -> bool:
        if self.environments and e.environment not in self.environments:
            return False
        if self.apps and e.app not in self.apps or e.app == INVENTORY_APP and not self.apps:
            return False
        if self.severity is not None and (e.severity is None or e.severity > self.severity):
            return False
        if self.hosts and e.host not in self.hosts:
            return False
        message = e.message
        return all(c in message for c in self.contains)

    def describe(self) -> str:
        """The filter in words, for outputs like the check's status line."""
        parts = []
        for name, values in (("env", self.environments), ("app", self.apps), ("host", self.hosts)):
            if values:
                parts.append(f"{name}={','.join(values)}")
        if self.severity is not None:
            parts.append(f"severity<={severity_name(self.severity)}")
        parts += [f"contains={c.decode(errors='replace')!r}" for c in self.contains]
        return " ".join(parts) or "all events"
