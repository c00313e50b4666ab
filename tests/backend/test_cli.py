import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crm_backend.db import get_session
from crm_backend.models import ApiKey, Customer


@pytest.fixture
def run(app):
    runner = app.test_cli_runner()

    def invoke(*args: str):
        return runner.invoke(args=list(args))

    return invoke


def test_init_db_twice_is_fine_and_prints_one_line(unmigrated_app):
    runner = unmigrated_app.test_cli_runner()

    first = runner.invoke(args=["init-db"])
    second = runner.invoke(args=["init-db"])

    assert first.exit_code == 0 and second.exit_code == 0, second.output
    assert len(second.output.strip().splitlines()) == 1
    # Only the schema is asserted: no need model is loaded in this app.
    assert unmigrated_app.test_client().get("/readyz").json["checks"]["migrations"] == "ok"


def test_create_api_key_prints_a_working_key_on_its_last_line(run, client):
    result = run("create-api-key", "bot", "--scopes", "customers:read,tickets:read", "--scopes", "handoffs:write")

    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    response = client.get("/api/v1/customers", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200


def test_create_api_key_refuses_unknown_scopes_in_one_line(run):
    result = run("create-api-key", "bot", "--scopes", "customers:delete")

    assert result.exit_code == 1
    assert "unknown scope(s) customers:delete" in result.output
    assert "Traceback" not in result.output


def test_commands_on_an_unmigrated_database_say_to_run_init_db(unmigrated_app):
    result = unmigrated_app.test_cli_runner().invoke(args=["seed-demo"])

    assert result.exit_code == 1
    assert result.output.strip() == "Error: database is not initialised; run `crm init-db`"


def test_seed_demo_is_idempotent_and_includes_ada(app, run):
    # The generated history has tests of its own (test_demo_history.py).
    first = run("seed-demo", "--no-history")
    second = run("seed-demo", "--no-history")

    assert first.exit_code == 0 and second.exit_code == 0
    assert "0 added" in second.output
    with app.app_context():
        session = get_session()
        ada = session.scalars(select(Customer).where(Customer.email == "ada@example.com")).one()
        total = session.scalar(select(func.count()).select_from(Customer))
    assert ada.name == "Ada Lovelace"
    assert total == int(first.output.split()[2])


def _key_count(app) -> int:
    with app.app_context():
        return get_session().scalar(select(func.count()).select_from(ApiKey))


def test_ensure_api_key_writes_a_private_key_file_and_never_prints_it(app, run, client, tmp_path):
    key_file = tmp_path / "secrets" / "bot.key"

    result = run("ensure-api-key", "bot", "--file", str(key_file), "--scopes", "customers:read")

    key = key_file.read_text().strip()
    assert result.exit_code == 0, result.output
    assert key not in result.output
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert client.get("/api/v1/customers", headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_ensure_api_key_keeps_a_valid_key(app, run, tmp_path):
    key_file = tmp_path / "bot.key"
    run("ensure-api-key", "bot", "--file", str(key_file), "--scopes", "customers:read")
    original = key_file.read_text()

    result = run("ensure-api-key", "bot", "--file", str(key_file), "--scopes", "customers:read")

    assert result.exit_code == 0
    assert key_file.read_text() == original
    assert _key_count(app) == 1


def test_ensure_api_key_replaces_a_key_unknown_to_this_database(app, run, tmp_path):
    key_file = tmp_path / "bot.key"
    key_file.write_text("crm_deadbeef_from-another-database\n")

    result = run("ensure-api-key", "bot", "--file", str(key_file), "--scopes", "customers:read")

    assert result.exit_code == 0
    assert key_file.read_text().strip() != "crm_deadbeef_from-another-database"
    assert _key_count(app) == 1


def test_ensure_api_key_replaces_a_key_lacking_a_wanted_scope(app, run, tmp_path):
    key_file = tmp_path / "bot.key"
    run("ensure-api-key", "bot", "--file", str(key_file), "--scopes", "customers:read")
    original = key_file.read_text()

    run("ensure-api-key", "bot", "--file", str(key_file), "--scopes", "customers:read,tickets:write")

    assert key_file.read_text() != original
    with app.app_context():
        keys = get_session().scalars(select(ApiKey).order_by(ApiKey.id)).all()
    assert keys[0].revoked_at is not None and keys[1].scopes == ["customers:read", "tickets:write"]


def test_the_crm_console_script_runs_in_a_fresh_directory(tmp_path):
    crm = Path(sys.executable).with_name("crm")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'crm.db'}"}

    init = subprocess.run([crm, "init-db"], env=env, cwd=tmp_path, capture_output=True, text=True)
    created = subprocess.run(
        [crm, "create-api-key", "e2e", "--scopes", "admin"], env=env, cwd=tmp_path, capture_output=True, text=True
    )

    assert init.returncode == 0, init.stderr
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip().splitlines()[-1].startswith("crm_")


def test_create_agent_stores_an_argon2_hash(app, run):
    from crm_backend.models import Agent

    result = run("create-agent", "Sam@Example.com", "--password", "correct horse battery", "--admin")

    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Created admin agent sam@example.com (id 1)."
    with app.app_context():
        agent = get_session().scalars(select(Agent)).one()
    assert agent.is_admin and agent.password_hash.startswith("$argon2id$")


@pytest.mark.parametrize(
    "args, message",
    [
        (["not-an-email", "--password", "correct horse battery"], "is not an e-mail address"),
        (["sam@example.com", "--password", "short"], "at least 10 characters"),
    ],
)
def test_create_agent_refuses_bad_input_in_one_line(run, args, message):
    result = run("create-agent", *args)

    assert result.exit_code == 1 and message in result.output
    assert "Traceback" not in result.output


def test_create_agent_twice_is_one_line_error(run):
    run("create-agent", "sam@example.com", "--password", "correct horse battery")

    result = run("create-agent", "sam@example.com", "--password", "correct horse battery")

    assert result.exit_code == 1 and "already exists" in result.output


def test_seed_demo_adds_tickets_and_a_demo_agent_once(app, run):
    from crm_backend.agents import service as agents
    from crm_backend.models import Ticket
    from crm_backend.seed import DEMO_AGENT_EMAIL, DEMO_AGENT_PASSWORD

    first = run("seed-demo", "--no-history")
    second = run("seed-demo", "--no-history")

    assert "Demo tickets: 5 added" in first.output and "Demo tickets: 0 added" in second.output
    with app.app_context():
        session = get_session()
        assert session.scalar(select(func.count()).select_from(Ticket)) == 5
        assert agents.verify_password(session, DEMO_AGENT_EMAIL, DEMO_AGENT_PASSWORD) is not None
