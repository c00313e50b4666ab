from apiflask import APIBlueprint, abort
from flask import url_for

from ..auth import require_scopes
from ..db import get_session
from ..models import WebhookDelivery, WebhookEndpoint
from ..transactions import transactional
from . import service
from .schemas import (
    DeliveryDetail,
    DeliveryOut,
    DeliveryPage,
    DeliveryQuery,
    RotateSecretIn,
    WebhookIn,
    WebhookOut,
    WebhookPage,
    WebhookPatch,
    WebhookQuery,
    WebhookWithSecretOut,
)

bp = APIBlueprint("webhooks", __name__, url_prefix="/api/v1", tag="Webhooks")

SIGNING_DOC = (
    "Deliveries follow the Standard Webhooks spec: headers webhook-id, webhook-timestamp and "
    "webhook-signature (v1,<base64 HMAC-SHA256 of id.timestamp.body>); verify them with the "
    "standardwebhooks library and this secret. See docs/webhooks.md."
)


def _endpoint_or_404(endpoint_id: int) -> WebhookEndpoint:
    endpoint = get_session().get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        abort(404, detail=f"There is no webhook endpoint {endpoint_id}.")
    return endpoint


def _delivery_or_404(delivery_id: int) -> WebhookDelivery:
    found = get_session().get(WebhookDelivery, delivery_id)
    if found is None:
        abort(404, detail=f"There is no webhook delivery {delivery_id}.")
    return found


@bp.get("/webhooks")
@require_scopes("webhooks:read")
@bp.input(WebhookQuery, location="query", arg_name="query")
@bp.output(WebhookPage)
@bp.doc(summary="Webhook endpoints, oldest first (never their secrets)", responses={403: "Missing scope"})
def list_webhooks(query):
    endpoints, after_id = service.find_endpoints(get_session(), limit=query["limit"], after_id=query.get("cursor"))
    return {"items": endpoints, "next_cursor": after_id}


# No Idempotency-Key: replaying the response would mean storing the secret
# in plain text with it (as for API keys). A retry creates a second endpoint,
# which DELETE removes.
@bp.post("/webhooks")
@require_scopes("webhooks:write")
@transactional
@bp.input(WebhookIn, arg_name="data")
@bp.output(WebhookWithSecretOut, status_code=201)
@bp.doc(
    summary="Register an endpoint for events; the response is the only time its secret is shown",
    description=SIGNING_DOC,
    responses={403: "Missing scope"},
)
def create_webhook(data):
    endpoint, secret = service.create_endpoint(get_session(), **data)
    return _with_secret(endpoint, secret), 201, {"Location": url_for(".get_webhook", endpoint_id=endpoint.id)}


def _with_secret(endpoint: WebhookEndpoint, secret: str) -> dict:
    return {**{name: getattr(endpoint, name) for name in WebhookOut().fields}, "secret": secret}


@bp.get("/webhooks/<int:endpoint_id>")
@require_scopes("webhooks:read")
@bp.output(WebhookOut)
@bp.doc(summary="One webhook endpoint, with its health", responses={403: "Missing scope", 404: "No such endpoint"})
def get_webhook(endpoint_id: int):
    return _endpoint_or_404(endpoint_id)


@bp.patch("/webhooks/<int:endpoint_id>")
@require_scopes("webhooks:write")
@transactional
@bp.input(WebhookPatch, arg_name="changes")
@bp.output(WebhookOut)
@bp.doc(
    summary="Change an endpoint's URL, events or description, or disable and enable it",
    description="A disabled endpoint gets no new events; its pending deliveries wait and resume when it is enabled.",
    responses={403: "Missing scope", 404: "No such endpoint"},
)
def update_webhook(endpoint_id: int, changes):
    return service.update_endpoint(get_session(), _endpoint_or_404(endpoint_id), changes)


@bp.delete("/webhooks/<int:endpoint_id>")
@require_scopes("webhooks:write")
@transactional
@bp.output({}, status_code=204)
@bp.doc(summary="Remove an endpoint with its deliveries; nothing more is sent to it", responses={403: "Missing scope", 404: "No such endpoint"})
def delete_webhook(endpoint_id: int):
    service.delete_endpoint(get_session(), _endpoint_or_404(endpoint_id))
    return ""


@bp.post("/webhooks/<int:endpoint_id>/rotate-secret")
@require_scopes("webhooks:write")
@transactional
@bp.input(RotateSecretIn, arg_name="data")
@bp.output(WebhookWithSecretOut)
@bp.doc(
    summary="Replace the endpoint's secret; the old one keeps signing for a while",
    description="Until previous_secret_expires_at every delivery carries two signatures, one per secret, "
    "so the receiver can switch to the new secret without a failed delivery. " + SIGNING_DOC,
    responses={403: "Missing scope", 404: "No such endpoint"},
)
def rotate_webhook_secret(endpoint_id: int, data):
    endpoint = _endpoint_or_404(endpoint_id)
    secret = service.rotate_secret(get_session(), endpoint, data["keep_previous_seconds"])
    return _with_secret(endpoint, secret)


@bp.get("/webhooks/<int:endpoint_id>/deliveries")
@require_scopes("webhooks:read")
@bp.input(DeliveryQuery, location="query", arg_name="query")
@bp.output(DeliveryPage)
@bp.doc(summary="An endpoint's deliveries, newest first", responses={403: "Missing scope", 404: "No such endpoint"})
def list_deliveries(endpoint_id: int, query):
    items, before_id = service.find_deliveries(
        get_session(),
        _endpoint_or_404(endpoint_id),
        status=query.get("status"),
        event_type=query.get("event_type"),
        limit=query["limit"],
        before_id=query.get("cursor"),
    )
    return {"items": items, "next_cursor": before_id}


@bp.get("/deliveries/<int:delivery_id>")
@require_scopes("webhooks:read")
@bp.output(DeliveryDetail)
@bp.doc(summary="One delivery with its body and every attempt", responses={403: "Missing scope", 404: "No such delivery"})
def get_delivery(delivery_id: int):
    return _delivery_or_404(delivery_id)


@bp.post("/deliveries/<int:delivery_id>/redeliver")
@require_scopes("webhooks:write")
@transactional
@bp.output(DeliveryOut, status_code=202)
@bp.doc(
    summary="Send a delivery again (delivered or failed), with the same webhook-id and body",
    description="The worker sends it within about a second, with a new retry window. Receivers that "
    "de-duplicate by webhook-id will ignore it if they processed it before.",
    responses={403: "Missing scope", 404: "No such delivery", 409: "The delivery is being sent right now"},
)
def redeliver(delivery_id: int):
    return service.redeliver(get_session(), _delivery_or_404(delivery_id)), 202
