"""Environments per path, end to end: a tailer follows two files whose
[[tailer.parse]] tables name two environments (and a rule that moves some
lines to a third); every line reaches the buck under its environment, in
that environment's bucket files, also after a restart."""

from __future__ import annotations

import subprocess
import sys

from helios.store import layout
from tests.helpers import ROOT, buck_events, poll_until

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


def test_a_path_sent_to_an_environment_the_tailers_key_may_not_send_to_is_refused_by_the_buck(tmp_path, procs,
                                                                                               buck):
    # The tailer's config moves billing.log to "billing", but its key is a sender for "prod" only:
    # the buck stores the prod lines and refuses (and counts) the billing frames; the config
    # cannot widen what the key may do.
    kdir, allow = tmp_path / "keys", tmp_path / "allow"
    allow.mkdir()
    for name, opts in (("server", ()), ("tailer", ("--role", "sender", "--env", "prod"))):
        r = subprocess.run([sys.executable, "-m", "helios", "keygen", name, "--dir", str(kdir), *opts], cwd=ROOT,
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
    (allow / "tailer.key").write_bytes((kdir / "tailer.key").read_bytes())
    buck_cfg = tmp_path / "buck.toml"
    buck_cfg.write_text(f'[security]\ncurve = true\nserver_secret_key = "{kdir}/private/server.key_secret"\n'
                        f'allow_dir = "{allow}"\n')
    proc, endpoint, data = buck("a", None, "--config", str(buck_cfg))
    billing, app = tmp_path / "billing.log", tmp_path / "app.log"
    billing.write_bytes(b"invoice 1 paid\n")
    app.write_bytes(b"an app line\n")
    config = tmp_path / "tailer.toml"
    config.write_text(f'[tailer]\ncopies = 1\nstart_at = "beginning"\n\n[[tailer.parse]]\npaths = ["{billing}"]\n'
                      f'environment = "billing"\n\n[security]\ncurve = true\n'
                      f'secret_key = "{kdir}/private/tailer.key_secret"\nserver_key = "{kdir}/server.key"\n')
    procs("tailer", "--config", str(config), "--path", str(tmp_path / "*.log"), "--buck", endpoint,
          "--env", "prod", "--state-dir", str(tmp_path / "state"), name="tailer")
    poll_until(lambda: "may not send to billing" in proc.output(), timeout=30, what="the buck to refuse billing")
    poll_until(lambda: [e.message for e in buck_events(data)[0]] == [b"an app line"], timeout=30,
               what="the prod line stored")
    assert not [n for n, _ in layout.list_buckets(data / "buckets", "billing")]
