"""CRMClient: the bot's single way to the CRM, with the HTTP layer stubbed by respx."""

import httpx
import pytest
import respx

from actions import crm_client
from actions.crm_client import CRMAuthError, CRMClient, CRMError, CRMUnavailable

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
@pytest.mark.parametrize("status", [401, 403])
async def test_a_refused_key_is_trouble_on_our_side_not_a_refused_request(client, status):
    problem = {"type": "about:blank", "title": "Unauthorized", "status": status, "detail": "bad key"}
    route = respx.get(f"{BASE}/api/v1/customers").mock(return_value=httpx.Response(status, json=problem))

    with pytest.raises(CRMAuthError) as raised:
        await client.find_customer_by_email("ada@example.com")

    assert isinstance(raised.value, CRMUnavailable) and not isinstance(raised.value, CRMError)
    assert raised.value.status == status
    assert raised.value.problem["detail"] == "bad key"
    assert route.call_count == 1  # the same key would be refused again


@pytest.mark.asyncio
@respx.mock
async def test_todays_cap_and_an_existing_score_are_told_apart_by_the_problem_type(client):
    respx.post(f"{BASE}/api/v1/tickets").mock(
        return_value=httpx.Response(
            429,
            json={"type": "https://northwind.example/problems/daily-limit", "status": 429, "detail": "5 a day"},
            headers={"Content-Type": "application/problem+json", "Retry-After": "3600"},
        )
    )
    respx.post(f"{BASE}/api/v1/feedback").mock(
        return_value=httpx.Response(409, json={"type": "https://northwind.example/problems/already-rated", "status": 409})
    )

    with pytest.raises(CRMError) as capped:
        await client.create_ticket(customer_email="a@b.co", subject="s", description="d", conversation_id="c", idempotency_key="k")
    with pytest.raises(CRMError) as rated:
        await client.send_feedback(score=5, comment=None, conversation_id="c", idempotency_key="k")

    assert (capped.value.daily_limit, capped.value.already_rated) == (True, False)
    assert (rated.value.daily_limit, rated.value.already_rated) == (False, True)
    assert CRMError(429, {"type": "about:blank"}).daily_limit is False


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


@pytest.mark.asyncio
@respx.mock
async def test_every_clients_connections_can_be_closed_at_once(client):
    respx.get(f"{BASE}/api/v1/customers").mock(
        return_value=httpx.Response(200, json={"items": [ADA], "next_cursor": None})
    )
    other = CRMClient(base_url=BASE, api_key="k", timeout=0.5, retries=0)
    await client.find_customer_by_email("ada@example.com")
    await other.find_customer_by_email("ada@example.com")
    pools = [client._http(), other._http()]

    await crm_client.aclose_all()

    assert all(pool.is_closed for pool in pools)
