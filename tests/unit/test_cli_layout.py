"""The ``helios`` commands: each lives in a module of ``helios.commands`` that
imports on its own (no import cycle through ``helios.cli``), and the group
``helios.cli`` assembles from them lists every one."""

from __future__ import annotations

import ast
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import helios
import helios.commands

ROOT = Path(helios.__file__).resolve().parent
MODULES = sorted(m.name for m in pkgutil.iter_modules(helios.commands.__path__))

# Every command of `helios --help`: a command lost in a move is noticed here.
EXPECTED = {
    "audit", "buck", "buckets", "check", "check-config", "demo", "export", "graphite", "hash-password",
    "history", "keygen", "parse-test", "porter", "rebuild", "relay", "search", "status", "subscribe",
    "tailer", "web",
}


def run_python(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT.parent)}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=60, check=False)


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("name", MODULES)
def test_each_command_module_imports_alone_without_cli(name: str) -> None:
    code = (f"import sys, helios.commands.{name} as m\n"
            "assert 'helios.cli' not in sys.modules, 'imported helios.cli'\n"
            "print(' '.join(c.name for c in getattr(m, 'COMMANDS', ())))")
    done = run_python("-c", code)
    assert done.returncode == 0, done.stderr


def test_nothing_in_the_package_imports_cli_but_main() -> None:
    """helios.cli sits at the top: it imports the commands, nothing imports it
    (but ``python -m helios``)."""
    offenders = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py")
                 if p.name != "__main__.py" and p != ROOT / "cli.py" and "helios.cli" in imports_of(p)]
    assert offenders == []


def test_cli_defines_no_command_itself() -> None:
    tree = ast.parse((ROOT / "cli.py").read_text())
    decorated = [n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.decorator_list]
    assert decorated == []


def test_help_lists_every_command_of_every_module() -> None:
    code = ("import importlib, pkgutil, helios.commands as p\n"
            "for i in pkgutil.iter_modules(p.__path__):\n"
            "    for c in getattr(importlib.import_module('helios.commands.' + i.name), 'COMMANDS', ()):\n"
            "        print(c.name)")
    defined = set(run_python("-c", code).stdout.split())
    assert defined == EXPECTED
    done = run_python("-m", "helios", "--help")
    assert done.returncode == 0, done.stderr
    listed = {line.split()[0] for line in done.stdout.split("Commands:")[1].splitlines() if line.startswith("  ")}
    assert listed == EXPECTED


@pytest.mark.parametrize("entry, name", [
    ("from helios.cli import buck_main as m", "buck"),
    ("from helios.cli import tailer_main as m", "tailer"),
    ("from helios.commands.porter import main as m", "porter"),  # helios-porter, imported before helios.cli
])
def test_console_scripts_are_their_command(entry: str, name: str) -> None:
    done = run_python("-c", f"import sys; sys.argv = ['x', '--help']; {entry}; m()")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Usage: helios {name} [OPTIONS]")


def test_usage_errors_still_exit_2_and_version_prints() -> None:
    done = run_python("-m", "helios", "check-config")
    assert done.returncode == 2 and "give a FILE to check" in done.stderr
    done = run_python("-m", "helios", "--version")
    assert done.returncode == 0 and done.stdout.startswith("helios, version")
