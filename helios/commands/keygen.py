"""``helios keygen``: CURVE key pairs for the mesh, and HTTP ingest tokens."""

from __future__ import annotations

import sys

import click


@click.command()
@click.argument("name", required=False)
@click.option("--dir", "directory", default="./helios-keys", show_default=True, type=click.Path(file_okay=False),
              help="Where to write: the public key as DIR/NAME.key, the secret one as "
                   "DIR/private/NAME.key_secret (private/ is made mode 0700).")
@click.option("--role", "roles", multiple=True, metavar="ROLE",
              type=click.Choice(["sender", "reader", "porter", "admin"]),
              help="What the key may do at the bucks (repeat for several): sender (push events), reader "
                   "(live feed, list and fetch buckets), porter (reader, and prune and report), admin (all). "
                   "Written in the public key file; without it the key is a sender of every environment.")
@click.option("--env", "-e", "envs", multiple=True, metavar="ENV",
              help="An environment the role applies to (repeat, or comma-separated); '*' (the default "
                   "with --role) for every environment.")
@click.option("--token", "token_env", metavar="ENV",
              help="Instead of a key pair, make a bearer token for the HTTP ingest of environment ENV "
                   "('*': every environment): print it once, and the line for [buck] http_tokens.")
@click.option("--archive", is_flag=True,
              help="The pair seals archives ([porter] archive_public_key): its public key is written "
                   "0600 too, since whoever holds it can seal objects the porters would take.")
def keygen(name: str | None, directory: str, roles: tuple[str, ...], envs: tuple[str, ...],
           token_env: str | None, archive: bool = False) -> None:
    """Make a CURVE key pair NAME (transport encryption, [security] curve),
    or with --token ENV an HTTP ingest token.

    A key pair is two files: NAME.key, the public key (mode 0644), to copy to
    the allow_dir of the bucks it may connect to (or to use as server_key when
    it is the bucks' own); and private/NAME.key_secret (mode 0600, in a
    directory only its owner reads), for [security] secret_key or
    server_secret_key of the process that owns it, and nowhere else. An
    existing key is never overwritten.

    Keys are per host or per service (one for the bucks' server key, one for
    each tailer, porter, web, relay, operator): removing one public key from
    the bucks' allow_dir and sending them SIGHUP shuts out that one holder.

    A token is printed once and never stored: its SHA-256 is what the bucks'
    config holds.

    Each key pair's public file declares what its holder may do at the
    bucks (docs/security.md): --role sender for a tailer or relay (with
    --env, only into those environments), reader for helios web, subscribe
    and operators, porter for the porter, admin for all. Example:
    helios keygen tailer-web1 --role sender --env prod"""
    from helios.errors import HeliosError

    if token_env is not None:
        if roles or envs:
            raise click.UsageError("--role and --env are for key pairs; a token's environment is --token ENV")
        if name is not None:
            raise click.UsageError("give either NAME (a key pair) or --token ENV (a token), not both")
        _token(token_env)
        return
    if name is None:
        raise click.UsageError("give the NAME of the key pair (like buck, tailer-web1, porter), or --token ENV")
    from helios.wire import rights as rights_mod
    from helios.wire.curve import write_keypair

    if envs and not roles:
        raise click.UsageError("--env goes with --role (what the key may do in those environments)")
    rights = None
    if roles:
        try:
            rights = rights_mod.parse_values(" ".join(roles), " ".join(envs) or rights_mod.ALL)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--env") from None
    try:
        public, secret = write_keypair(directory, name, rights)
        if archive:
            import os

            os.chmod(public, 0o600)  # an archive's public key is for the porters only
    except (HeliosError, OSError) as exc:
        click.echo(f"helios: {exc}", err=True)
        sys.exit(1)
    allowed = (rights or rights_mod.DEFAULT).named(public.name).describe()
    click.echo(f"public key: {public}\n"
               f"at the bucks: {allowed}" + ("" if rights else "; give --role (and --env) for a key that "
                                                               "reads or prunes") + "\n"
               f"secret key: {secret} (mode 0600; keep it on the host that uses it)\n"
               "For a buck: [security] server_secret_key = the secret file; everyone else's server_key = "
               "the public file.\n"
               "For any other process: [security] secret_key = the secret file; copy the public file into "
               "the bucks' allow_dir and send them SIGHUP.")


def _token(environment: str) -> None:
    import re

    from helios import tokens

    if environment != "*" and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", environment):
        raise click.BadParameter(f"{environment!r} is not an environment name (or '*' for every one)",
                                 param_hint="--token")
    token = tokens.new_token()
    click.echo(f"token for environment {environment} (shown once; give it to the senders, e.g. [client] token):\n"
               f"  {token}\n"
               f"add its hash to the bucks' [buck] http_tokens:\n"
               f'  "{environment}={tokens.hash_token(token)}"')


COMMANDS = [keygen]
