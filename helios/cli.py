"""``helios``: the services and the operator tools.

This module only assembles the ``helios`` group: every command lives in a
module of ``helios.commands`` (one per command or command group), and the
plumbing they share (config loading, flags, running a service, exit codes)
in ``helios.commands.common``. Nothing under ``helios.commands`` imports
this module.
"""

from __future__ import annotations

import sys

from helios.commands import register
from helios.commands.common import make_group

cli = make_group()
register(cli)


def main() -> None:
    cli(prog_name="helios")


def buck_main() -> None:
    """``helios-buck``: the same as ``helios buck``."""
    cli(["buck", *sys.argv[1:]], prog_name="helios")


def tailer_main() -> None:
    """``helios-tailer``: the same as ``helios tailer``."""
    cli(["tailer", *sys.argv[1:]], prog_name="helios")


if __name__ == "__main__":
    main()
