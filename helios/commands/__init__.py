"""Commands that live in modules of their own, one module per command or group.

Each module here defines its click commands and lists them in ``COMMANDS``;
``register`` adds every one to the ``helios`` group, so adding a command never
means editing ``helios.cli``. Modules take their shared plumbing (config
loading, flags, running a service) from ``helios.commands.common`` and never
import ``helios.cli``, which imports them. Modules import what their command
runs inside the command function, so that ``helios --help`` stays quick.
"""

from __future__ import annotations

import importlib
import pkgutil

import click


def register(group: click.Group) -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for command in getattr(module, "COMMANDS", ()):
            group.add_command(command)
