import pytest

from helios.wire.ports import free_endpoint
from tests.helpers import Proc, poll_until


@pytest.fixture
def procs(tmp_path, request):
    """Start helios processes; all are stopped at teardown, and their output
    is printed when the test failed."""
    started: list[Proc] = []

    def start(*args: str, name: str | None = None) -> Proc:
        name = name or f"{args[0]}-{len(started)}"
        p = Proc(list(args), tmp_path / f"{name}.out")
        started.append(p)
        return p

    yield start
    for p in started:
        try:
            p.stop()
        except AssertionError:
            pass
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        for p in started:
            print(f"--- output of helios {' '.join(p.args)}\n{p.output()[-5000:]}")


@pytest.fixture
def buck(procs, tmp_path):
    """Start a buck; returns (proc, ingest endpoint, data dir)."""
    def start(name: str = "a", endpoint: str | None = None, *extra: str):
        ep = endpoint or free_endpoint()
        data = tmp_path / f"buck-{name}"
        # Each buck its own live feed and query endpoints (stats.json "publish" and "query",
        # tests.helpers.buck_query); an --publish or --query in extra wins.
        p = procs("buck", "--name", f"buck-{name}", "--ingest", ep, "--data-dir", str(data),
                  "--stats-interval", "0.2", "--publish", free_endpoint(), "--query", free_endpoint(),
                  *extra, name=f"buck-{name}")
        # The buck writes its stats file once it has bound its socket.
        poll_until(lambda: (data / "stats.json").exists() or not p.alive(), what=f"buck-{name} to start")
        return p, ep, data
    return start


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def recorders():
    """Make client Recorders; all are closed at teardown."""
    from helios.client import Recorder

    made = []

    def make(**settings):
        r = Recorder(**settings)
        made.append(r)
        return r
    yield make
    for r in made:
        r.close(timeout=0)


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory):
    """A real ``moto_server`` process (S3 and the other AWS APIs, in memory) on
    127.0.0.1 with an OS-assigned port, shared by the session; its URL. Tests
    keep apart by using their own bucket (``s3_bucket``)."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).with_name("moto_server")
    if not exe.exists():
        pytest.skip(f"moto_server is not installed beside {sys.executable} (pip install 'moto[server]')")
    log_path = tmp_path_factory.mktemp("moto") / "moto_server.out"
    with open(log_path, "wb") as log:
        # -p 0: the OS picks the port, and werkzeug prints the one it got.
        p = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", "0"], stdout=log, stderr=subprocess.STDOUT)

    def address():
        if p.poll() is not None:
            raise AssertionError(f"moto_server exited with {p.returncode}:\n{log_path.read_text(errors='replace')}")
        m = re.search(r"Running on (http://127\.0\.0\.1:\d+)", log_path.read_text(errors="replace"))
        return m and m.group(1)
    try:
        yield poll_until(address, timeout=60, interval=0.1, what="moto_server to listen")
    finally:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@pytest.fixture
def s3_bucket(moto_server, monkeypatch, tmp_path):
    """A fresh, empty bucket on the session's moto_server, with the usual AWS
    settings (environment variables) pointing boto3 at dummy credentials and a
    region, for this process and the helios processes it starts. Returns
    (endpoint_url, bucket)."""
    import uuid

    import boto3

    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # Keep any real ~/.aws configuration out of the tests.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    bucket = f"helios-test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_server).create_bucket(Bucket=bucket)
    return moto_server, bucket
