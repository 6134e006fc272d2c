"""Environments per path, end to end: a tailer follows two files whose
[[tailer.parse]] tables name two environments (and a rule that moves some
lines to a third); every line reaches the buck under its environment, in
that environment's bucket files, also after a restart."""

from __future__ import annotations

from helios.store import layout
from tests.helpers import buck_events, poll_until

CONFIG = """
[tailer]
environment = "prod"
start_at = "beginning"
copies = 1

[[tailer.parse]]
paths = ["{billing}"]
environment = "billing"

[[tailer.parse]]
paths = ["{web}"]
environment = "web"

[[tailer.parse.rules]]
name = "audit"
regex = 'AUDIT (?P<user>\\w+)'
environment = "audit"
"""


def test_two_paths_with_two_environments_reach_the_buck_each_under_its_own(tmp_path, procs, buck):
    _, endpoint, data = buck("a")
    billing, web, plain = tmp_path / "billing.log", tmp_path / "web.log", tmp_path / "other.log"
    billing.write_bytes(b"".join(b"invoice %d paid\n" % i for i in range(300)))
    web.write_bytes(b"GET /a 200\nAUDIT alice changed her password\nGET /b 404\n")
    plain.write_bytes(b"just a line\n")
    config = tmp_path / "helios.toml"
    config.write_text(CONFIG.format(billing=billing, web=web))
    args = ["tailer", "--config", str(config), "--path", str(tmp_path / "*.log"), "--buck", endpoint,
            "--state-dir", str(tmp_path / "state")]
    tailer = procs(*args, name="tailer")

    def by_env():
        events, clean = buck_events(data)
        assert clean
        out: dict[str, list[bytes]] = {}
        # By id: the spool's re-send of a closed window may bring a second copy (the porter dedups).
        for e in sorted({e.id: e for e in events}.values(), key=lambda e: (e.source, e.offset)):
            out.setdefault(e.environment, []).append(e.message)
        return out

    want = {"billing": [b"invoice %d paid" % i for i in range(300)], "web": [b"GET /a 200", b"GET /b 404"],
            "audit": [b"AUDIT alice changed her password"], "prod": [b"just a line"]}
    poll_until(lambda: by_env() == want, timeout=30, what="every line under its environment")
    assert {name.environment for name, _ in layout.list_buckets(data / "buckets")} == set(want)   # files apart
    audit = [e for e in buck_events(data, "audit")[0]]
    assert [e.fields for e in audit] == [{"user": "alice"}] and audit[0].source == str(web)
    tailer.stop()
    tailer.start()
    with open(web, "ab") as f:
        f.write(b"AUDIT bob\n")
    want["audit"].append(b"AUDIT bob")
    poll_until(lambda: by_env() == want, timeout=30, what="the new line after a restart")
