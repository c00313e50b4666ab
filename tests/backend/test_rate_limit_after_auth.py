"""API rate limits are counted after the key is verified: per verified key,
and requests without a valid key per address, apart from every key."""

import pytest

from crm_backend import api_keys, create_app, migrate
from crm_backend.db import get_engine, get_session


@pytest.fixture
def limited_app(tmp_path):
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'crm.db'}", "RATELIMIT_DEFAULT": "3 per minute"})
    with app.app_context():
        migrate.upgrade_to_head(get_engine())
    yield app
    with app.app_context():
        get_engine().dispose()


def new_key(app) -> str:
    with app.app_context():
        return api_keys.create_api_key(get_session(), "busy", ["customers:read"])[1]


def forged_from(key: str) -> str:
    """Another key with the same public prefix: what an attacker can read off a log line."""
    prefix = api_keys.parse_prefix(key)
    return f"crm_{prefix}_{'x' * 43}"


def get(client, key: str | None = None, address: str = "192.0.2.10"):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return client.get("/api/v1/customers", headers=headers, environ_base={"REMOTE_ADDR": address})


def test_wrong_keys_with_a_keys_prefix_do_not_spend_that_keys_budget(limited_app):
    key = new_key(limited_app)
    client = limited_app.test_client()

    forged = [get(client, forged_from(key), address="203.0.113.9").status_code for _ in range(5)]
    genuine = [get(client, key).status_code for _ in range(3)]

    assert forged == [401, 401, 401, 429, 429]  # counted on the guesser's address
    assert genuine == [200, 200, 200]


def test_a_key_is_counted_on_its_own_budget_wherever_it_comes_from(limited_app):
    key = new_key(limited_app)
    client = limited_app.test_client()

    statuses = [get(client, key, address=f"198.51.100.{n}").status_code for n in range(4)]

    assert statuses == [200, 200, 200, 429]


def test_requests_without_a_valid_key_are_counted_per_address_apart_from_keys(limited_app):
    key = new_key(limited_app)
    client = limited_app.test_client()

    anonymous = [get(client, None, address="192.0.2.10").status_code for _ in range(4)]
    other_address = get(client, None, address="192.0.2.11")
    keyed_from_the_same_address = get(client, key, address="192.0.2.10")

    assert anonymous == [401, 401, 401, 429]
    assert other_address.status_code == 401
    assert keyed_from_the_same_address.status_code == 200


def test_a_revoked_key_is_counted_as_no_key(limited_app):
    key = new_key(limited_app)
    with limited_app.app_context():
        session = get_session()
        api_key = session.get(api_keys.ApiKey, 1)
        api_keys.revoke(session, api_key)
    client = limited_app.test_client()

    revoked = [get(client, key, address="203.0.113.5").status_code for _ in range(4)]

    assert revoked == [401, 401, 401, 429]
