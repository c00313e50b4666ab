"""Handoff rules, independent of HTTP: request, claim, reply, resolve, find.

Lifecycle: queued → claimed (by one agent) → resolved. One conversation has
at most one handoff that is not resolved.
"""

import logging
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import audit, conversations
from ..db import keyset_page, utcnow
from ..models import Agent, Customer, Handoff, HandoffMessage, Ticket, normalise_email, parse_ticket_reference
from ..problems import ApiProblem, field_problem
from ..rasa import RasaClient, RasaUnavailable
from ..webhooks import outbox
from . import summary

logger = logging.getLogger(__name__)

HANDOFF_AUDIT_FIELDS = (
    "conversation_id",
    "customer_id",
    "ticket_number",
    "reason",
    "category",
    "category_confidence",
    "channel",
    "status",
    "agent_email",
    "customer_verified",
)
ACTIVE = ("queued", "claimed")


def _snapshot(handoff: Handoff) -> dict:
    return audit.snapshot(handoff, HANDOFF_AUDIT_FIELDS)


def active_handoff(session: Session, conversation_id: str) -> Handoff | None:
    return session.scalars(
        select(Handoff).where(Handoff.conversation_id == conversation_id, Handoff.status.in_(ACTIVE))
    ).one_or_none()


def _already_active(existing: Handoff) -> ApiProblem:
    return ApiProblem(
        409,
        f"Conversation {existing.conversation_id!r} is already handed off (handoff {existing.id}, {existing.status}).",
        existing_id=existing.id,
    )


def _ticket_id(session: Session, reference: str | None) -> int | None:
    if reference is None:
        return None
    ticket_id = parse_ticket_reference(reference)
    if ticket_id is None or session.get(Ticket, ticket_id) is None:
        raise field_problem("ticket", f"There is no ticket {reference!r}.")
    return ticket_id


def _transcript(lines: list[dict]) -> list[dict]:
    return [
        {
            "sender": line["sender"],
            "text": line["text"],
            "timestamp": line["timestamp"].isoformat() if line.get("timestamp") else None,
        }
        for line in lines
    ]


def request_handoff(
    session: Session,
    *,
    conversation_id: str,
    reason: str,
    customer: Customer,
    ticket: str | None = None,
    channel: str = "chat",
    transcript: list[dict] | None = None,
    customer_verified: bool = False,
) -> Handoff:
    """Queue a handoff (not committed); 409 if the conversation already has an open one.

    ``customer_verified``: the visitor proved the customer's address (a
    signed identity); otherwise the console warns the agent.
    """
    existing = active_handoff(session, conversation_id)
    if existing is not None:
        raise _already_active(existing)
    transcript = _transcript(transcript or [])
    # "this bot is useless, get me a human" is not what the agent must solve.
    reason, category, confidence = summary.reason_for(reason, transcript)
    handoff = Handoff(
        conversation_id=conversation_id,
        customer_id=customer.id,
        ticket_id=_ticket_id(session, ticket),
        reason=reason,
        category=category,
        category_confidence=confidence,
        channel=channel,
        status="queued",
        transcript=transcript,
        customer_verified=customer_verified,
    )
    session.add(handoff)
    try:
        session.flush()
    except IntegrityError:
        # Another request queued one for this conversation in the meantime.
        session.rollback()
        existing = active_handoff(session, conversation_id)
        if existing is not None:
            raise _already_active(existing) from None
        raise
    session.refresh(handoff)
    # Not contained: counted by the dashboard's containment rate.
    conversations.mark_handed_off(session, conversation_id, handoff.created_at, channel=channel, customer_id=customer.id)
    audit.record(session, "handoff.requested", "handoff", handoff.id, None, _snapshot(handoff))
    outbox.emit(session, "handoff.requested", handoff)
    return handoff


def agent_by_email(session: Session, email: str, field: str = "agent_email") -> Agent:
    agent = session.scalars(select(Agent).where(Agent.email == normalise_email(email))).one_or_none()
    if agent is None:
        raise field_problem(field, f"There is no agent with the e-mail {email}.")
    return agent


def _tell_customer(rasa: RasaClient | None, handoff: Handoff, presence: str, agent: Agent) -> bool:
    """Best effort: the customer's widget learns that a person joined, types or left.

    Not worth failing the agent's action for: the widget also learns it from
    the agent's first reply and from the assistant speaking again.
    """
    if rasa is None:
        return False
    try:
        rasa.send_presence(handoff.conversation_id, presence, agent.name)
        return True
    except RasaUnavailable as error:
        logger.warning("handoff %s: the customer was not told that %s %s: %s", handoff.id, agent.id, presence, error)
        return False


