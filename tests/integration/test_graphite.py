"""``helios graphite`` against Debian's graphite-carbon: carbon-cache started
here with its own config and storage, the whisper files read back."""

import json
import shutil
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from helios.model import severity_name
from helios.wire.ports import free_port
from tests.helpers import needs, poll_until
from tests.integration.livemesh import Mesh, append, lines, stats

CARBON = shutil.which("carbon-cache") or "/usr/bin/carbon-cache"
WHISPER_FETCH = shutil.which("whisper-fetch") or "/usr/bin/whisper-fetch"
DEBIAN_PYTHON = "/usr/bin/python3"
pytestmark = needs("carbon", None if Path(CARBON).exists() and Path(WHISPER_FETCH).exists() else
                   "Debian's graphite-carbon and python3-whisper are not installed (make sysdeps installs them)")

CARBON_CONF = """\
[cache]
STORAGE_DIR = {d}/storage/
LOCAL_DATA_DIR = {d}/storage/whisper/
WHITELISTS_DIR = {d}/storage/lists/
CONF_DIR = {d}/
LOG_DIR = {d}/storage/log/
PID_DIR = {d}/storage/
DATABASE = whisper
USER =
MAX_CACHE_SIZE = inf
MAX_UPDATES_PER_SECOND = 100000
MAX_CREATES_PER_MINUTE = inf
LINE_RECEIVER_INTERFACE = 127.0.0.1
LINE_RECEIVER_PORT = {port}
ENABLE_UDP_LISTENER = False
PICKLE_RECEIVER_INTERFACE = 127.0.0.1
PICKLE_RECEIVER_PORT = 0
CACHE_QUERY_INTERFACE = 127.0.0.1
CACHE_QUERY_PORT = 0
CACHE_WRITE_STRATEGY = sorted
WHISPER_AUTOFLUSH = True
"""

# One data point per second, as the bridge's --interval 1 writes them.
SCHEMAS = """\
[everything]
pattern = .*
retentions = 1s:1h
"""


@pytest.fixture
def carbon(tmp_path):
    d = tmp_path / "carbon"
    d.mkdir()
    port = free_port()
    (d / "carbon.conf").write_text(CARBON_CONF.format(d=d, port=port))
    (d / "storage-schemas.conf").write_text(SCHEMAS)
    out = open(tmp_path / "carbon.out", "wb")
    p = subprocess.Popen([CARBON, f"--config={d / 'carbon.conf'}", "--nodaemon", "start"], stdout=out,
                         stderr=subprocess.STDOUT)

    def listening():
        assert p.poll() is None, (tmp_path / "carbon.out").read_text()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            return False

    poll_until(listening, timeout=30, interval=0.1, what="carbon-cache to listen")
    yield port, d / "storage" / "whisper"
    p.terminate()
    p.wait(15)
    out.close()


# Debian's whisper module runs under Debian's python3, which need not be ours.
READ_WHISPER = """
import json, sys, time, whisper
since = int(sys.argv[1])
out = {}
for path in sys.argv[2:]:
    (_, _, _), values = whisper.fetch(path, since, int(time.time()) + 5)
    out[path] = sum(v for v in values if v is not None)
print(json.dumps(out))
"""


def whisper_sums(paths: list[Path], since: int) -> dict[Path, float]:
    """Sum of the data points of each whisper file since ``since``."""
    r = subprocess.run([DEBIAN_PYTHON, "-c", READ_WHISPER, str(since), *map(str, paths)],
                       capture_output=True, text=True, check=True)
    return {Path(k): v for k, v in json.loads(r.stdout).items()}


def whisper_sum(path: Path, since: int) -> float:
    """The same with Debian's whisper-fetch, as an operator would look."""
    r = subprocess.run([WHISPER_FETCH, f"--from={since}", f"--until={int(time.time()) + 5}", str(path)],
                       capture_output=True, text=True, check=True)
    return sum(float(v) for _, v in (line.split("\t") for line in r.stdout.splitlines()) if v != "None")


def test_the_counts_in_carbons_whisper_files_equal_the_events_sent(tmp_path, procs, buck, carbon):
    port, whisper = carbon
    mesh = Mesh(tmp_path, procs, buck)
    since = int(time.time()) - 5
    mesh.start("graphite", "--carbon", f"127.0.0.1:{port}", "--interval", "1", "--prefix", "t.helios",
               name="graphite")
    mesh.wait_subscribed()
    sent = lines(0, 3000, apps=5)
    odd = [b"<14>Nov 23 10:00:00 db.example.com postfix/smtp[9]: status=sent\n"] * 7
    append(mesh.log, sent[:1500])
    append(mesh.log, odd)
    append(mesh.log, sent[1500:])

    want = Counter()
    for i in range(3000):
        want[f"prod/app{i % 5}/{severity_name(i % 8)}/web-{i % 3}.wsp"] += 1
    want["prod/postfix_smtp/info/db_example_com.wsp"] = 7
    root = whisper / "t" / "helios" / "events"

    def counts():
        # The tailer's inventory records (app helios-inventory) are events too: counted apart.
        files = {str(p.relative_to(root)): p for p in root.rglob("*.wsp")
                 if "helios-inventory" not in str(p)} if root.exists() else {}
        if set(files) != set(want):
            return None
        sums = whisper_sums(list(files.values()), since)
        got = {name: sums[p] for name, p in files.items()}
        return got if got == want else None

    got = poll_until(counts, timeout=40, interval=0.5, what="the whisper counts to equal the events sent")
    assert sum(got.values()) == 3007
    # The bridge's own count of the events it counted, once each.
    bridge = whisper / "t" / "helios" / "bridge"
    def inventory_records():
        return sum(whisper_sums(list(root.rglob("*helios-inventory*/**/*.wsp")), since).values())
    poll_until(lambda: (bridge / "events.wsp").exists()
               and whisper_sum(bridge / "events.wsp", since) == 3007 + inventory_records(),
               timeout=20, interval=0.5, what="the bridge's own event count")
    assert whisper_sum(bridge / "dropped.wsp", since) == 0
    assert stats(mesh.data[0])["live"]["subscriptions"] == 1
