"""Every error is application/problem+json with type, title, status and detail."""

import pytest
from apiflask import APIBlueprint, Schema
from apiflask.fields import String


class EchoIn(Schema):
    text = String(required=True)


@pytest.fixture
def probe_app(app):
    # Routes that read a JSON body or crash, to exercise the app's error
    # handlers; the production API has no such route yet.
    probe = APIBlueprint("probe", __name__)

    @probe.post("/probe/echo")
    @probe.input(EchoIn)
    def echo(json_data):
        return json_data

    @probe.get("/probe/crash")
    def crash():
        raise RuntimeError("secret internals")

    app.register_blueprint(probe)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    return app


def assert_problem(response, status):
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    body = response.json
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert body["title"] and body["detail"]
    return body


def test_unknown_route_is_404_problem(client):
    assert_problem(client.get("/no/such/page"), 404)


def test_wrong_method_is_405_problem_with_allow_header(client):
    response = client.post("/healthz")

    assert_problem(response, 405)
    assert "GET" in response.headers["Allow"]


def test_missing_api_key_is_401_problem_with_challenge(client):
    response = client.get("/api/v1/customers")

    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "authorization",
    ["Bearer crm_deadbeef_not-a-real-secret", "Bearer nonsense", "Basic dXNlcjpwYXNz"],
)
def test_bad_api_key_is_401_problem(client, authorization):
    response = client.get("/api/v1/customers", headers={"Authorization": authorization})

    body = assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "revoked" in body["detail"]


def test_key_without_the_scope_is_403_problem(client, bearer):
    response = client.get("/api/v1/customers", headers=bearer("tickets:read"))

    body = assert_problem(response, 403)
    assert "customers:read" in body["detail"]


def test_authentication_comes_before_query_validation(client):
    assert_problem(client.get("/api/v1/customers?bogus=1"), 401)


def test_unknown_query_parameter_is_422_naming_it(client, bearer):
    response = client.get("/api/v1/customers?colour=red", headers=bearer("customers:read"))

    body = assert_problem(response, 422)
    assert body["errors"] == [{"in": "query", "field": "colour", "message": "Unknown parameter."}]


def test_422_lists_every_bad_field(client, bearer):
    response = client.get("/api/v1/customers?limit=0&colour=red", headers=bearer("customers:read"))

    body = assert_problem(response, 422)
    assert {error["field"] for error in body["errors"]} == {"limit", "colour"}


def test_malformed_json_is_400_problem(probe_app):
    response = probe_app.test_client().post(
        "/probe/echo", data='{"text": ', content_type="application/json"
    )

    body = assert_problem(response, 400)
    assert "JSON" in body["detail"]


def test_missing_body_field_is_422_problem(probe_app):
    response = probe_app.test_client().post("/probe/echo", json={})

    body = assert_problem(response, 422)
    assert body["errors"][0]["in"] == "json" and body["errors"][0]["field"] == "text"


def test_body_over_one_mebibyte_is_413_problem(probe_app):
    response = probe_app.test_client().post(
        "/probe/echo", data="x" * (1024 * 1024 + 1), content_type="application/json"
    )

    assert_problem(response, 413)


def test_crash_is_500_problem_without_internals_and_is_logged(probe_app, caplog):
    response = probe_app.test_client().get("/probe/crash")

    body = assert_problem(response, 500)
    assert "secret internals" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)
    assert "secret internals" in caplog.text
    assert body["title"] == "Internal Server Error"
