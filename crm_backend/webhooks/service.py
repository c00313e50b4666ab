"""Webhook endpoints and deliveries, independent of HTTP."""

from datetime import timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import audit
from ..db import keyset_page, utcnow
from ..models import WebhookDelivery, WebhookEndpoint
from ..problems import ApiProblem, field_problem
from . import delivery, signing, ssrf
from .secrets import box

AUDIT_FIELDS = ("url", "description", "events", "enabled")
DEFAULT_KEEP_PREVIOUS_SECONDS = 24 * 3600


def check_url(url: str) -> str:
    """The URL if webhooks may go there (see ssrf.py), else a 422 naming the field."""
    try:
        ssrf.check(
            url,
            allow_private=current_app.config["WEBHOOK_ALLOW_PRIVATE"],
            resolver=current_app.extensions.get("crm_webhook_resolver", ssrf.system_resolver),
        )
    except ssrf.UnsafeURL as refused:
        raise field_problem("url", str(refused)) from None
    return url.strip()


def create_endpoint(session: Session, *, url: str, events: list[str], description: str = "", enabled: bool = True) -> tuple[WebhookEndpoint, str]:
    """Add an endpoint; returns it with its secret, which is shown only now."""
    secret = signing.new_secret()
    endpoint = WebhookEndpoint(
        url=check_url(url),
        events=list(dict.fromkeys(events)),
        description=description,
        enabled=enabled,
        secret_encrypted=box().encrypt(secret),
    )
    session.add(endpoint)
    session.flush()
    audit.record(session, "webhook.created", "webhook", endpoint.id, None, audit.snapshot(endpoint, AUDIT_FIELDS))
    return endpoint, secret


def update_endpoint(session: Session, endpoint: WebhookEndpoint, changes: dict) -> WebhookEndpoint:
    before = audit.snapshot(endpoint, AUDIT_FIELDS)
    if "url" in changes and changes["url"] != endpoint.url:
        endpoint.url = check_url(changes["url"])
    if "events" in changes:
        endpoint.events = list(dict.fromkeys(changes["events"]))
    for field in ("description", "enabled"):
        if field in changes:
            setattr(endpoint, field, changes[field])
    old, new = audit.changed(before, audit.snapshot(endpoint, AUDIT_FIELDS))
    if new:
        session.flush()
        audit.record(session, "webhook.updated", "webhook", endpoint.id, old, new)
    return endpoint


def delete_endpoint(session: Session, endpoint: WebhookEndpoint) -> None:
    """Remove the endpoint with its deliveries and their attempts (database cascade)."""
    audit.record(session, "webhook.deleted", "webhook", endpoint.id, audit.snapshot(endpoint, AUDIT_FIELDS), None)
    session.delete(endpoint)
    session.flush()


def rotate_secret(session: Session, endpoint: WebhookEndpoint, keep_previous_seconds: int = DEFAULT_KEEP_PREVIOUS_SECONDS) -> str:
    """A new secret; the old one keeps signing (as a second signature) for ``keep_previous_seconds``."""
    secret = signing.new_secret()
    now = utcnow()
    if keep_previous_seconds > 0:
        endpoint.previous_secret_encrypted = endpoint.secret_encrypted
        endpoint.previous_secret_expires_at = now + timedelta(seconds=keep_previous_seconds)
    else:
        endpoint.previous_secret_encrypted = None
        endpoint.previous_secret_expires_at = None
    endpoint.secret_encrypted = box().encrypt(secret)
    endpoint.secret_rotated_at = now
    session.flush()
    audit.record(
        session, "webhook.secret_rotated", "webhook", endpoint.id, None,
        {"previous_secret_expires_at": audit.jsonable(endpoint.previous_secret_expires_at)},
    )
    return secret


def find_endpoints(session: Session, *, limit: int = 20, after_id: int | None = None) -> tuple[list[WebhookEndpoint], int | None]:
    return keyset_page(session, select(WebhookEndpoint), WebhookEndpoint.id, limit=limit, cursor=after_id, newest_first=False)


def find_deliveries(
    session: Session, endpoint: WebhookEndpoint, *, status: str | None = None, event_type: str | None = None,
    limit: int = 20, before_id: int | None = None,
) -> tuple[list[WebhookDelivery], int | None]:
    """Newest first."""
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if event_type is not None:
        from ..models import WebhookEvent

        query = query.join(WebhookDelivery.event).where(WebhookEvent.event_type == event_type)
    return keyset_page(session, query, WebhookDelivery.id, limit=limit, cursor=before_id, newest_first=True)


def redeliver(session: Session, found: WebhookDelivery) -> WebhookDelivery:
    """Queue a delivery again, with the same webhook-id and body and a new retry window."""
    now = utcnow()
    if found.lease_expires_at is not None and found.lease_expires_at > now:
        raise ApiProblem(409, f"Delivery {found.id} is being sent right now; ask again when that attempt is recorded.")
    delivery.requeue(session, found, now=now)
    session.flush()
    audit.record(session, "webhook_delivery.redelivered", "webhook_delivery", found.id, None, {"endpoint_id": found.endpoint_id})
    return found
