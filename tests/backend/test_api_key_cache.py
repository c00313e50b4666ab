"""Verified keys are trusted for a few seconds; revocation reaches every worker within that window."""

import pytest
from sqlalchemy import select

from crm_backend import api_keys, create_app
from crm_backend.db import get_engine, get_session
from crm_backend.models import ApiKey
from crm_backend.settings import Settings

CUSTOMERS = "/api/v1/customers"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(app):
    fake = FakeClock()
    app.extensions["crm_verified_keys"].clock = fake
    return fake


@pytest.fixture
def other_worker(app):
    """A second app on the same database, as another gunicorn worker process would be."""
    other = create_app({"TESTING": True, "DATABASE_URL": app.config["DATABASE_URL"]})
    yield other
    with other.app_context():
        get_engine().dispose()


def revoke_in(app, plain_key: str) -> None:
    with app.app_context():
        session = get_session()
        api_key = session.scalars(select(ApiKey).where(ApiKey.key_hash == api_keys.hash_key(plain_key))).one()
        api_keys.revoke(session, api_key)


def test_a_key_revoked_by_another_worker_stops_working_within_the_cache_window(client, make_key, clock, other_worker):
    key = make_key("customers:read")
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get(CUSTOMERS, headers=headers).status_code == 200

    revoke_in(other_worker, key)
    clock.now += Settings.from_env({}).crm_api_key_cache_seconds - 0.5
    inside_window = client.get(CUSTOMERS, headers=headers)
    clock.now += 0.5
    after_window = client.get(CUSTOMERS, headers=headers)

    assert inside_window.status_code == 200  # the documented window, no longer
    assert after_window.status_code == 401


def test_a_key_revoked_in_the_same_worker_stops_working_at_once(app, client, make_key, clock):
    key = make_key("customers:read")
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get(CUSTOMERS, headers=headers).status_code == 200

    revoke_in(app, key)

    assert client.get(CUSTOMERS, headers=headers).status_code == 401


def test_without_the_cache_a_revocation_elsewhere_is_seen_at_once(make_key, other_worker):
    app = create_app({"TESTING": True, "DATABASE_URL": other_worker.config["DATABASE_URL"], "API_KEY_CACHE_SECONDS": 0})
    client = app.test_client()
    key = make_key("customers:read")
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get(CUSTOMERS, headers=headers).status_code == 200

    revoke_in(other_worker, key)

    assert client.get(CUSTOMERS, headers=headers).status_code == 401


def test_a_cached_key_does_not_let_a_forged_key_with_its_prefix_in(client, make_key):
    key = make_key("customers:read")
    assert client.get(CUSTOMERS, headers={"Authorization": f"Bearer {key}"}).status_code == 200
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")

    response = client.get(CUSTOMERS, headers={"Authorization": f"Bearer {forged}"})

    assert response.status_code == 401


def test_the_cache_window_is_read_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CRM_API_KEY_CACHE_SECONDS", "2.5")

    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'crm.db'}"})

    assert app.extensions["crm_verified_keys"].seconds == 2.5
