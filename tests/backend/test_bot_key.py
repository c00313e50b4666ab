"""The bot's own API key: /readyz says when the CRM would refuse it, and the
API revokes it only when told explicitly."""

import pytest
from sqlalchemy import select

from crm_backend import api_keys, create_app, migrate
from crm_backend.db import get_engine, get_session
from crm_backend.models import ApiKey, AuditEvent

BOT_SCOPES = ["customers:read", "customers:write", "tickets:read", "tickets:write", "handoffs:write", "feedback:write", "orders:read"]


@pytest.fixture
def key_file(tmp_path):
    return tmp_path / "crm_api_key"


@pytest.fixture
def bot_app(database_url, key_file):
    """The CRM as scripts/run_stack.sh starts it: the bot's key in CRM_API_KEY_FILE."""
    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "BOT_API_KEY": "", "BOT_API_KEY_FILE": str(key_file)})
    with app.app_context():
        migrate.upgrade_to_head(get_engine())
    yield app
    with app.app_context():
        get_engine().dispose()


def new_key(app, scopes=BOT_SCOPES, name="bot") -> tuple[int, str]:
    with app.app_context():
        api_key, plain = api_keys.create_api_key(get_session(), name, list(scopes))
        return api_key.id, plain


@pytest.fixture
def bot_key(bot_app, key_file):
    key_id, plain = new_key(bot_app)
    key_file.write_text(plain + "\n")
    return key_id, plain


def revoke(app, key_id: int) -> None:
    with app.app_context():
        session = get_session()
        api_keys.revoke(session, session.get(ApiKey, key_id))


def readyz(app):
    response = app.test_client().get("/readyz")
    return response.status_code, response.get_json()


def bot_check(app) -> str | None:
    """The bot_api_key check of /readyz ("ok", "failed" or None when absent).

    (Tests have no trained need model, so /readyz itself is 503 for that.)"""
    return readyz(app)[1]["checks"].get("bot_api_key")


# --- /readyz --------------------------------------------------------------------------


def test_readyz_passes_the_bot_key_check_while_the_bots_key_is_accepted(bot_app, bot_key):
    status, body = readyz(bot_app)

    assert body["checks"]["bot_api_key"] == "ok"
    assert "bot_api_key" not in body.get("detail", "")


def test_readyz_is_503_when_the_bots_key_is_revoked_and_says_so_without_the_key(bot_app, bot_key):
    key_id, plain = bot_key
    revoke(bot_app, key_id)

    response = bot_app.test_client().get("/readyz")

    assert response.status_code == 503 and response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["checks"]["bot_api_key"] == "failed"
    assert "bot_api_key: the bot's API key" in body["detail"] and "revoked" in body["detail"]
    secret_part = plain.split("_", 2)[2]
    assert secret_part not in response.get_data(as_text=True)


def test_a_probe_that_skips_the_bot_key_check_stays_ready_when_the_key_is_revoked(bot_app, bot_key):
    key_id, _ = bot_key
    revoke(bot_app, key_id)

    response = bot_app.test_client().get("/readyz?skip=bot_api_key")

    body = response.get_json()
    assert body["checks"]["bot_api_key"] == "skipped"
    assert "bot_api_key" not in body.get("detail", "")
    assert response.status_code == (503 if "failed" in body["checks"].values() else 200)


def test_readyz_names_the_scopes_the_bots_key_lacks(bot_app, key_file):
    _, plain = new_key(bot_app, scopes=["customers:read", "tickets:read"])
    key_file.write_text(plain)

    status, body = readyz(bot_app)

    assert status == 503
    assert "lacks the scope(s) customers:write, feedback:write, handoffs:write, orders:read, tickets:write" in body["detail"]


@pytest.mark.parametrize(
    "contents, reason",
    [
        (None, "missing or empty"),
        ("", "missing or empty"),
        ("not-a-crm-key", "not a key of this CRM"),
        ("crm_deadbeef_thisKeyWasNeverCreatedHere", "unknown to this CRM"),
    ],
)
def test_readyz_is_503_when_the_bots_key_is_missing_or_unknown(bot_app, key_file, contents, reason):
    if contents is not None:
        key_file.write_text(contents)

    status, body = readyz(bot_app)

    assert status == 503 and reason in body["detail"]
    if contents:
        assert contents not in body["detail"]


def test_a_replaced_key_file_is_read_again(bot_app, bot_key, key_file):
    revoke(bot_app, bot_key[0])
    assert bot_check(bot_app) == "failed"

    key_file.write_text(new_key(bot_app)[1])  # what `crm ensure-api-key` does

    assert bot_check(bot_app) == "ok"


def test_crm_api_key_wins_over_the_file(database_url, tmp_path):
    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "BOT_API_KEY": "", "BOT_API_KEY_FILE": ""})
    with app.app_context():
        migrate.upgrade_to_head(get_engine())
    _, plain = new_key(app)
    (tmp_path / "stale").write_text("crm_deadbeef_stale")
    app.config.update(BOT_API_KEY=plain, BOT_API_KEY_FILE=str(tmp_path / "stale"))
    from crm_backend import bot_key

    bot_key.init_app(app)

    assert bot_check(app) == "ok"
    with app.app_context():
        get_engine().dispose()


def test_without_a_bot_key_configured_readyz_checks_no_key(database_url):
    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "BOT_API_KEY": "", "BOT_API_KEY_FILE": ""})

    assert bot_check(app) is None


# --- revoking the bot's own key -------------------------------------------------------


def test_revoking_the_bots_own_key_without_confirmation_is_409_and_changes_nothing(bot_app, bot_key, bearer):
    key_id, _ = bot_key
    admin = bearer("admin")

    response = bot_app.test_client().delete(f"/api/v1/api-keys/{key_id}", headers=admin)

    assert response.status_code == 409 and response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["type"].endswith("/bot-key-revocation")
    assert "?confirm=bot-key" in body["detail"]
    with bot_app.app_context():
        assert get_session().get(ApiKey, key_id).revoked_at is None
    assert bot_check(bot_app) == "ok"


def test_revoking_the_bots_own_key_with_confirmation_works_and_is_audited(bot_app, bot_key, bearer):
    key_id, _ = bot_key

    response = bot_app.test_client().delete(f"/api/v1/api-keys/{key_id}?confirm=bot-key", headers=bearer("admin"))

    assert response.status_code == 204
    with bot_app.app_context():
        event = get_session().scalars(
            select(AuditEvent).where(AuditEvent.action == "api_key.revoked", AuditEvent.entity_id == key_id)
        ).one()
        assert event.actor_type == "api_key"
        assert event.after["bot_key"] is True and event.after["confirmed"] == "bot-key"
        assert event.after["revoked_at"] is not None
    assert bot_check(bot_app) == "failed"


def test_other_keys_are_revoked_without_confirmation(bot_app, bot_key, bearer):
    other_id, _ = new_key(bot_app, scopes=["tickets:read"], name="integration")

    response = bot_app.test_client().delete(f"/api/v1/api-keys/{other_id}", headers=bearer("admin"))

    assert response.status_code == 204
    with bot_app.app_context():
        event = get_session().scalars(select(AuditEvent).where(AuditEvent.entity_id == other_id, AuditEvent.action == "api_key.revoked")).one()
        assert "bot_key" not in event.after


def test_an_unknown_confirmation_is_422(bot_app, bot_key, bearer):
    response = bot_app.test_client().delete(f"/api/v1/api-keys/{bot_key[0]}?confirm=yes", headers=bearer("admin"))

    assert response.status_code == 422
