import pytest

from tests.e2e.stack import Stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """The whole service, started once for the end-to-end tests."""
    running = Stack(var_dir=tmp_path_factory.mktemp("stack") / "var").start()
    yield running
    running.stop()
