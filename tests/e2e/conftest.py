import pytest

from harness.stack import Stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """The whole service, started once for the end-to-end tests."""
    running = Stack(var_dir=tmp_path_factory.mktemp("stack") / "var").start()
    # The demo agent is online, so handoffs in these tests go to a person.
    running.sign_in_agent()
    yield running
    running.stop()
