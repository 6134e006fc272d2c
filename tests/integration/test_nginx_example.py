"""deploy/nginx-helios-http.conf works as written: a real nginx (skipped when
it is not installed) terminates TLS in front of a real buck with tokens and a
real ``helios web``; only its ports, addresses and certificate paths are
swapped for the test's."""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import ssl
import subprocess


from helios import tokens
from helios.wire.ports import free_port
from tests.helpers import ROOT, buck_http, poll_until, require
from tests.integration.test_http_auth import make_certificate

EXAMPLE = ROOT / "deploy" / "nginx-helios-http.conf"
TOKEN = tokens.new_token()


def https(port, host, method, path, body=None, headers=None):
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # the test's self-signed certificate
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=15, context=ctx)
    try:
        conn.request(method, path, body=body, headers={"Host": host, **(headers or {})})
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def test_the_example_nginx_config_passes_tokens_to_the_bucks_and_serves_the_web_app_over_tls(buck, procs, tmp_path):
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    if not nginx:
        require("nginx", "nginx is not installed (not in `make sysdeps`: with systemd, the package starts a "
                    "server on port 80): the example config is not tried")
    if not shutil.which("openssl"):
        require("openssl", "openssl is not installed: no certificate to try the example with")
    proc, _, data = buck("a", None, "--http", "127.0.0.1:0", "--http-token", f"prod={tokens.hash_token(TOKEN)}")
    buck_port = int(buck_http(data).rsplit(":", 1)[1])
    web_port = free_port()
    web = procs("web", "--listen", f"127.0.0.1:{web_port}", "--feed", "tcp://127.0.0.1:1",
                "--allowed-host", "logs.example.net")  # the name the proxy serves (its Host)
    poll_until(lambda: "Serving the live tail" in web.output(), what="helios web to start")
    cert, key = make_certificate(tmp_path)
    tls, plain = free_port(), free_port()
    conf = EXAMPLE.read_text()
    for old, new in [("listen 443 ssl http2;", f"listen 127.0.0.1:{tls} ssl;"), ("listen 80;", f"listen 127.0.0.1:{plain};"),
                     ("server 127.0.0.1:7380", f"server 127.0.0.1:{buck_port}"),
                     ("proxy_pass http://127.0.0.1:7390;", f"proxy_pass http://127.0.0.1:{web_port};")]:
        assert old in conf, old
        conf = conf.replace(old, new)
    conf = "\n".join(line for line in conf.splitlines() if "listen [::]" not in line)
    for name in ("ingest", "logs"):
        conf = conf.replace(f"/etc/ssl/helios/{name}.example.net.fullchain.pem", str(cert))
        conf = conf.replace(f"/etc/ssl/helios/{name}.example.net.key", str(key))
    (tmp_path / "helios.conf").write_text(conf)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n  client_body_temp_path {tmp_path}/body;\n  proxy_temp_path {tmp_path}/proxy;\n"
        f"  include {tmp_path}/helios.conf;\n}}\n")
    check = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    server = subprocess.Popen([nginx, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-g", "daemon off;"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        poll_until(lambda: _listening(tls), what="nginx to listen")
        events = json.dumps([{"environment": "prod", "message": "through nginx"}])
        headers = {"Content-Type": "application/json"}
        assert https(tls, "ingest.example.net", "POST", "/v1/events", events, headers)[0] == 401
        status, _, body = https(tls, "ingest.example.net", "POST", "/v1/events", events,
                                {**headers, "Authorization": f"Bearer {TOKEN}"})
        assert status == 200 and json.loads(body)["accepted"] == 1
        assert https(tls, "ingest.example.net", "GET", "/anything")[0] == 404
        status, _, body = https(tls, "logs.example.net", "GET", "/")
        assert status == 200 and b"live.js" in body
        conn = http.client.HTTPConnection("127.0.0.1", plain, timeout=5)
        conn.request("GET", "/", headers={"Host": "logs.example.net"})
        assert conn.getresponse().status == 301
        conn.close()
    finally:
        server.terminate()
        server.wait(10)


def _listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False
