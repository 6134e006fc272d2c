"""Debian's Nagios 4 runs ``helios check`` through the shipped command
definitions (deploy/nagios/helios-commands.cfg) and records its states and perfdata."""

import grp
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path


from tests.helpers import ROOT, needs, poll_until
from tests.integration.livemesh import Mesh, append, lines

NAGIOS = shutil.which("nagios4") or "/usr/sbin/nagios4"
pytestmark = needs("nagios", None if os.access(NAGIOS, os.X_OK) else
                   "Debian's nagios4 is not installed (make sysdeps installs nagios4-core)")
HELIOS = Path(sys.executable).parent / "helios"

SERVICES = {  # description: check_command, expected state
    "all events": ("check_helios!2!1000000!2000000!--env prod", 0),
    "errors": ("check_helios!2!0!0!--env prod --severity err", 2),
    "silent app": ("check_helios_silence!2!--env prod --app nosuchapp", 2),
}

OBJECTS = """
define timeperiod {
    timeperiod_name 24x7
    alias           always
    sunday 00:00-24:00
    monday 00:00-24:00
    tuesday 00:00-24:00
    wednesday 00:00-24:00
    thursday 00:00-24:00
    friday 00:00-24:00
    saturday 00:00-24:00
}
define command {
    command_name notify-none
    command_line /bin/true
}
define contact {
    contact_name                  nobody
    host_notifications_enabled    0
    service_notifications_enabled 0
    host_notification_period      24x7
    service_notification_period   24x7
    host_notification_options     n
    service_notification_options  n
    host_notification_commands    notify-none
    service_notification_commands notify-none
}
define host {
    host_name            log-mesh
    address              127.0.0.1
    max_check_attempts   1
    check_period         24x7
    contacts             nobody
    notification_period  24x7
}
"""

SERVICE = """
define service {{
    host_name            log-mesh
    service_description  {name}
    check_command        {command}
    max_check_attempts   1
    check_interval       3
    retry_interval       3
    check_period         24x7
    contacts             nobody
    notification_period  24x7
}}
"""


def nagios_config(d: Path, pubs: list[str]) -> Path:
    (d / "checkresults").mkdir(parents=True)
    (d / "helios.toml").write_text("[subscribe]\nbucks = [%s]\n" % ", ".join(f'"{p}"' for p in pubs))
    (d / "resource.cfg").write_text(f"$USER5$={HELIOS}\n$USER6$={d / 'helios.toml'}\n")
    (d / "objects.cfg").write_text(OBJECTS + "".join(SERVICE.format(name=n, command=c) for n, (c, _) in SERVICES.items()))
    cfg = d / "nagios.cfg"
    settings = {
        "log_file": d / "nagios.log", "resource_file": d / "resource.cfg", "status_file": d / "status.dat",
        "object_cache_file": d / "objects.cache", "precached_object_file": d / "objects.precache",
        "temp_file": d / "nagios.tmp", "temp_path": d, "lock_file": d / "nagios.lock",
        "check_result_path": d / "checkresults", "command_file": d / "nagios.cmd", "query_socket": d / "nagios.qh",
        "state_retention_file": d / "retention.dat", "retain_state_information": 0,
        "nagios_user": pwd.getpwuid(os.getuid()).pw_name, "nagios_group": grp.getgrgid(os.getgid()).gr_name,
        "status_update_interval": 1, "interval_length": 1, "use_syslog": 0, "enable_notifications": 0,
        "execute_host_checks": 0, "enable_flap_detection": 0, "max_service_check_spread": 1,
        "check_result_reaper_frequency": 1, "service_inter_check_delay_method": "n",
        "illegal_macro_output_chars": "`~$&|'\"<>",
    }
    text = "".join(f"{k}={v}\n" for k, v in settings.items())
    text += f"cfg_file={d / 'objects.cfg'}\ncfg_file={ROOT / 'deploy' / 'nagios' / 'helios-commands.cfg'}\n"
    cfg.write_text(text)
    return cfg


def service_status(path: Path) -> dict[str, dict[str, str]]:
    """service description -> its fields, from Nagios' status.dat."""
    try:
        text = path.read_text()
    except OSError:
        return {}
    out = {}
    for block in text.split("servicestatus {")[1:]:
        fields = dict(line.strip().split("=", 1) for line in block.split("}")[0].splitlines() if "=" in line)
        out[fields.get("service_description")] = fields
    return out


def test_nagios_runs_the_check_and_records_each_state_and_its_perfdata(tmp_path, procs, buck):
    mesh = Mesh(tmp_path, procs, buck)
    cfg = nagios_config(tmp_path / "nagios", mesh.pubs)
    verify = subprocess.run([NAGIOS, "-v", str(cfg)], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout
    nagios = subprocess.Popen([NAGIOS, str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        status = tmp_path / "nagios" / "status.dat"
        n = 0

        def all_checked():
            nonlocal n
            append(mesh.log, lines(n, 20))  # keep lines flowing through every check window
            n += 20
            s = service_status(status)
            return all(s.get(name, {}).get("has_been_checked") == "1" for name in SERVICES) and s

        s = poll_until(all_checked, timeout=30, interval=0.2, what="Nagios to run every check")
    finally:
        nagios.terminate()
        nagios.wait(10)
    for name, (_, code) in SERVICES.items():
        assert s[name]["current_state"] == str(code), s[name]["plugin_output"]
        assert s[name]["plugin_output"].startswith(f"HELIOS {('OK', 'WARNING', 'CRITICAL')[code]} - ")
    assert s["all events"]["performance_data"].startswith("'events'=")
    assert ";1000000;2000000;0 'dropped'=0;;;0 'bucks'=2;;;0;2" in s["all events"]["performance_data"]
    assert s["silent app"]["plugin_output"].startswith("HELIOS CRITICAL - 0 events in 2 s")
