"""A history build whose archive (S3, a moto_server process) is unreachable
fails with the reason, and succeeds when retried once the archive is back."""

from __future__ import annotations

import json
import os
import subprocess
import sys


from helios.archive import format as fmt
from helios.archive.store import S3Archive, key_for
from helios.wire.ports import free_endpoint
from tests.helpers import ROOT
from tests.integration.historymesh import NS, OLD, events_of, iso


def fill_s3(url: str, windows: dict[int, list]) -> None:
    import boto3

    boto3.client("s3", endpoint_url=url).create_bucket(Bucket="archive")
    archive = S3Archive("archive", "helios", endpoint_url=url)
    for start, events in windows.items():
        archive.put(key_for("prod", start * NS, 60), fmt.pack(events, environment="prod", level=3))


def test_a_build_fails_with_its_reason_when_the_archive_is_unreachable_and_can_be_retried(tmp_path, procs, own_moto_server):
    moto = own_moto_server
    windows = {OLD + w * 60: events_of("prod", OLD + w * 60, 300, f"old{w}", seed=w) for w in range(2)}
    fill_s3(moto.url, windows)
    place = ["--history-dir", str(tmp_path / "history"), "--archive", "s3", "--s3-bucket", "archive",
             "--s3-prefix", "helios", "--s3-endpoint", moto.url, "--query", free_endpoint(), "--timeout", "0.5"]
    procs("history", "serve", *place, "--poll-interval", "0.1", name="history-serve")
    moto.stop()                                   # the archive goes away
    run = lambda *a: subprocess.run([sys.executable, "-m", "helios", *a], cwd=ROOT, capture_output=True,  # noqa: E731
                                    text=True, timeout=120, env=dict(os.environ))
    rng = ["--env", "prod", "--start", iso(OLD), "--end", iso(OLD + 120)]
    r = run("history", "request", *place, *rng)
    assert r.returncode == 1, r.stderr
    rid = r.stdout.split()[0]
    assert f"history request {rid} failed" in r.stderr and moto.url in r.stderr, r.stderr
    st = json.loads(run("history", "status", "--history-dir", str(tmp_path / "history"), rid, "--json").stdout)
    assert st["state"] == "failed" and "s3://archive/helios" in st["reason"], st["reason"]

    moto.start()                                  # back, on the same address, with its objects
    fill_s3(moto.url, windows)
    retried = run("history", "retry", "--history-dir", str(tmp_path / "history"), rid, "--wait")
    assert retried.returncode == 0, retried.stderr
    st = json.loads(run("history", "status", "--history-dir", str(tmp_path / "history"), rid, "--json").stdout)
    assert st["state"] == "ready" and st["attempts"] == 2 and st["reason"] is None
    assert st["progress"]["events_loaded"] == sum(map(len, windows.values()))


