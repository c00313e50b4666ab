from apiflask import APIBlueprint, abort
from flask import url_for

from .. import chat_limits
from ..auth import require_scopes
from ..db import get_session
from ..models import Handoff
from ..rasa import client as rasa_client
from ..schemas import IdempotencyHeaders
from ..tickets.service import resolve_customer
from ..transactions import idempotent, transactional
from . import availability, queue, service
from .schemas import (
    AgentAction,
    AgentMessageIn,
    AvailabilityOut,
    HandoffCreated,
    HandoffDetail,
    HandoffIn,
    HandoffMessageOut,
    HandoffOut,
    HandoffPage,
    HandoffQuery,
)

bp = APIBlueprint("handoffs", __name__, url_prefix="/api/v1/handoffs", tag="Handoffs")

AGENT_DOC = (
    "An API key with scope handoffs:write acts for the agent named in agent_email "
    "(the agent console acts for the agent who is logged in)."
)


def _handoff_or_404(handoff_id: int) -> Handoff:
    handoff = get_session().get(Handoff, handoff_id)
    if handoff is None:
        abort(404, detail=f"There is no handoff {handoff_id}.")
    return handoff


@bp.post("")
@require_scopes("handoffs:write")
@bp.input(IdempotencyHeaders, location="headers", arg_name="idempotency")
@idempotent
@bp.input(HandoffIn, arg_name="data")
@bp.output(HandoffCreated, status_code=201)
@bp.doc(
    summary="Queue a conversation for a person, with the transcript so far; the reason is classified",
    description="The answer says whether a person is there now (support hours, agents online); if not, the handoff waits in the queue. "
    "Handoffs from chat are capped per customer and conversation a day (`CHAT_DAILY_HANDOFFS`): 429 "
    "(type `.../daily-limit`) over it.",
    responses={
        403: "Missing scope",
        409: "The conversation already has an open handoff",
        429: "Today's limit of handoffs from chat is reached",
    },
)
def create_handoff(data):
    session = get_session()
    chat_limits.check_daily_cap(
        session,
        "handoffs",
        channel=data.get("channel"),
        customer_id=data.get("customer_id"),
        customer_email=data.get("customer_email"),
        conversation_id=data.get("conversation_id"),
    )
    customer = resolve_customer(
        session,
        customer_id=data.pop("customer_id", None),
        customer_email=data.pop("customer_email", None),
        customer_name=data.pop("customer_name", None),
    )
    handoff = service.request_handoff(session, customer=customer, **data)
    handoff.availability = availability.current(session)
    handoff.queue = queue.place(session, handoff)
    return handoff, 201, {"Location": url_for(".get_handoff", handoff_id=handoff.id)}


@bp.get("")
@require_scopes("handoffs:read")
@bp.input(HandoffQuery, location="query", arg_name="query")
@bp.output(HandoffPage)
@bp.doc(summary="Find handoffs, oldest first (the queue order), a page at a time", responses={403: "Missing scope"})
def list_handoffs(query):
    handoffs, after_id = service.find_handoffs(
        get_session(),
        status=query.get("status"),
        conversation_id=query.get("conversation_id"),
        customer_email=query.get("customer_email"),
        agent=query.get("agent"),
        limit=query["limit"],
        after_id=query.get("cursor"),
    )
    return {"items": handoffs, "next_cursor": after_id}


@bp.get("/availability")
@require_scopes("handoffs:write")
@bp.output(AvailabilityOut)
@bp.doc(summary="Whether a person can take a handoff now: support hours and agents online", responses={403: "Missing scope"})
def get_availability():
    return availability.current(get_session())


@bp.get("/<int:handoff_id>")
@require_scopes("handoffs:read")
@bp.output(HandoffDetail)
@bp.doc(summary="One handoff with its transcript and every message since", responses={403: "Missing scope", 404: "No such handoff"})
def get_handoff(handoff_id: int):
    return _handoff_or_404(handoff_id)


@bp.post("/<int:handoff_id>/claim")
@require_scopes("handoffs:write")
@transactional
@bp.input(AgentAction, arg_name="data")
@bp.output(HandoffOut)
@bp.doc(
    summary="Take a queued handoff; of two agents claiming at once exactly one wins",
    description=AGENT_DOC + " The customer's chat is told that the agent joined (best effort: a Rasa server that cannot "
    "be reached does not stop the claim).",
    responses={403: "Missing scope", 404: "No such handoff", 409: "Claimed by another agent, or resolved"},
)
def claim_handoff(handoff_id: int, data):
    session = get_session()
    handoff = _handoff_or_404(handoff_id)
    return service.claim(session, handoff, service.agent_by_email(session, data["agent_email"]), rasa_client())


@bp.post("/<int:handoff_id>/messages")
@require_scopes("handoffs:write")
@transactional
@bp.input(AgentMessageIn, arg_name="data")
@bp.output(HandoffMessageOut, status_code=201)
@bp.doc(
    summary="Send the agent's reply to the customer's chat",
    description=AGENT_DOC + " The reply is pushed to the customer's widget through the Rasa server.",
    responses={
        403: "Missing scope",
        404: "No such handoff",
        409: "Not claimed by this agent, or resolved",
        503: "The Rasa server could not be reached; nothing was stored",
    },
)
def send_message(handoff_id: int, data):
    session = get_session()
    handoff = _handoff_or_404(handoff_id)
    agent = service.agent_by_email(session, data["agent_email"])
    return service.reply(session, handoff, agent, data["text"], rasa_client()), 201


@bp.post("/<int:handoff_id>/resolve")
@require_scopes("handoffs:write")
@transactional
@bp.input(AgentAction, arg_name="data")
@bp.output(HandoffOut)
@bp.doc(
    summary="Close the handoff; the assistant resumes, thanks the customer and asks for a score",
    description=AGENT_DOC,
    responses={
        403: "Missing scope",
        404: "No such handoff",
        409: "Claimed by another agent, or already resolved",
        503: "The Rasa server could not be reached; nothing changed",
    },
)
def resolve_handoff(handoff_id: int, data):
    session = get_session()
    handoff = _handoff_or_404(handoff_id)
    agent = service.agent_by_email(session, data["agent_email"])
    return service.resolve(session, handoff, agent, rasa_client())
