"""record() returns at once from its very first call: what the transports
need (ZeroMQ, aiohttp) is imported by the recorder's background threads, and
aiohttp only by the HTTP transport. Checked in a fresh interpreter by who
imports what (a finder on sys.meta_path notes each import and its thread),
not by time."""

import json
import subprocess
import sys

from tests.helpers import ROOT

PROBE = r"""
import json, os, sys, threading
os.environ.pop("HELIOS_CONFIG", None)
seen = []

class Watch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("zmq", "aiohttp") and name.count(".") == 0:
            seen.append([threading.current_thread().name, name])
        return None

sys.meta_path.insert(0, Watch())
import helios.client as helios
helios.configure(bucks=[sys.argv[1]], retry_for=0.1, flush_timeout=0.1)
helios.record(message="first")
helios.record(message="second")
helios.flush(5)
print(json.dumps(seen))
"""


def imports(bucks: str) -> list[tuple[str, str]]:
    out = subprocess.run([sys.executable, "-c", PROBE, bucks], capture_output=True, text=True, cwd=ROOT,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return [tuple(x) for x in json.loads(out.stdout.splitlines()[-1])]


def test_zeromq_transport_never_imports_aiohttp():
    # Only the background thread imports ZeroMQ (to send); nobody imports aiohttp.
    assert imports("tcp://127.0.0.1:9") == [("helios-client", "zmq")]


def test_http_transport_imports_aiohttp_in_its_own_thread():
    seen = imports("http://127.0.0.1:9")
    assert ("helios-client-http", "aiohttp") in seen
    assert all(thread != "MainThread" for thread, _ in seen), seen
