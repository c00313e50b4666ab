"""Rasa's REST channel (still named ``rest``, ``POST /webhooks/rest/webhook``)
with the chat limits and the customer's identity checked before Rasa acts on
a message (``credentials.yml``: ``bot.rest_channel.HelpdeskRestInput``).

What differs from Rasa's ``RestInput``:

- **The body is checked.** It must be a JSON object (at most
  ``MAX_BODY_BYTES``) with a string ``sender`` (1-256 characters, no
  control characters) and a string ``message``; anything else is answered
  400 ``application/problem+json`` (Rasa answered 500, or processed a
  conversation named ``default``). Text and metadata are cleaned and
  measured as in the socket.io channel (bot/chat_limits.py).
- **Limits.** A message over ``CHAT_MAX_MESSAGE_CHARS`` is answered 200 with
  one message, ``[{"recipient_id": sender, "text": <utter_message_too_long>,
  "error": "message_too_long"}]``, and never reaches NLU. A conversation or an
  address over its rate gets 429 problem+json with ``Retry-After``.
- **Identity.** ``metadata.identity_token`` is checked (bot/identity.py); a
  client's own ``identity`` is removed. A caller with ``Authorization:
  Bearer <integration_token>`` (``REST_CHANNEL_TOKEN``, compared in constant
  time) is a trusted server-to-server integration: its ``metadata.email``
  and ``metadata.name`` count as verified (``via: "integration"``), it may
  name its own ``input_channel``, and only its conversations' rates are
  counted (it speaks for many customers from one address). A wrong token is
  401. Anonymous callers' ``metadata.email`` stays a claim and their
  ``input_channel`` is always ``rest``.

Per message it costs what Rasa's own costs plus the checks (one JSON parse
of the body, as Rasa's ``request.json``, and a dictionary look-up per rate);
only a message with a verified identity reads the tracker (bot/chat_guard.py).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from http import HTTPStatus
from typing import Any, Dict, Optional, Text, Union

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from rasa.utils.endpoints import bool_arg
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse, ResponseStream

from bot.chat_guard import TOO_LONG_ERROR, TOO_LONG_RESPONSE, ChatGuard, OnNewMessage, guard_for, log_id
from bot.chat_limits import MAX_BODY_BYTES, clean_text, client_ip, retry_after_seconds

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
MAX_SENDER_CHARS = 256
SENDER = re.compile(r"[^\x00-\x1f\x7f\ud800-\udfff]{1,%d}" % MAX_SENDER_CHARS)
INPUT_CHANNEL = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def problem(status: int, detail: Text, headers: Optional[Dict[Text, Text]] = None, **extensions: Any) -> HTTPResponse:
    """An RFC 9457 problem, as the CRM API answers them."""
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail, **extensions}
    return response.HTTPResponse(
        json.dumps(body), status=status, headers=headers or {}, content_type=PROBLEM_CONTENT_TYPE
    )


class BadRequest(Exception):
    def __init__(self, status: int, detail: Text) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class HelpdeskRestInput(RestInput):
    """Rasa's REST channel with the chat limits, body checks and integration identity."""

    @classmethod
    def name(cls) -> Text:
        return "rest"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "HelpdeskRestInput":
        credentials = credentials or {}
        return cls(integration_token=credentials.get("integration_token"))

    def __init__(self, integration_token: Optional[Text] = None) -> None:
        token = str(integration_token).strip() if integration_token else ""
        self.integration_token: Optional[bytes] = token.encode("utf-8") if token else None
        self.guard: Optional[ChatGuard] = None

    def is_integration(self, request: Request) -> bool:
        """True for the integration token; raises BadRequest(401) for any other Bearer token."""
        authorization = request.headers.get("authorization")
        if not authorization:
            return False
        scheme, _, credential = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return False
        if self.integration_token is None or not hmac.compare_digest(
            credential.strip().encode("utf-8", "replace"), self.integration_token
        ):
            raise BadRequest(401, "The Bearer token is not this channel's integration token.")
        return True

    @staticmethod
    def parse_body(request: Request) -> Dict[Text, Any]:
        body = request.body or b""
        if len(body) > MAX_BODY_BYTES:
            raise BadRequest(413, f"The request body is larger than {MAX_BODY_BYTES} bytes.")
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            raise BadRequest(400, "The body must be a JSON object.") from None
        if not isinstance(data, dict):
            raise BadRequest(400, "The body must be a JSON object.")
        sender = data.get("sender")
        if not isinstance(sender, str) or not SENDER.fullmatch(sender):
            raise BadRequest(
                400, f"`sender` must be a string of 1 to {MAX_SENDER_CHARS} characters without control characters."
            )
        if not isinstance(data.get("message"), str):
            raise BadRequest(400, "`message` must be a string.")
        return data

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        self.guard = guard_for(on_new_message)
        guard = self.guard
        if self.integration_token is None:
            logger.info("REST channel: no integration_token; every caller is anonymous.")
        webhook = Blueprint(f"custom_webhook_{type(self).__name__}")

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> Union[ResponseStream, HTTPResponse]:
            try:
                integration = self.is_integration(request)
                data = self.parse_body(request)
            except BadRequest as bad:
                return problem(bad.status, bad.detail)
            sender_id: Text = data["sender"]
            text = clean_text(data["message"])

            ip = None if integration else client_ip(request.ip, ",".join(request.headers.getall("x-forwarded-for", [])))
            wait = await guard.wait_needed(sender_id, ip)
            if wait:
                logger.info("REST conversation %s is sending too fast: 429.", log_id(sender_id))
                seconds = retry_after_seconds(wait)
                return problem(
                    429,
                    "Too many messages; wait as long as the Retry-After header says.",
                    {"Retry-After": str(seconds)},
                    error="rate_limited",
                )
            guard.queue_as(ip)
            agent = getattr(request.app.ctx, "agent", None)
            if guard.too_long(text):
                reply = {"recipient_id": sender_id, "text": guard.text(agent, TOO_LONG_RESPONSE), "error": TOO_LONG_ERROR}
                return response.json([reply])

            checked = guard.check_metadata(data.get("metadata"), integration=integration)
            input_channel = self.name()
            if integration and isinstance(data.get("input_channel"), str) and INPUT_CHANNEL.fullmatch(data["input_channel"]):
                input_channel = data["input_channel"]

            if bool_arg(request, "stream", default=False):
                return response.stream(
                    self.stream_response(
                        self._guarded(on_new_message, agent, checked.identity),
                        text,
                        sender_id,
                        input_channel,
                        checked.metadata,
                    ),
                    content_type="text/event-stream",
                )
            collector = CollectingOutputChannel()
            message = UserMessage(text, collector, sender_id, input_channel=input_channel, metadata=checked.metadata)
            try:
                await guard.start_session_if_identity_changed(agent, message, checked.identity, on_new_message)
                await on_new_message(message)
            except asyncio.CancelledError:
                logger.error("REST conversation %s: the message timed out.", log_id(sender_id))
            except Exception:  # noqa: BLE001 - as Rasa's channel: logged, the replies so far returned
                logger.exception("REST conversation %s: handling the message failed.", log_id(sender_id))
            return response.json(collector.messages)

        return webhook

    def _guarded(self, on_new_message: OnNewMessage, agent: Any, identity: Any) -> OnNewMessage:
        """``on_new_message`` for a streamed reply, with the session switch first."""
        guard = self.guard
        assert guard is not None

        async def handle(message: UserMessage) -> Any:
            await guard.start_session_if_identity_changed(agent, message, identity, on_new_message)
            return await on_new_message(message)

        return handle
