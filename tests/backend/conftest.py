"""Fixtures: a fresh SQLite database per test, migrated with the real Alembic scripts."""

import os

import pytest

from crm_backend import api_keys, create_app, migrate
from crm_backend.db import get_engine, get_session
from crm_backend.models import Customer
from postgres_support import temporary_database


# `make test-backend-postgres` sets this (e.g. postgresql+psycopg://postgres@127.0.0.1:5432):
# every test then gets a database of its own on that server, dropped afterwards.
POSTGRES = os.environ.get("CRM_TEST_POSTGRES_URL")


def _make_app(database_url: str, **config):
    return create_app({"TESTING": True, "DATABASE_URL": database_url, **config})


@pytest.fixture
def database_url(tmp_path):
    if POSTGRES:
        with temporary_database(POSTGRES) as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'crm.db'}"


@pytest.fixture
def unmigrated_app(database_url):
    app = _make_app(database_url)
    yield app
    with app.app_context():
        get_engine().dispose()


@pytest.fixture
def app(unmigrated_app):
    with unmigrated_app.app_context():
        migrate.upgrade_to_head(get_engine())
    return unmigrated_app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_key(app):
    """Create an API key with the given scopes and return its plain text."""

    def make(*scopes: str, name: str = "test") -> str:
        with app.app_context():
            _, plain_key = api_keys.create_api_key(get_session(), name, list(scopes))
        return plain_key

    return make


@pytest.fixture
def bearer(make_key):
    """Authorization headers for a key with the given scopes."""

    def headers(*scopes: str) -> dict:
        return {"Authorization": f"Bearer {make_key(*scopes)}"}

    return headers


@pytest.fixture
def add_customers(app):
    def add(*people: tuple[str, str]) -> list[int]:
        with app.app_context():
            session = get_session()
            customers = [Customer(name=name, email=email) for name, email in people]
            session.add_all(customers)
            session.commit()
            return [customer.id for customer in customers]

    return add


@pytest.fixture
def fake_classifier(monkeypatch):
    """Replace the need classifier with a keyword rule; returns the texts it was asked about."""
    from crm_backend.needs import Prediction, service

    seen: list[str] = []

    def classify(text: str):
        seen.append(text)
        label, confidence = ("refund", 0.91) if "refund" in text.lower() else ("order_status", 0.55)
        return Prediction(label=label, confidence=confidence, top=[(label, confidence)])

    monkeypatch.setattr(service, "classify", classify)
    return seen


@pytest.fixture
def no_classifier(monkeypatch):
    """A need classifier with no model loaded."""
    from crm_backend.needs import ClassifierUnavailable, service

    def classify(text: str):
        raise ClassifierUnavailable("no model")

    monkeypatch.setattr(service, "classify", classify)


@pytest.fixture
def run_cli(app):
    """Run a `crm` command in the test app; returns click's result."""
    runner = app.test_cli_runner()

    def invoke(*args: str):
        return runner.invoke(args=list(args))

    return invoke


@pytest.fixture(autouse=True, scope="session")
def _no_repo_need_model(tmp_path_factory):
    """Apps in tests never load the repo's trained models/needs.skops (slow,
    and would make results depend on a local training run); classifier tests
    point NEED_MODEL_PATH at a model of their own."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NEED_MODEL_PATH", str(tmp_path_factory.mktemp("no-need-model") / "needs.skops"))
        yield


# Session-scoped need models for the classifier tests (fitted once).
from classifier_fixtures import demo_model, demo_model_path, tiny_model  # noqa: E402, F401


@pytest.fixture
def rasa_posts(monkeypatch):
    """What crm_backend/rasa.py posts to Rasa: (url, json, params) per call, each answered 200 ``{}``."""
    from crm_backend import rasa

    calls = []

    class Response:
        status_code = 200

        def json(self):
            return {}

    def post(url, json, params, timeout):
        calls.append((url, json, params))
        return Response()

    monkeypatch.setattr(rasa.requests, "post", post)
    return calls
