"""POST /api/v1/inbound/{source}: verify, de-duplicate, validate, handle, remember.

The checks come in the order that leaks least and stores nothing on
failure: unknown source 404, bad or stale signature 401, repeat of a
processed webhook-id → the first answer again (200, no second effect),
malformed body 422, then the handler; the receipt commits together with
what the handler changed.
"""

import json
import time
from datetime import datetime, timezone
from decimal import Decimal

from apiflask import APIBlueprint
from apiflask.scaffold import _annotate
from flask import current_app, request
from marshmallow import ValidationError
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError, OperationalError

from .. import request_guard
from ..db import get_session
from ..models import AuditEvent, InboundReceipt, InboundSource
from ..problems import ApiProblem, field_errors, problem
from ..webhooks import signing
from ..webhooks.secrets import SecretsKeyError, box
from . import sources
from .handlers import HANDLERS
from .schemas import Envelope, InboundEventDoc, InboundHeadersDoc, InboundResult

bp = APIBlueprint("inbound", __name__, url_prefix="/api/v1/inbound", tag="Inbound webhooks")

# Seconds since 1970; tests replace it to travel in time.
clock = time.time


def _now() -> datetime:
    return datetime.fromtimestamp(clock(), tz=timezone.utc)


def _documented_body(schema):
    """Show the body in OpenAPI without letting APIFlask parse it: the raw
    bytes must be verified before anything is read from them."""

    def decorate(view):
        _annotate(view, body=schema(), body_example=None, body_examples=None, content_type="application/json")
        return view

    return decorate


def _validation_problem(messages, prefix: str = "") -> object:
    if not isinstance(messages, dict):
        messages = {"_schema": messages}
    errors = field_errors({"json": {f"{prefix}{key}": value for key, value in messages.items()}})
    names = ", ".join(dict.fromkeys(error["field"] for error in errors))
    return problem(422, f"Invalid field(s): {names}.", errors=errors)


def _find_receipt(session, source: InboundSource, webhook_id: str) -> InboundReceipt | None:
    return session.scalars(
        select(InboundReceipt).where(InboundReceipt.source == source.name, InboundReceipt.webhook_id == webhook_id)
    ).one_or_none()


def _replay(receipt: InboundReceipt):
    return {**receipt.result, "status": "duplicate"}, 200, {"Idempotent-Replayed": "true"}


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _parse(body: bytes):
    """The event as (type, data) or a 422 response."""
    try:
        document = json.loads(body, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return problem(422, "The body is not a JSON object.", errors=[{"in": "json", "field": "", "message": "Not valid JSON."}])
    if not isinstance(document, dict):
        return problem(422, "The body is not a JSON object.", errors=[{"in": "json", "field": "", "message": "Expected an object."}])
    try:
        # Whatever its content type says: no lone surrogate, NUL or absurd nesting gets in.
        request_guard.check_json_value(document)
    except request_guard.MalformedInput as error:
        return problem(400, str(error))
    try:
        return Envelope().load(document)
    except ValidationError as error:
        return _validation_problem(error.messages)


class _AuditAsSource:
    """While installed on a session, audit events written name the source, not
    the command line (audit.current_actor only knows API keys)."""

    def __init__(self, session, source: InboundSource):
        self.session, self.source = session, source

    def __enter__(self):
        event.listen(self.session, "before_flush", self._rename)
        return self

    def __exit__(self, *exc_info):
        event.remove(self.session, "before_flush", self._rename)

    def _rename(self, session, flush_context, instances) -> None:
        for entity in session.new:
            if isinstance(entity, AuditEvent) and entity.actor_type == "cli":
                entity.actor_type = "inbound"
                entity.actor_id = self.source.id
                entity.actor_name = f"inbound source {self.source.name}"


@bp.post("/<source_name>")
@bp.input(InboundHeadersDoc, location="headers", arg_name="signature_headers", validation=False)
@_documented_body(InboundEventDoc)
@bp.output(InboundResult)
@bp.doc(
    summary="Receive a signed event from another system (shop platform, e-mail tool)",
    description="Signed like our outbound webhooks (Standard Webhooks) with the source's secret from "
    "`crm inbound add-source`. Events older than 5 minutes are refused; a repeated webhook-id gets the "
    "first answer again without a second effect. See docs/webhooks.md.",
    responses={
        401: "Missing, wrong or stale signature",
        404: "No such source",
        409: "The event refers to something not known yet (e.g. a refund before its order)",
        503: "The database is busy; nothing was stored",
    },
)
def receive(source_name: str, signature_headers):
    session = get_session()
    source = sources.find(session, source_name)
    if source is None:
        return problem(404, f"There is no inbound source {source_name!r}; add one with `crm inbound add-source`.")
    body = request.get_data(cache=True)
    try:
        secrets = sources.current_secrets(box(), source, _now())
        webhook_id = signing.verify(secrets, body, request.headers, now=clock())
    except signing.SignatureError as error:
        return problem(401, f"The request is not validly signed: {error}.")
    except SecretsKeyError as error:
        current_app.logger.error("inbound source %s: %s", source.name, error)
        return problem(503, "The source's secret cannot be read on this server; nothing was stored.")
    receipt = _find_receipt(session, source, webhook_id)
    if receipt is not None:
        return _replay(receipt)
    envelope = _parse(body)
    if not isinstance(envelope, dict):
        return envelope
    handler = HANDLERS[source.kind].get(envelope["type"])
    if handler is None:
        known = ", ".join(HANDLERS[source.kind])
        return problem(
            422,
            f"A {source.kind} source sends {known}, not {envelope['type']!r}.",
            errors=[{"in": "json", "field": "type", "message": f"Must be one of: {known}."}],
        )
    try:
        data = handler.schema().load(envelope["data"])
    except ValidationError as error:
        return _validation_problem(error.messages, prefix="data.")
    with _AuditAsSource(session, source):
        try:
            result = handler.handle(session, source, data)
        except ApiProblem as error:
            session.rollback()
            return problem(error.status, error.detail, **error.extensions)
        except BaseException:
            session.rollback()
            raise
        answer = {"status": "processed", "webhook_id": webhook_id, "type": envelope["type"], "order_id": None, "ticket": None, "comment_id": None, **result}
        session.add(InboundReceipt(source=source.name, webhook_id=webhook_id, event_type=envelope["type"], result=answer))
        return _commit(session, source, webhook_id, answer)


def _commit(session, source: InboundSource, webhook_id: str, answer: dict):
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        # The same event, delivered twice at once: the other request won.
        receipt = _find_receipt(session, source, webhook_id)
        if receipt is not None:
            return _replay(receipt)
        return problem(409, "The event conflicts with a change made at the same time; send it again.")
    except OperationalError:
        session.rollback()
        return problem(503, "The database is busy; nothing was stored, send the event again.", {"Retry-After": "1"})
    return answer
