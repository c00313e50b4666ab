"""Too many requests from one client get a 429 problem with Retry-After."""

import pytest

from crm_backend import create_app, migrate
from crm_backend.db import get_engine


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
