"""The backend's settings: one module read once from the environment, and README's table of them."""

import dataclasses
import re
from pathlib import Path

import pytest

from crm_backend import create_app
from crm_backend.settings import Settings, SettingsError, markdown_table

ROOT = Path(__file__).resolve().parents[2]
TABLE = re.compile(
    r"<!-- settings table: generated from crm_backend/settings.py -->\n(.*?)<!-- end of settings table -->", re.S
)


def test_readmes_settings_table_is_the_settings_modules():
    found = TABLE.search((ROOT / "README.md").read_text(encoding="utf-8"))

    assert found, "README.md lost its generated settings table (the markers around it)"
    assert found.group(1) == markdown_table(), (
        "README.md's settings table differs from crm_backend/settings.py; "
        "paste the output of `python -m crm_backend.settings` between its markers"
    )


def test_every_setting_has_its_own_variable_and_config_key_and_a_meaning():
    specs = dataclasses.fields(Settings)
    variables = [spec.metadata["env"] for spec in specs]
    keys = [spec.metadata["key"] for spec in specs]

    assert len(set(variables)) == len(variables)
    assert len(set(keys)) == len(keys)
    assert all(spec.metadata["meaning"] for spec in specs)


def test_no_other_backend_module_reads_the_environment():
    readers = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "crm_backend").rglob("*.py")
        if path.name != "settings.py" and re.search(r"os\.environ|getenv\(", path.read_text(encoding="utf-8"))
    ]

    assert readers == []


def test_settings_cannot_be_changed_once_read():
    settings = Settings.from_env({})

    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.database_url = "sqlite://"


def test_the_database_and_other_state_follow_var_dir():
    settings = Settings.from_env({"VAR_DIR": "/srv/helpdesk"})

    assert settings.database_url == "sqlite:////srv/helpdesk/crm.db"
    assert settings.canned_replies_path == "/srv/helpdesk/canned_replies.json"
    assert settings.rasa_events_url == "sqlite:////srv/helpdesk/rasa_events.db"


def test_a_variable_given_wins_over_the_default_it_would_follow():
    settings = Settings.from_env({"VAR_DIR": "/srv/helpdesk", "DATABASE_URL": "postgresql://crm@db/crm"})

    assert settings.database_url == "postgresql://crm@db/crm"


def test_variables_reach_the_app_under_their_config_keys(monkeypatch, tmp_path):
    monkeypatch.setenv("CRM_RATE_LIMIT", "7 per minute")
    monkeypatch.setenv("CRM_IMPORT_MAX_BYTES", "2048")

    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'crm.db'}"})

    assert app.config["RATELIMIT_DEFAULT"] == "7 per minute"
    assert app.config["IMPORT_MAX_BYTES"] == 2048


def test_a_test_config_overrides_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CRM_IMPORT_MAX_BYTES", "2048")

    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'crm.db'}", "IMPORT_MAX_BYTES": 99})

    assert app.config["IMPORT_MAX_BYTES"] == 99


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("CHAT_DAILY_TICKETS", "five", "CHAT_DAILY_TICKETS='five': expected a whole number"),
        ("WEBHOOK_TIMEOUT", "10s", "WEBHOOK_TIMEOUT='10s': expected a number"),
        ("CRM_SECURE_COOKIES", "maybe", "CRM_SECURE_COOKIES='maybe': expected 1 or 0"),
    ],
)
def test_a_value_a_setting_cannot_take_is_refused_in_one_sentence(variable, value, message):
    with pytest.raises(SettingsError, match=re.escape(message)):
        Settings.from_env({variable: value})

