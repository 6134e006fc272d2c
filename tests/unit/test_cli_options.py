"""The flags of every command, walked from the ``helios`` group: one meaning
per short option, one name per idea, -o for every output format, and every
command that talks to a buck takes its one address (--buck)."""

from collections import defaultdict

import click
import pytest

from helios.cli import cli
from helios.commands.common import ROLE_FLAGS

# The one documented exception (README, "Short options"): `helios check` is
# a monitoring plugin, and the monitoring-plugins guidelines make -c its
# critical range (as -w is its warning one). Its config file is --config.
PLUGIN_SHORTS = {("helios check", "-c"): "--critical"}
# One idea, two names, on purpose: rebuild's own --workers are its reading
# processes, so there the porter's index loaders are --index-workers.
TWO_NAMES = {"porter__workers": {"--workers", "--index-workers"}}
# Commands that talk to a buck, and the endpoint each needs.
BUCK_ROLES = {
    "tailer": "ingest", "relay": "ingest", "subscribe": "feed", "check": "feed", "graphite": "feed",
    "web": "feed", "search": "feed", "status": "query", "audit": "query", "buckets ls": "query",
    "buckets get": "query", "buckets stats": "query", "porter": "query", "porter run": "query",
    "porter once": "query", "porter status": "query", "porter quarantine": "query", "history serve": "query", "history request": "query",
    "history drop": "query", "rebuild": "query",
}


def commands(cmd: click.Command = cli, path: str = "helios"):
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name, sub in sorted(cmd.commands.items()):
            yield from commands(sub, f"{path} {name}")


def options(cmd: click.Command):
    return [p for p in cmd.params if isinstance(p, click.Option)]


def test_a_short_option_means_the_same_in_every_command():
    meanings: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path, cmd in commands():
        for p in options(cmd):
            long = next((o for o in p.opts if o.startswith("--")), p.name)
            for short in (o for o in p.opts + p.secondary_opts if not o.startswith("--")):
                if PLUGIN_SHORTS.get((path, short)) != long:
                    meanings[short][long].append(path)
    clashes = {short: dict(m) for short, m in meanings.items() if len(m) > 1}
    assert not clashes, f"short options with two meanings: {clashes}"


def test_one_idea_has_one_visible_name():
    names: dict[str, set[str]] = defaultdict(set)
    for _, cmd in commands():
        for p in options(cmd):
            if not p.hidden:
                names[p.name].add(next((o for o in p.opts if o.startswith("--")), p.opts[0]))
    twice = {dest: n for dest, n in names.items() if len(n) > 1 and TWO_NAMES.get(dest) != n}
    assert not twice, f"one setting, several visible flag names: {twice}"


def test_formats_are_chosen_with_o_and_json_or_seconds_are_only_hidden_aliases():
    for path, cmd in commands():
        for p in options(cmd):
            visible = set(p.opts + p.secondary_opts) if not p.hidden else set()
            assert not visible & {"--json", "--seconds", "--ndjson", "--live-buck"}, (path, p.opts)
            if "-o" in p.opts:
                assert "--output" in p.opts and isinstance(p.type, click.Choice), (path, p.opts)


@pytest.mark.parametrize("path, role", sorted(BUCK_ROLES.items()))
def test_a_command_that_talks_to_a_buck_takes_its_address_and_the_endpoint_it_needs(path, role):
    cmd = dict(commands())[f"helios {path}"]
    flags = {o: p for p in options(cmd) for o in p.opts}
    assert flags["--buck"].name == "mesh__bucks" and "-b" in flags["--buck"].opts
    assert flags[ROLE_FLAGS[role]].multiple and not flags[ROLE_FLAGS[role]].hidden


def test_every_command_that_can_reach_a_buck_is_listed_above():
    have = {path.removeprefix("helios ") for path, cmd in commands()
            if any("--buck" in p.opts for p in options(cmd))}
    assert have == set(BUCK_ROLES), have ^ set(BUCK_ROLES)


def test_json_is_still_o_json(tmp_path):
    from click.testing import CliRunner

    runner = CliRunner()
    args = ["history", "list", "--history-dir", str(tmp_path / "h")]
    old, new, text = (runner.invoke(cli, [*args, *extra]) for extra in (["--json"], ["-o", "json"], []))
    assert old.exit_code == new.exit_code == text.exit_code == 0, (old.output, new.output)
    assert old.stdout == new.stdout == "[]\n" and text.stdout.startswith("ID ")


def test_old_flag_names_still_work_hidden():
    from click.testing import CliRunner

    runner = CliRunner()
    # check --seconds is --duration: both refuse 0 the same way (bad arguments, exit 3)
    for flag in ("--seconds", "--duration"):
        r = runner.invoke(cli, ["check", flag, "0"])
        assert r.exit_code == 3 and "bad arguments" in r.output, (flag, r.output)
