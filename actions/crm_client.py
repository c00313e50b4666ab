"""The one way the bot reaches the CRM backend: over HTTP, with the bot's API key.

Actions never build URLs themselves; they call a method here. Every method
either returns data or raises ``CRMUnavailable`` (network trouble, timeouts,
5xx, or ``CRMAuthError``: the CRM refused the bot's own key) / ``CRMError``
(the CRM refused the request itself), so an action can tell the customer
something honest instead of crashing: a problem on our side is never the
customer's fault.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any, Optional

import httpx

from actions import settings

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


class CRMError(Exception):
    """The CRM answered, but refused the request (a 4xx other than 401, 403 and 404)."""

    def __init__(self, status: int, problem: dict[str, Any]):
        self.status = status
        self.problem = problem
        super().__init__(f"CRM answered {status}: {problem.get('detail') or problem.get('title')}")

    @property
    def kind(self) -> str:
        """The last part of the problem's ``type``: ``daily-limit``, ``already-rated``, ... or ``""``."""
        problem_type = self.problem.get("type")
        if not isinstance(problem_type, str) or problem_type == "about:blank":
            return ""
        return problem_type.rstrip("/").rsplit("/", 1)[-1]

    def about(self, field: str) -> bool:
        """Whether the CRM named ``field`` among the invalid ones."""
        errors = self.problem.get("errors")
        named = [e.get("field") for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
        return field in named or field in str(self.problem.get("detail") or "")

    @property
    def daily_limit(self) -> bool:
        """This conversation or customer reached today's cap (CHAT_DAILY_*)."""
        return self.status == 429 and self.kind == "daily-limit"

    @property
    def already_rated(self) -> bool:
        """This conversation (or handoff) already has its score."""
        return self.status == 409 and self.kind == "already-rated"


class CRMUnavailable(Exception):
    """The CRM could not be reached in time, or failed on its side."""


class CRMAuthError(CRMUnavailable):
    """The CRM refused the bot's own API key (401) or its scopes (403).

    A fault in our configuration, so actions treat it like an unreachable
    CRM: a technical problem on our side, never the customer's mistake.
    """

    def __init__(self, status: int, problem: dict[str, Any]):
        self.status = status
        self.problem = problem
        super().__init__(f"CRM refused the bot's key with {status}: {problem.get('detail') or problem.get('title')}")


# Every client made, so the action server can close their connections when it stops.
_instances: "weakref.WeakSet[CRMClient]" = weakref.WeakSet()


async def aclose_all() -> None:
    """Closes the HTTP client of the running loop of every ``CRMClient``."""
    for client in list(_instances):
        await client.aclose()


class CRMClient:
    """Async client for the CRM's REST API (docs/api.md)."""

    def __init__(
        self,
        base_url: Optional[str] = None,
        api_key: Optional[str] = None,
        timeout: float = 3.0,
        retries: int = 2,
        transport: Optional[httpx.AsyncBaseTransport] = None,
    ):
        self.base_url = (base_url or settings.from_env().crm_url).rstrip("/")
        self._api_key = api_key
        self.timeout = timeout
        self.retries = retries
        self._transport = transport
        # One client (its connection pool, its TLS settings) per event loop,
        # kept between calls: building an AsyncClient per request cost the
        # action server most of its CPU (an SSL context each time). A client
        # belongs to the loop it was first used on, hence one per loop.
        self._clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient]" = (
            weakref.WeakKeyDictionary()
        )
        _instances.add(self)

    def _http(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None or client.is_closed:
            client = httpx.AsyncClient(timeout=self.timeout, transport=self._transport)
            self._clients[loop] = client
        return client

    async def aclose(self) -> None:
        """Closes the client of the running loop (the others go with their loops)."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    @property
    def api_key(self) -> str:
        # Read lazily so the action server can start before `make run` has
        # written the key file.
        if not self._api_key:
            self._api_key = settings.from_env().crm_api_key
        return self._api_key

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Optional[dict[str, Any]] = None,
        json: Optional[dict[str, Any]] = None,
        headers: Optional[dict[str, str]] = None,
    ) -> Optional[dict]:
        """One API call; ``None`` for a 404.

        Retried on network errors and 5xx: GETs are idempotent, and every
        POST sent here carries an Idempotency-Key, so a retry never creates
        a second record.
        """
        url = f"{self.base_url}{API_PREFIX}{path}"
        all_headers = {"Authorization": f"Bearer {self.api_key}", **(headers or {})}
        last_error: Optional[Exception] = None
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(0.2 * 2 ** (attempt - 1))
            try:
                response = await self._http().request(method, url, params=params, json=json, headers=all_headers)
            except httpx.HTTPError as error:
                last_error = error
                continue
            if response.status_code >= 500:
                last_error = CRMUnavailable(f"CRM answered {response.status_code} for {method} {path}")
                continue
            if response.status_code == 404:
                return None
            if response.status_code in (401, 403):
                error = CRMAuthError(response.status_code, _problem(response))
                logger.error("%s %s: %s (check CRM_API_KEY / CRM_API_KEY_FILE)", method, path, error)
                raise error
            if response.status_code >= 400:
                raise CRMError(response.status_code, _problem(response))
            return response.json()
        logger.warning("CRM unreachable for %s %s: %s", method, path, last_error)
        raise CRMUnavailable(str(last_error))

    async def _get(self, path: str, params: Optional[dict[str, Any]] = None) -> Optional[dict]:
        return await self._request("GET", path, params=params)

    async def find_customer_by_email(self, email: str) -> Optional[dict]:
        """The customer with this email address, or ``None`` if the CRM has none."""
        page = await self._get("/customers", params={"email": email, "limit": 1})
        items = (page or {}).get("items") or []
        return items[0] if items else None

    async def get_ticket(self, number: str) -> Optional[dict]:
        """The ticket with this number (TCK-000123), or ``None``."""
        return await self._get(f"/tickets/{number}")

    async def open_tickets_of(self, email: str, limit: int = 10) -> list[dict]:
        """The customer's tickets that are not solved or closed, newest first."""
        page = await self._get(
            "/tickets",
            params={"customer_email": email, "status": "open,pending,on_hold", "limit": limit},
        )
        return (page or {}).get("items") or []

    async def latest_public_reply(self, number: str) -> Optional[dict]:
        """The newest comment the customer may see that an agent wrote, if any."""
        page = await self._get(f"/tickets/{number}/comments", params={"public_only": "true", "limit": 100})
        replies = [c for c in (page or {}).get("items") or [] if c.get("author_type") == "agent"]
        return replies[-1] if replies else None

    async def create_ticket(
        self,
        *,
        customer_email: str,
        subject: str,
        description: str,
        conversation_id: str,
        idempotency_key: str,
        customer_name: Optional[str] = None,
        customer_verified: bool = False,
    ) -> dict:
        """Open a ticket from a chat; the CRM classifies it. Safe to retry.

        ``customer_verified``: the conversation proved ``customer_email`` (a
        signed identity); the console warns agents about the others.
        """
        body: dict[str, Any] = {
            "customer_email": customer_email,
            "subject": subject,
            "description": description,
            "channel": "chat",
            "conversation_id": conversation_id,
            "customer_verified": bool(customer_verified),
        }
        if customer_name:
            body["customer_name"] = customer_name
        ticket = await self._request(
            "POST", "/tickets", json=body, headers={"Idempotency-Key": idempotency_key}
        )
        if ticket is None:
            raise CRMError(404, {"detail": "the CRM has no /tickets endpoint"})
        return ticket

    async def create_handoff(
        self,
        *,
        conversation_id: str,
        reason: str,
        customer_email: str,
        transcript: list[dict[str, Any]],
        idempotency_key: str,
        customer_name: Optional[str] = None,
        ticket: Optional[str] = None,
        customer_verified: bool = False,
    ) -> dict:
        """Queue the conversation for a person, with the transcript so far. Safe to retry.

        ``customer_verified``: the conversation proved ``customer_email`` (a
        signed identity); otherwise the console warns the agent not to share
        account details. Raises ``CRMError`` 409 (with ``existing_id``) when
        a person already has it.
        """
        body: dict[str, Any] = {
            "conversation_id": conversation_id,
            "reason": reason,
            "customer_email": customer_email,
            "channel": "chat",
            "transcript": transcript,
            "customer_verified": bool(customer_verified),
        }
        if customer_name:
            body["customer_name"] = customer_name
        if ticket:
            body["ticket"] = ticket
        handoff = await self._request(
            "POST", "/handoffs", json=body, headers={"Idempotency-Key": idempotency_key}
        )
        if handoff is None:
            raise CRMError(404, {"detail": "the CRM has no /handoffs endpoint"})
        return handoff

    async def send_feedback(
        self,
        *,
        score: int,
        comment: Optional[str],
        conversation_id: str,
        idempotency_key: str,
        customer_email: Optional[str] = None,
    ) -> dict:
        """Record a satisfaction score; the CRM links it to the handoff's agent. Safe to retry."""
        body: dict[str, Any] = {
            "score": score,
            "comment": comment,
            "conversation_id": conversation_id,
            "channel": "chat",
        }
        if customer_email:
            body["customer_email"] = customer_email
        feedback = await self._request(
            "POST", "/feedback", json=body, headers={"Idempotency-Key": idempotency_key}
        )
        if feedback is None:
            raise CRMError(404, {"detail": "the CRM has no /feedback endpoint"})
        return feedback


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"title": response.reason_phrase, "status": response.status_code}
    return body if isinstance(body, dict) else {"detail": str(body)}
