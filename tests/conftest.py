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
        # Each buck its own live feed endpoint (stats.json "publish"); an --publish in extra wins.
        p = procs("buck", "--name", f"buck-{name}", "--ingest", ep, "--data-dir", str(data),
                  "--stats-interval", "0.2", "--publish", free_endpoint(), *extra, name=f"buck-{name}")
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
