"""The action server's settings are read in one place, actions/settings.py."""

from pathlib import Path

import pytest

from actions import settings

ACTIONS_DIR = Path(settings.__file__).parent


def test_no_other_actions_module_reads_the_environment():
    readers = [
        path.name for path in ACTIONS_DIR.glob("*.py")
        if path.name != "settings.py" and ("os.environ" in path.read_text() or "getenv" in path.read_text())
    ]
    assert readers == [], f"read settings through actions/settings.py, not in {readers}"


def test_defaults_when_nothing_is_set():
    config = settings.from_env({})
    assert config == settings.ActionSettings()
    assert (config.crm_url, config.port, config.bind_host, config.token) == ("http://127.0.0.1:8000", 5055, "127.0.0.1", "")
    assert not config.allow_no_token


def test_values_from_the_environment(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("from-file\n")
    config = settings.from_env({
        "CRM_URL": "http://crm:8000/", "CRM_API_KEY_FILE": str(key_file), "ACTIONS_PORT": "6000",
        "BIND_HOST": "0.0.0.0", "ACTIONS_TOKEN": " secret ", "ACTIONS_ALLOW_NO_TOKEN": "1",
    })
    assert config == settings.ActionSettings("http://crm:8000", "from-file", 6000, "0.0.0.0", "secret", True)
    assert settings.from_env({"CRM_API_KEY": "from-env", "CRM_API_KEY_FILE": str(key_file)}).crm_api_key == "from-env"


def test_a_port_that_is_not_a_number_stops_with_one_sentence():
    with pytest.raises(SystemExit, match="ACTIONS_PORT='http' is not a port number"):
        settings.from_env({"ACTIONS_PORT": "http"})
