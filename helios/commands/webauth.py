"""``helios hash-password``: the argon2id hash of a web user's password."""

from __future__ import annotations

import re
import sys

import click


@click.command("hash-password")
@click.option("--user", metavar="NAME", help="Print a whole [web] users entry for this user name.")
@click.option("--env", "-e", "environments", multiple=True, metavar="ENV",
              help="With --user: the user may see only this environment (repeatable; default: all).")
@click.option("--stdin", "from_stdin", is_flag=True,
              help="Read the password from the first line of standard input instead of asking twice.")
def hash_password(user: str | None, environments: tuple[str, ...], from_stdin: bool) -> None:
    """Hash a password for the web app's [web] users with argon2id (PyNaCl,
    its interactive limits: about 64 MiB and 0.1 s a check), and print it.

    The password itself is stored nowhere. Put the line printed with --user
    into [web] users; a user limited with --env sees only the events of those
    environments, on every page and socket."""
    from helios.web.auth import hash_password as make_hash

    if environments and not user:
        raise click.UsageError("--env needs --user (it limits that user)")
    if user is not None and not re.fullmatch(r"[A-Za-z0-9_.@-]{1,64}", user):
        raise click.BadParameter("1..64 letters, digits, '_', '.', '@' or '-'", param_hint="--user")
    for env in environments:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", env):
            raise click.BadParameter(f"{env!r} is not an environment name", param_hint="--env")
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise click.UsageError("the password is empty")
    hashed = make_hash(password)
    if user is None:
        click.echo(hashed)
    else:
        suffix = f":{','.join(environments)}" if environments else ""
        click.echo(f'"{user}:{hashed}{suffix}"')


COMMANDS = [hash_password]
