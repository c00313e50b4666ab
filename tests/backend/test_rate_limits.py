"""Too many requests from one client get a 429 problem with Retry-After."""

import os
import uuid

import pytest

from crm_backend import create_app, migrate
from crm_backend.db import get_engine
from harness.ports import free_port


@pytest.fixture
def limited_app(tmp_path):
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'crm.db'}", "RATELIMIT_DEFAULT": "3 per minute"})
    with app.app_context():
        migrate.upgrade_to_head(get_engine())
    yield app
    with app.app_context():
        get_engine().dispose()


def test_the_request_over_the_limit_is_429_problem_with_retry_after(limited_app):
    from crm_backend import api_keys
    from crm_backend.db import get_session

    with limited_app.app_context():
        _, key = api_keys.create_api_key(get_session(), "busy", ["customers:read"])
        _, other_key = api_keys.create_api_key(get_session(), "quiet", ["customers:read"])
    client = limited_app.test_client()
    headers = {"Authorization": f"Bearer {key}"}

    statuses = [client.get("/api/v1/customers", headers=headers).status_code for _ in range(4)]
    blocked = client.get("/api/v1/customers", headers=headers)
    other = client.get("/api/v1/customers", headers={"Authorization": f"Bearer {other_key}"})

    assert statuses == [200, 200, 200, 429]
    assert blocked.mimetype == "application/problem+json" and blocked.json["status"] == 429
    assert int(blocked.headers["Retry-After"]) > 0
    assert other.status_code == 200  # counted per key
    assert client.get("/healthz").status_code == 200  # probes are never limited


REDIS_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/3")


@pytest.fixture
def redis_prefix():
    """A key prefix of this test's own in the shared Redis; its keys are removed afterwards."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.skip(f"no Redis answers at {REDIS_URL} ({type(error).__name__}); set REDIS_TEST_URL to run this test")
    prefix = f"crm-limits-test-{uuid.uuid4().hex[:12]}"
    yield prefix
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
    client.close()


def _worker_app(tmp_path, storage_uri, prefix="crm-limits"):
    """One gunicorn worker's app: its own process memory, the shared database file."""
    from crm_backend.rate_limits import SHARED_STORAGE_OPTIONS

    return create_app({
        "TESTING": True,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'crm.db'}",
        "RATELIMIT_DEFAULT": "3 per minute",
        "RATELIMIT_STORAGE_URI": storage_uri,
        "RATELIMIT_STORAGE_OPTIONS": {**SHARED_STORAGE_OPTIONS, "key_prefix": prefix},
    })


def test_workers_sharing_redis_count_one_limit_between_them(tmp_path, redis_prefix):
    from crm_backend import api_keys
    from crm_backend.db import get_session

    first, second = (_worker_app(tmp_path, REDIS_URL, redis_prefix) for _ in range(2))
    with first.app_context():
        migrate.upgrade_to_head(get_engine())
        _, key = api_keys.create_api_key(get_session(), "busy", ["customers:read"])
    headers = {"Authorization": f"Bearer {key}"}

    statuses = [app.test_client().get("/api/v1/customers", headers=headers).status_code
                for app in (first, second, first, second)]

    assert statuses == [200, 200, 200, 429]


def test_an_unreachable_redis_does_not_turn_requests_into_errors(tmp_path):
    from crm_backend import api_keys
    from crm_backend.db import get_session

    app = _worker_app(tmp_path, f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    with app.app_context():
        migrate.upgrade_to_head(get_engine())
        _, key = api_keys.create_api_key(get_session(), "busy", ["customers:read"])
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}

    statuses = [client.get("/api/v1/customers", headers=headers).status_code for _ in range(4)]

    # Counted in the worker's memory meanwhile: the limit still holds.
    assert statuses == [200, 200, 200, 429]