def claim(session: Session, handoff: Handoff, agent: Agent, rasa: RasaClient | None = None) -> Handoff:
    """Give a queued handoff to ``agent``; 409 if another agent has it or it is resolved.

    The status check and the change are one UPDATE, so of two agents
    claiming at the same moment exactly one wins. With ``rasa``, the
    customer's chat is told that the agent joined (and the assistant pauses).
    """
    if handoff.status == "claimed" and handoff.agent_id == agent.id:
        return handoff  # claiming again is harmless
    before = _snapshot(handoff)
    claimed = session.execute(
        update(Handoff)
        .where(Handoff.id == handoff.id, Handoff.status == "queued")
        .values(status="claimed", agent_id=agent.id, claimed_at=utcnow(), updated_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(handoff)
    if not claimed:
        if handoff.status == "resolved":
            raise ApiProblem(409, f"Handoff {handoff.id} is already resolved.")
        raise ApiProblem(409, f"Handoff {handoff.id} was already claimed by {handoff.agent_email}.", agent=handoff.agent_email)
    old, new = audit.changed(before, _snapshot(handoff))
    audit.record(session, "handoff.claimed", "handoff", handoff.id, old, new)
    _tell_customer(rasa, handoff, "joined", agent)
    return handoff


def typing(handoff: Handoff, agent: Agent, rasa: RasaClient) -> bool:
    """The claiming agent is typing: the customer's chat shows it; False if Rasa could not be told."""
    _require_claimed_by(handoff, agent, "take replies")
    return _tell_customer(rasa, handoff, "typing", agent)


def _require_claimed_by(handoff: Handoff, agent: Agent, doing: str) -> None:
    if handoff.status == "resolved":
        raise ApiProblem(409, f"Handoff {handoff.id} is resolved; it cannot {doing}.")
    if handoff.status == "queued":
        raise ApiProblem(409, f"Handoff {handoff.id} is still queued; claim it before you {doing}.")
    if handoff.agent_id != agent.id:
        raise ApiProblem(409, f"Handoff {handoff.id} is claimed by {handoff.agent_email}, not by {agent.email}.")


def reply(session: Session, handoff: Handoff, agent: Agent, text: str, rasa: RasaClient) -> HandoffMessage:
    """Store the agent's reply and push it to the customer; 503 (nothing stored) if Rasa is unreachable."""
    _require_claimed_by(handoff, agent, "take replies")
    message = HandoffMessage(handoff_id=handoff.id, sender="agent", agent_id=agent.id, text=text)
    session.add(message)
    session.flush()
    try:
        rasa.send_agent_message(handoff.conversation_id, text, agent.name)
    except RasaUnavailable as error:
        raise ApiProblem(503, f"The reply was not sent: {error}. Nothing was stored; send it again.") from error
    audit.record(
        session, "handoff.message_sent", "handoff", handoff.id, None, {"message_id": message.id, "sender": "agent"}
    )
    return message


def add_customer_message(
    session: Session,
    handoff: Handoff,
    text: str,
    source_event_id: str | None,
    sender: str = "customer",
    sent_at: datetime | None = None,
) -> HandoffMessage | None:
    """Record a message the customer (or the bot) sent while handed off; None if already recorded."""
    if source_event_id is not None:
        known = session.scalars(
            select(HandoffMessage.id).where(
                HandoffMessage.handoff_id == handoff.id, HandoffMessage.source_event_id == source_event_id
            )
        ).first()
        if known is not None:
            return None
    message = HandoffMessage(
        handoff_id=handoff.id, sender=sender, text=text, source_event_id=source_event_id, created_at=sent_at or utcnow()
    )
    session.add(message)
    session.flush()
    return message


def resolve(session: Session, handoff: Handoff, agent: Agent, rasa: RasaClient) -> Handoff:
    """Close the handoff and hand the conversation back to the assistant, which asks for a score.

    The claiming agent resolves a claimed handoff; any agent may resolve a
    queued one.
    If Rasa cannot be reached nothing changes (503): the customer would
    otherwise be left with a silent bot.
    """
    if handoff.status == "queued":
        # Closing a stale request (the customer left) needs no claim first.
        handoff.agent = agent
    else:
        _require_claimed_by(handoff, agent, "be resolved")
    before = _snapshot(handoff)
    was_claimed = handoff.status == "claimed"
    handoff.status = "resolved"
    handoff.resolved_at = utcnow()
    session.flush()
    try:
        # A person who had the chat says goodbye before the assistant speaks again.
        rasa.resume(handoff.conversation_id, agent.name, person_left=was_claimed)
    except RasaUnavailable as error:
        raise ApiProblem(
            503, f"The conversation could not be handed back to the assistant: {error}. The handoff stays claimed."
        ) from error
    old, new = audit.changed(before, _snapshot(handoff))
    audit.record(session, "handoff.resolved", "handoff", handoff.id, old, new)
    outbox.emit(session, "handoff.resolved", handoff)
    return handoff


def find_handoffs(
    session: Session,
    *,
    status: list[str] | None = None,
    conversation_id: str | None = None,
    customer_email: str | None = None,
    agent: str | None = None,
    limit: int = 20,
    after_id: int | None = None,
) -> tuple[list[Handoff], int | None]:
    """Handoffs oldest first (a queue is served first come, first served), a page at a time."""
    query = select(Handoff)
    if status:
        query = query.where(Handoff.status.in_(status))
    if conversation_id is not None:
        query = query.where(Handoff.conversation_id == conversation_id)
    if customer_email is not None:
        query = query.join(Customer, Handoff.customer_id == Customer.id).where(
            Customer.email == normalise_email(customer_email)
        )
    if agent is not None:
        query = query.join(Agent, Handoff.agent_id == Agent.id).where(Agent.email == normalise_email(agent))
    return keyset_page(session, query, Handoff.id, limit=limit, cursor=after_id, newest_first=False)
