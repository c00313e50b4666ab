"""A believable two-year history of the demo shop, for the dashboard and the
customer-insights models (`crm seed-demo`; docs/demo-data.md).

planner.py plans it in memory from one ``random.Random(seed)``, dated
relative to ``now``: the same seed and ``now`` give the same history, and any
run shows the last two years. This module writes it with bulk INSERTs in one
transaction, because it runs at every `make run` start, and only once: any
order with source ``demo-history`` means it is there.
"""

import json
import random
import secrets
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from ..agents import service as agents_service
from ..db import utcnow
from ..models import Conversation, Customer, Feedback, Handoff, HandoffMessage, Order, Ticket, normalise_email
from ..seed import DEMO_AGENT_EMAIL, DEMO_CUSTOMERS
from .planner import (
    AGENTS,
    DEMO_AGENT,
    PERSONA_BY_NAME,
    WORDS,
    Plan,
    PlannedConversation,
    PlannedFeedback,
    PlannedHandoff,
    PlannedOrder,
    PlannedTicket,
    Planner,
    Shopper,
    StaffMember,
    lifetime,
    plan_fulfilment,
)

DEFAULT_SEED = 20261123
HISTORY_SOURCE = "demo-history"  # Order.source of generated orders; also marks the history as present
CURRENCY = "GBP"


def history_exists(session: Session) -> bool:
    return session.scalar(select(Order.id).where(Order.source == HISTORY_SOURCE).limit(1)) is not None


def seed_history(session: Session, now: datetime | None = None, seed: int = DEFAULT_SEED) -> dict[str, int]:
    """Add the generated history unless it is there; return the rows added by kind ({} if present).

    The demo customers of customers.json get orders only, so that they keep
    exactly their tickets of tickets.json. No audit events are written for
    the generated rows: they record nobody's action, and thousands of them
    would bury the real ones.
    """
    if history_exists(session):
        return {}
    now = now or utcnow()
    words = json.loads(WORDS.read_text(encoding="utf-8"))
    staff, agents_added = _ensure_agents(session)
    plan = Planner(random.Random(seed), words, now, staff).plan(_demo_shoppers(session, words, now, seed))
    plan_fulfilment(plan.orders, random.Random(f"{seed}-fulfilment"), now)
    _make_emails_unique(session, plan.shoppers)
    _write(session, plan)
    session.commit()
    return {
        "customers": len(plan.shoppers),
        "orders": len(plan.orders),
        "tickets": len(plan.tickets),
        "conversations": len(plan.conversations),
        "handoffs": len(plan.handoffs),
        "handoff_messages": sum(len(handoff.messages) for handoff in plan.handoffs),
        "feedback": len(plan.feedback),
        "agents": agents_added,
    }


def _ensure_agents(session: Session) -> tuple[list[StaffMember], int]:
    staff, added = [], 0
    for profile in AGENTS:
        agent = agents_service.find_agent(session, profile.email)
        if agent is None:
            agent = agents_service.create_agent(
                session, email=profile.email, password=secrets.token_urlsafe(32), name=profile.name
            )
            added += 1
        staff.append(StaffMember(profile, agent.id))
    demo_agent = agents_service.find_agent(session, DEMO_AGENT_EMAIL)
    if demo_agent is not None:
        staff.append(StaffMember(DEMO_AGENT, demo_agent.id))
    return staff, added


def _demo_shoppers(session: Session, words: dict, now: datetime, seed: int) -> list[Shopper]:
    """The customers of customers.json that are in the database, with a persona each."""
    emails = [normalise_email(record["email"]) for record in json.loads(DEMO_CUSTOMERS.read_text(encoding="utf-8"))]
    found = session.execute(select(Customer).where(Customer.email.in_(emails)).order_by(Customer.id)).scalars()
    shoppers = []
    for customer in found:
        persona = PERSONA_BY_NAME[words["demo_customer_personas"].get(customer.email, "regular")]
        # A generator of its own, so that whether these exist changes nothing else.
        rng = random.Random(f"{seed}-{customer.email}")
        joined, stopped = lifetime(rng, persona, now)
        shoppers.append(Shopper(customer.name, customer.email, customer.phone, persona, joined, stopped, customer.id))
    return shoppers


def _make_emails_unique(session: Session, shoppers: list[Shopper]) -> None:
    """Rename the rare generated address that a real customer already has."""
    taken = set()
    emails = [shopper.email for shopper in shoppers]
    for start in range(0, len(emails), 500):
        taken.update(session.scalars(select(Customer.email).where(Customer.email.in_(emails[start : start + 500]))))
    for number, shopper in enumerate(shoppers):
        if shopper.email in taken:
            local, domain = shopper.email.split("@")
            shopper.email = f"{local}.nw{number}@{domain}"


# --- writing ------------------------------------------------------------------


