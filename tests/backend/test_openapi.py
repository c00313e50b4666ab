def test_openapi_document_lists_the_customer_paths(client):
    response = client.get("/api/v1/openapi.json")

    assert response.status_code == 200
    spec = response.json
    assert spec["info"]["title"] == "Northwind Helpdesk CRM API"
    assert {"/api/v1/customers", "/api/v1/customers/{customer_id}"} <= set(spec["paths"])


def test_customer_endpoints_declare_bearer_auth_and_problem_errors(client):
    spec = client.get("/api/v1/openapi.json").json
    operation = spec["paths"]["/api/v1/customers"]["get"]

    assert spec["components"]["securitySchemes"]["BearerAuth"]["scheme"] == "bearer"
    assert operation["security"] == [{"BearerAuth": ["customers:read"]}]
    assert "application/problem+json" in operation["responses"]["422"]["content"]
    assert {p["name"] for p in operation["parameters"]} == {
        "email", "q", "loyalty_tier", "segment", "min_churn_risk", "limit", "cursor"
    }


def test_each_schema_appears_once(client):
    schemas = client.get("/api/v1/openapi.json").json["components"]["schemas"]

    assert "CustomerOut" in schemas
    assert not [name for name in schemas if name[-1].isdigit()]


def test_browsable_docs_are_served(client):
    response = client.get("/api/docs")

    assert response.status_code == 200
    assert "/api/v1/openapi.json" in response.get_data(as_text=True)
