"""Senders per input kind, end to end with real processes: a tailer reading
a file, a Docker json-file log outside any --kubernetes root (found by its
first line: a container) and a directory of real journal files, and a relay taking syslog from
util-linux ``logger``, send to two bucks; `helios status` lists each kind as
its own input, and a buck's /metrics counts events and bytes per kind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from tests.helpers import needs, poll_until, require
from tests.integration.journalfiles import JOURNAL_REMOTE, numbered, write_journal
from tests.integration.test_metrics import metrics_address, scrape

pytestmark = needs("systemd-journal-remote", None if os.access(JOURNAL_REMOTE, os.X_OK) else
                   f"{JOURNAL_REMOTE} is not installed (make installs it): no journal files to read")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def stats(path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def kinds(data) -> dict:
    """The buck's events per input kind (stats.json)."""
    return {k: v["events"] for k, v in (stats(data / "stats.json").get("inputs") or {}).items()}


def test_file_journal_and_syslog_senders_are_separate_inputs_in_status_and_metrics(tmp_path, procs, buck):
    if shutil.which("logger") is None:
        require("logger", "util-linux logger is not installed")
    bucks = [buck("a", None, "--metrics", "127.0.0.1:0"), buck("b")]
    eps = [ep for _, ep, _ in bucks]
    log = tmp_path / "app.log"
    log.write_bytes(b"Nov 23 10:00:00 web-1 app[42]: a line\n" * 7)
    docker = tmp_path / "c0ffee-json.log"     # a container's log copied anywhere: not under a kubernetes root
    docker.write_bytes(b'{"log":"container line\\n","stream":"stdout","time":"2024-03-11T08:15:02.118Z"}\n' * 5)
    (tmp_path / "journal").mkdir()
    write_journal(tmp_path / "journal" / "x.journal", numbered(20))
    procs("tailer", "--path", str(log), "--path", str(docker), "--journal-dir", str(tmp_path / "journal"),
          "--env", "prod",
          "--host", "tailer-host", "--start-at", "beginning", "--state-dir", str(tmp_path / "tailer"),
          *[x for ep in eps for x in ("--buck", ep)])
    relay_state = tmp_path / "relay"
    procs("relay", "--listen", f"ipc://{tmp_path}/relay.sock", "--state-dir", str(relay_state),
          "--syslog-udp", "127.0.0.1:0", "--syslog-environment", "prod", "--stats-interval", "0.1",
          *[x for ep in eps for x in ("--buck", ep)])
    udp = poll_until(lambda: ((stats(relay_state / "stats.json").get("syslog") or {}).get("listening") or {})
                     .get("udp"), what="the relay to listen for syslog")
    port = udp[0].rpartition(":")[2]
    subprocess.run(["logger", "--udp", "--server", "127.0.0.1", "--port", port, "--rfc3164",
                    "-t", "kinds", "one syslog message"], check=True, timeout=30)

    data_a = bucks[0][2]
    poll_until(lambda: (k := kinds(data_a)).get("file", 0) >= 7 and k.get("journal", 0) >= 20
               and k.get("container", 0) >= 5 and k.get("syslog/udp", 0) >= 1,
               what="file, container, journal and syslog events in buck a by kind")

    out = subprocess.run([sys.executable, "-m", "helios", "status", "--buck", eps[0], "--buck", eps[1],
                          "--interval", "0", "--output", "json"], capture_output=True, text=True, cwd=ROOT,
                         timeout=60)
    inputs = json.loads(out.stdout)["inputs"]
    assert set(inputs["file"]) == {"prod/tailer-host"} and inputs["file"]["prod/tailer-host"] >= 7
    assert set(inputs["journal"]) == {"prod/tailer-host"} and inputs["journal"]["prod/tailer-host"] >= 20
    assert set(inputs["container"]) == {"prod/tailer-host"} and inputs["container"]["prod/tailer-host"] >= 5
    assert len(inputs["syslog/udp"]) == 1 and sum(inputs["syslog/udp"].values()) >= 1
    assert "zmq" not in inputs, inputs   # every event came in a frame that named its kind
    text = subprocess.run([sys.executable, "-m", "helios", "status", "--buck", eps[0], "--buck", eps[1],
                           "--interval", "0"], capture_output=True, text=True, cwd=ROOT, timeout=60).stdout
    assert "SENDERS BY INPUT" in text
    for line in ("file (tailed files): 1 sender(s)", "journal (systemd): 1 sender(s)",
                 "container (pod and Docker logs): 1 sender(s)",
                 "syslog/udp (relays): 1 sender(s)"):
        assert line in text, text

    s = scrape(metrics_address(data_a / "stats.json"))
    assert s[("helios_input_events_total", (("input", "file"),))] >= 7
    assert s[("helios_input_events_total", (("input", "journal"),))] >= 20
    assert s[("helios_input_events_total", (("input", "container"),))] >= 5
    assert s[("helios_input_events_total", (("input", "syslog/udp"),))] >= 1
    for kind in ("file", "container", "journal", "syslog/udp"):
        assert s[("helios_input_bytes_total", (("input", kind),))] > 0
        assert s[("helios_input_dropped_total", (("input", kind),))] == 0
        assert s[("helios_input_errors_total", (("input", kind),))] == 0
    assert s[("helios_input_events_total", (("input", "zmq"),))] == 0
