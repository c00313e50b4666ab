"""POST /api/v1/classify and the readiness check of the need classifier."""

import pytest

from crm_backend import create_app, migrate
from crm_backend.db import get_engine
from crm_backend.needs import ClassifierUnavailable, classify



@pytest.fixture
def model_app(tmp_path, demo_model_path):
    app = create_app({
        "TESTING": True,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'crm.db'}",
        "NEED_MODEL_PATH": str(demo_model_path),
    })
    with app.app_context():
        migrate.upgrade_to_head(get_engine())
    yield app
    with app.app_context():
        get_engine().dispose()


@pytest.fixture
def model_client(model_app):
    return model_app.test_client()


@pytest.fixture
def key_headers(model_app):
    from crm_backend import api_keys
    from crm_backend.db import get_session

    def headers(*scopes: str) -> dict:
        with model_app.app_context():
            _, plain = api_keys.create_api_key(get_session(), "test", list(scopes))
        return {"Authorization": f"Bearer {plain}"}

    return headers


def test_classify_returns_label_confidence_and_top_three(model_client, key_headers):
    response = model_client.post(
        "/api/v1/classify", json={"text": "I was charged twice for order NW-55123"}, headers=key_headers("tickets:read")
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["label"] == "billing"
    assert 0 < body["confidence"] <= 1
    assert [item["label"] for item in body["top"]][0] == "billing"
    assert len(body["top"]) == 3
    assert "terms" not in body


def test_classify_explains_when_asked(model_client, key_headers):
    response = model_client.post(
        "/api/v1/classify?explain=true", json={"text": "please cancel my order"}, headers=key_headers("tickets:read")
    )
    assert response.status_code == 200
    terms = [item["term"] for item in response.get_json()["terms"]]
    assert any("cancel" in term for term in terms)


def test_classify_rejects_missing_text_with_a_problem(model_client, key_headers):
    response = model_client.post("/api/v1/classify", json={"txt": "hi"}, headers=key_headers("tickets:read"))
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    fields = {error["field"] for error in response.get_json()["errors"]}
    assert "text" in fields


def test_classify_needs_an_api_key_with_tickets_read(model_client, key_headers):
    assert model_client.post("/api/v1/classify", json={"text": "hi"}).status_code == 401
    forbidden = model_client.post("/api/v1/classify", json={"text": "hi"}, headers=key_headers("customers:read"))
    assert forbidden.status_code == 403


def test_classify_without_a_model_is_503(client, bearer):
    response = client.post("/api/v1/classify", json={"text": "where is my order"}, headers=bearer("tickets:read"))
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert "crm classifier train" in response.get_json()["detail"]


def test_readiness_reports_the_classifier(model_client, client):
    assert model_client.get("/readyz").get_json()["checks"]["classifier"] == "ok"
    not_ready = client.get("/readyz")
    assert not_ready.status_code == 503
    assert not_ready.get_json()["checks"]["classifier"] == "failed"
    assert "classifier" in not_ready.get_json()["detail"]


def test_classify_function_uses_the_apps_model(model_app, app):
    with model_app.app_context():
        assert classify("the zip on my boots broke").label == "damaged_or_defective"
    with app.app_context(), pytest.raises(ClassifierUnavailable):
        classify("the zip on my boots broke")
