"""deploy/: the systemd units pass `systemd-analyze verify`, promise the
hardening the operator guide describes and may write where the example
configs keep their data, and every example config passes `helios check-config`."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from helios import config
from tests.helpers import ROOT, needs, require

UNITS = sorted((ROOT / "deploy" / "systemd").glob("*.service"))
CONFIGS = sorted((ROOT / "deploy" / "config").glob("*/*.toml"))
INSTALLED = "/opt/helios/bin/helios"  # where docs/operations.md installs helios
SERVICES = {"buck", "tailer", "porter", "web", "relay"}
# Which services reload their config on SIGHUP (a reload() method; see helios.commands.common.run_service).
def _reloads() -> set[str]:
    from helios.buck import Buck
    from helios.services.porter import Porter
    from helios.services.relay import Relay
    from helios.services.tailer import Tailer

    return {name for name, cls in {"buck": Buck, "tailer": Tailer, "relay": Relay, "porter": Porter}.items()
            if hasattr(cls, "reload")}


RELOADS = _reloads()
# Where each section keeps what it writes.
DATA_KEYS = {"buck": ("data_dir",), "tailer": ("state_dir",), "relay": ("state_dir",),
             "porter": ("state_dir", "index_dir", "archive_dir")}


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # keys are case-sensitive
    parser.read(path)
    return parser


def test_there_is_a_unit_for_every_service():
    assert {p.stem.removeprefix("helios-") for p in UNITS} == SERVICES


@needs("systemd-analyze", None if shutil.which("systemd-analyze") else
       "systemd-analyze is not installed (Debian's systemd package)")
def test_the_units_pass_systemd_analyze_verify(tmp_path):
    # verify checks that ExecStart's program exists; this test cannot install
    # to /opt/helios, so each unit is checked with the venv's helios instead.
    helios = Path(sys.executable).parent / "helios"
    assert helios.exists(), f"{helios} is missing: install the package into the venv (make venv)"
    copies = []
    for path in UNITS:
        copy = tmp_path / path.name
        copy.write_text(path.read_text().replace(INSTALLED, str(helios)))
        copies.append(str(copy))
    done = subprocess.run(["systemd-analyze", "verify", *copies], capture_output=True, text=True, timeout=60)
    if "Failed to connect to bus" in done.stderr or "Failed to initialize manager" in done.stderr:
        require("systemd-analyze", f"systemd-analyze cannot run here: {done.stderr.strip()[:200]}")
    # verify exits 0 on unknown keys and bad values, which it only warns about:
    # any line about our units is a failure.
    ours = [line for line in (done.stdout + done.stderr).splitlines() if "helios-" in line]
    assert done.returncode == 0 and not ours, done.stdout + done.stderr


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_each_unit_runs_as_helios_hardened_and_restarts_on_failure(path):
    s = unit(path)["Service"]
    service = path.stem.removeprefix("helios-")
    assert (s["User"], s["Group"]) == ("helios", "helios")
    assert s["ProtectSystem"] == "strict"
    assert (s["NoNewPrivileges"], s["PrivateTmp"]) == ("yes", "yes")
    assert s["Restart"] == "on-failure"
    assert s["ExecStart"].startswith(f"{INSTALLED} {service} --config /etc/helios/helios.toml")
    if service in RELOADS:
        assert s["ExecReload"] == "/bin/kill -HUP $MAINPID"
    else:
        assert "ExecReload" not in s, f"helios {service} does not reload on SIGHUP"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_each_example_keeps_its_data_where_its_unit_may_write(path):
    doc = tomllib.loads(path.read_text())
    for section, keys in DATA_KEYS.items():
        if section not in doc:
            continue
        writable = unit(ROOT / "deploy" / "systemd" / f"helios-{section}.service")["Service"]["ReadWritePaths"].split()
        for key in keys:
            if key not in doc[section]:
                continue  # a key of the embedded index or archive, in a file that uses another
            where = Path(doc[section][key])
            assert any(where == Path(w) or Path(w) in where.parents for w in writable), \
                f"[{section}] {key} = {where} is not under the unit's ReadWritePaths {writable}"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_each_example_config_passes_check_config(path):
    if "porter" in tomllib.loads(path.read_text()) and "porter" not in config.SECTIONS:
        pytest.skip("the [porter] section is not in helios.config yet")
    done = subprocess.run([sys.executable, "-m", "helios", "check-config", str(path)], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{path}: OK")

