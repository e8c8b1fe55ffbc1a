"""pytest wiring for the VexLake end-to-end tests; the machinery is in harness.py."""
import pytest

from harness import DEFAULT_TIMEOUT, VexLakeServer


def pytest_collection_modifyitems(config, items):
    """Bound every test with pytest-timeout even without an ini file."""
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(DEFAULT_TIMEOUT))


@pytest.fixture
def vexlake(tmp_path):
    """Factory: vexlake(args=[...]) -> started VexLakeServer; all are killed at teardown."""
    started: list[VexLakeServer] = []

    def make(args=(), start=True, name=None, **kw):
        srv = VexLakeServer(tmp_path / (name or f"srv{len(started)}"), args=args, **kw)
        started.append(srv)
        if start:
            srv.start()
        return srv

    yield make
    for srv in started:
        try:
            if srv.alive():
                srv.stop(timeout=5)
        except BaseException:
            pass
        finally:
            srv.kill9()


@pytest.fixture
def server(vexlake):
    """A server with default flags (metric cosine, appendfsync always)."""
    return vexlake()


@pytest.fixture
def l2server(vexlake):
    return vexlake(["--metric", "l2"])


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def proto(request):
    return request.param
