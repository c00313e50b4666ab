"""CRMClient: the bot's single way to the CRM, with the HTTP layer stubbed by respx."""

import httpx
import pytest
import respx

from actions.crm_client import CRMClient, CRMError, CRMUnavailable

BASE = "http://crm.test"
ADA = {"id": 1, "name": "Ada Lovelace", "email": "ada@example.com", "phone": None}


@pytest.fixture
def client() -> CRMClient:
    return CRMClient(base_url=BASE, api_key="crm_test_key", timeout=0.5, retries=2)


@pytest.mark.asyncio
@respx.mock
async def test_finds_a_customer_by_email_with_the_bots_key(client):
    route = respx.get(f"{BASE}/api/v1/customers").mock(
        return_value=httpx.Response(200, json={"items": [ADA], "next_cursor": None})
    )

    customer = await client.find_customer_by_email("ada@example.com")

    assert customer == ADA
    request = route.calls.last.request
    assert request.headers["Authorization"] == "Bearer crm_test_key"
    assert request.url.params["email"] == "ada@example.com"


@pytest.mark.asyncio
@respx.mock
async def test_unknown_email_is_none(client):
    respx.get(f"{BASE}/api/v1/customers").mock(
        return_value=httpx.Response(200, json={"items": [], "next_cursor": None})
    )

    assert await client.find_customer_by_email("nobody@example.com") is None


@pytest.mark.asyncio
@respx.mock
async def test_server_errors_are_retried_then_reported_as_unavailable(client):
    route = respx.get(f"{BASE}/api/v1/customers").mock(return_value=httpx.Response(503))

    with pytest.raises(CRMUnavailable):
        await client.find_customer_by_email("ada@example.com")

    assert route.call_count == 3  # the first try and two retries


@pytest.mark.asyncio
@respx.mock
async def test_a_timeout_then_success_returns_the_customer(client):
    respx.get(f"{BASE}/api/v1/customers").mock(
        side_effect=[
            httpx.ConnectTimeout("slow"),
            httpx.Response(200, json={"items": [ADA], "next_cursor": None}),
        ]
    )

    assert await client.find_customer_by_email("ada@example.com") == ADA


@pytest.mark.asyncio
@respx.mock
async def test_a_refused_key_is_a_crm_error_with_the_problem(client):
    problem = {"type": "about:blank", "title": "Unauthorized", "status": 401, "detail": "bad key"}
    respx.get(f"{BASE}/api/v1/customers").mock(return_value=httpx.Response(401, json=problem))

    with pytest.raises(CRMError) as raised:
        await client.find_customer_by_email("ada@example.com")

    assert raised.value.status == 401
    assert raised.value.problem["detail"] == "bad key"


@pytest.mark.asyncio
async def test_nothing_listening_is_unavailable():
    client = CRMClient(base_url="http://127.0.0.1:9", api_key="k", timeout=0.5, retries=1)

    with pytest.raises(CRMUnavailable):
        await client.find_customer_by_email("ada@example.com")


def test_api_key_is_read_from_the_key_file(tmp_path, monkeypatch):
    key_file = tmp_path / "crm_api_key"
    key_file.write_text("crm_abc_secret\n")
    monkeypatch.delenv("CRM_API_KEY", raising=False)
    monkeypatch.setenv("CRM_API_KEY_FILE", str(key_file))

    assert CRMClient(base_url=BASE).api_key == "crm_abc_secret"


def test_api_key_from_the_environment_wins(tmp_path, monkeypatch):
    key_file = tmp_path / "crm_api_key"
    key_file.write_text("from-file")
    monkeypatch.setenv("CRM_API_KEY", "from-env")
    monkeypatch.setenv("CRM_API_KEY_FILE", str(key_file))

    assert CRMClient(base_url=BASE).api_key == "from-env"


@pytest.mark.asyncio
@respx.mock
async def test_calls_share_one_http_client_and_it_can_be_closed(client):
    respx.get(f"{BASE}/api/v1/customers").mock(
        return_value=httpx.Response(200, json={"items": [ADA], "next_cursor": None})
    )

    await client.find_customer_by_email("ada@example.com")
    first = client._http()
    await client.find_customer_by_email("ada@example.com")
    assert client._http() is first

    await client.aclose()
    assert first.is_closed
    assert await client.find_customer_by_email("ada@example.com") == ADA  # a new client
    await client.aclose()