def _write(session: Session, plan: Plan) -> None:
    """Bulk INSERTs in dependency order; ids come back through RETURNING where later rows need them."""
    customer_ids = _insert(session, Customer, [_customer_row(shopper) for shopper in plan.shoppers], returning=True)
    for shopper, customer_id in zip(plan.shoppers, customer_ids):
        shopper.customer_id = customer_id
    for shopper in plan.demo_shoppers:
        # They have bought from the shop since they joined, not since the seed ran.
        session.execute(update(Customer).where(Customer.id == shopper.customer_id).values(created_at=shopper.joined))
    _insert(session, Order, [_order_row(order) for order in plan.orders])
    _insert(session, Conversation, [_conversation_row(conversation) for conversation in plan.conversations])
    ticket_ids = _insert(session, Ticket, [_ticket_row(ticket) for ticket in plan.tickets], returning=True)
    for ticket, ticket_id in zip(plan.tickets, ticket_ids):
        ticket.id = ticket_id
    handoff_ids = _insert(session, Handoff, [_handoff_row(handoff) for handoff in plan.handoffs], returning=True)
    for handoff, handoff_id in zip(plan.handoffs, handoff_ids):
        handoff.id = handoff_id
    messages = [{"handoff_id": handoff.id, **message} for handoff in plan.handoffs for message in handoff.messages]
    _insert(session, HandoffMessage, messages)
    _insert(session, Feedback, [_feedback_row(feedback) for feedback in plan.feedback])


def _insert(session: Session, model: type, rows: list[dict], *, returning: bool = False) -> list[int]:
    if not rows:
        return []
    # render_nulls: rows with a None (no phone, no agent) would otherwise
    # leave that column out and break the executemany into small batches.
    statement = insert(model).execution_options(render_nulls=True)
    if not returning:
        session.execute(statement, rows)
        return []
    return list(session.scalars(statement.returning(model.id, sort_by_parameter_order=True), rows))


def _customer_row(shopper: Shopper) -> dict:
    return {
        "name": shopper.name,
        "email": shopper.email,
        "phone": shopper.phone,
        "created_at": shopper.joined,
        "updated_at": shopper.joined,
    }


def _order_row(order: PlannedOrder) -> dict:
    return {
        "customer_id": order.shopper.customer_id,
        "source": HISTORY_SOURCE,
        "external_id": order.external_id,
        "number": order.external_id,  # NW-200001: the history's ids are the customer-facing numbers
        "amount": order.amount,
        "refunded_amount": order.refunded_amount,
        "currency": CURRENCY,
        "status": order.status,
        "ordered_at": order.ordered_at,
        "refunded_at": order.refunded_at,
        "shipped_at": order.shipped_at,
        "carrier": order.carrier,
        "tracking_number": order.tracking_number,
        "tracking_url": order.tracking_url,
        "estimated_delivery": order.estimated_delivery,
        "delivered_at": order.delivered_at,
        "created_at": order.ordered_at,
        "updated_at": max(filter(None, (order.ordered_at, order.shipped_at, order.delivered_at, order.refunded_at))),
    }


def _conversation_row(conversation: PlannedConversation) -> dict:
    return {
        "conversation_id": conversation.conversation_id,
        "channel": "chat",
        "customer_id": conversation.shopper.customer_id if conversation.shopper else None,
        "started_at": conversation.started_at,
        "last_message_at": conversation.last_message_at,
        "user_messages": conversation.user_messages,
        "handed_off": conversation.handed_off,
    }


def _ticket_row(ticket: PlannedTicket) -> dict:
    return {
        "customer_id": ticket.shopper.customer_id,
        "subject": ticket.subject,
        "description": ticket.description,
        "status": ticket.status,
        "priority": ticket.priority,
        "category": ticket.need.label,
        # Like the demo tickets of tickets.json: set by hand, not by the classifier.
        "category_confidence": None,
        "category_source": "manual",
        "channel": ticket.channel,
        "assignee_id": ticket.assignee_id,
        "conversation_id": ticket.conversation.conversation_id if ticket.conversation else None,
        "created_at": ticket.created_at,
        "updated_at": ticket.updated_at,
    }


def _handoff_row(handoff: PlannedHandoff) -> dict:
    return {
        "conversation_id": handoff.conversation.conversation_id,
        "customer_id": handoff.shopper.customer_id,
        "ticket_id": handoff.ticket.id if handoff.ticket else None,
        "reason": handoff.reason,
        "category": handoff.need.label,
        "category_confidence": None,
        "channel": "chat",
        "status": "resolved",
        "agent_id": handoff.agent_id,
        "transcript": handoff.transcript,
        "created_at": handoff.created_at,
        "claimed_at": handoff.claimed_at,
        "resolved_at": handoff.resolved_at,
        "updated_at": handoff.resolved_at,
    }


def _feedback_row(feedback: PlannedFeedback) -> dict:
    return {
        "score": feedback.score,
        "comment": feedback.comment,
        # The need of the conversation or ticket rated (live scores carry
        # the classified need of their comment), for CSAT by need.
        "category": feedback.need.label,
        "category_confidence": None,
        "conversation_id": feedback.conversation.conversation_id if feedback.conversation else None,
        "customer_id": feedback.shopper.customer_id if feedback.shopper else None,
        "handoff_id": feedback.handoff.id if feedback.handoff else None,
        "agent_id": feedback.agent_id,
        "channel": feedback.channel,
        "created_at": feedback.created_at,
    }
