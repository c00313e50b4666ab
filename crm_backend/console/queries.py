"""What the console shows, read from the CRM database: the queue, a
conversation's lines, the customer panel, the need labels."""

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import models
from ..needs import ClassifierUnavailable
from ..db import utcnow
from ..handoffs import summary
from ..handoffs.service import ACTIVE, find_handoffs
from ..models import Feedback, Handoff, HandoffMessage, Ticket
from ..tickets.service import find_tickets

QUEUE_LIMIT = 200
# The demo shop's needs (docs/architecture.md, "Need classification"), offered when no model is loaded.
DEFAULT_NEEDS = (
    "order_status",
    "delivery_problem",
    "damaged_or_defective",
    "wrong_or_missing_item",
    "return_or_exchange",
    "refund",
    "billing",
    "payment_problem",
    "account_access",
    "cancel_order",
    "change_order",
    "product_question",
    "service_complaint",
    "praise",
    "other",
)


def active_handoffs(session: Session) -> list[Handoff]:
    """Queued and claimed handoffs, oldest first (the order they are served in)."""
    handoffs, _ = find_handoffs(session, status=list(ACTIVE), limit=QUEUE_LIMIT)
    return handoffs


def queue_signature(session: Session) -> tuple:
    """Changes whenever the queue as shown changes: a handoff queued, claimed,
    resolved or corrected, or a new message in one of them."""
    rows = session.execute(
        select(Handoff.id, Handoff.status, Handoff.agent_id, Handoff.category, Handoff.updated_at)
        .where(Handoff.status.in_(ACTIVE))
        .order_by(Handoff.id)
    ).all()
    latest = session.execute(
        select(func.max(HandoffMessage.id)).join(Handoff).where(Handoff.status.in_(ACTIVE))
    ).scalar()
    return (tuple(tuple(row) for row in rows), latest)


def last_customer_lines(session: Session, handoffs: list[Handoff]) -> dict[int, str]:
    """The latest thing each customer said (after the handoff, else its reason)."""
    if not handoffs:
        return {}
    latest_ids = (
        select(func.max(HandoffMessage.id))
        .where(HandoffMessage.handoff_id.in_([h.id for h in handoffs]), HandoffMessage.sender == "customer")
        .group_by(HandoffMessage.handoff_id)
    )
    rows = session.execute(
        select(HandoffMessage.handoff_id, HandoffMessage.text).where(HandoffMessage.id.in_(latest_ids))
    ).all()
    said = {handoff_id: readable_line("customer", text) for handoff_id, text in rows}
    return {h.id: said.get(h.id) or h.reason for h in handoffs}


@dataclass
class Line:
    """One line of a conversation as the console shows it."""

    sender: str  # customer, bot or agent
    text: str
    at: datetime | None
    id: int | None = None  # HandoffMessage id (after the handoff)
    agent_name: str | None = None


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


# What a button or the widget sends instead of words: "/request_human",
# '/inform{"feedback_score":"5"}', or "[greet]" as older transcripts kept it.
PAYLOAD = re.compile(r"^\s*(?:/(?P<slash>\w+)(?:\{.*\})?|\[(?P<bracket>\w+)\])\s*$", re.DOTALL)
# The conversation's start, which the widget sends unseen: never something the customer said.
HIDDEN_PAYLOADS = {"greet", "session_start", "restart"}


def readable_line(sender: str, text: str) -> str | None:
    """A line as the agent should read it: a button payload by what it means
    ("Chose: request human"), None for the widget's unseen start of a
    conversation. Lines of transcripts sent since the assistant keeps button
    titles are already words and pass unchanged."""
    match = PAYLOAD.match(text or "") if sender == "customer" else None
    if match is None:
        return text
    intent = match["slash"] or match["bracket"]
    if intent in HIDDEN_PAYLOADS:
        return None
    return "Chose: " + intent.replace("_", " ")


def transcript_lines(handoff: Handoff) -> list[Line]:
    lines = []
    for line in handoff.transcript or []:
        text = readable_line(line["sender"], line["text"])
        if text is not None:
            lines.append(Line(line["sender"], text, _parse_time(line.get("timestamp"))))
    return lines


def ticket_draft(handoff: Handoff) -> summary.TicketDraft:
    """The console's new-ticket form, prefilled from what the customer said before and after the handoff."""
    said = summary.customer_texts(handoff.transcript or [])
    said += [message.text for message in handoff.messages if message.sender == "customer"]
    return summary.ticket_draft(handoff.reason, said)


def message_line(message: HandoffMessage) -> Line:
    text = readable_line(message.sender, message.text)
    return Line(message.sender, text if text is not None else message.text, message.created_at, message.id, message.agent_name)


def need_labels(*also: str | None) -> list[str]:
    """The classifier's labels (or the demo shop's), plus any label in use."""
    store = current_app.extensions.get("need_classifier")
    labels: list[str] = []
    if store is not None:
        try:
            labels = list(store.current().labels)
        except ClassifierUnavailable:
            labels = []
    labels = labels or list(DEFAULT_NEEDS)
    for label in (*also, "other"):
        if label and label not in labels:
            labels.append(label)
    return sorted(labels, key=lambda label: (label == "other", label))


@dataclass
class CustomerPanel:
    tickets: list[Ticket]
    handoffs: list[Handoff]
    feedback: list[Feedback]
    average_score: float | None
    orders: list | None  # None when the CRM keeps no orders
    order_count: int
    lifetime_value: list[tuple[str, Decimal]]  # (currency, net amount), largest first


def customer_panel(session: Session, handoff: Handoff) -> CustomerPanel:
    """The customer of a handoff; past conversations are the other handoffs."""
    return customer_record(session, handoff.customer_id, excluding_handoff=handoff.id)


def customer_record(session: Session, customer_id: int, excluding_handoff: int | None = None) -> CustomerPanel:
    tickets, _ = find_tickets(session, customer_id=customer_id, limit=10)
    handoffs = list(
        session.scalars(
            select(Handoff)
            .where(Handoff.customer_id == customer_id, Handoff.id != (excluding_handoff or 0))
            .order_by(Handoff.id.desc())
            .limit(10)
        ).unique()
    )
    feedback = list(
        session.scalars(
            select(Feedback).where(Feedback.customer_id == customer_id).order_by(Feedback.id.desc()).limit(10)
        ).unique()
    )
    average = session.execute(select(func.avg(Feedback.score)).where(Feedback.customer_id == customer_id)).scalar()
    orders, order_count, value = None, 0, []
    order_model = getattr(models, "Order", None)  # fed by the shop's inbound webhooks
    if order_model is not None:
        orders = list(
            session.scalars(
                select(order_model)
                .where(order_model.customer_id == customer_id)
                .order_by(order_model.ordered_at.desc())
                .limit(5)
            ).unique()
        )
        # A cancelled order is listed (with its badge) but was never a purchase.
        kept = (order_model.customer_id == customer_id, order_model.status != "cancelled")
        order_count = session.execute(select(func.count()).select_from(order_model).where(*kept)).scalar_one()
        totals = session.execute(
            select(order_model.currency, func.sum(order_model.amount - order_model.refunded_amount))
            .where(*kept)
            .group_by(order_model.currency)
        ).all()
        value = sorted(((currency, Decimal(total or 0)) for currency, total in totals), key=lambda t: -t[1])
    return CustomerPanel(
        tickets=tickets,
        handoffs=handoffs,
        feedback=feedback,
        average_score=round(float(average), 1) if average is not None else None,
        orders=orders,
        order_count=order_count,
        lifetime_value=value,
    )


def seconds_since(moment: datetime | None) -> float:
    return (utcnow() - moment).total_seconds() if moment else 0.0


def handoff_state(handoff: Handoff, agent_id: int) -> dict:
    """Who has the handoff and what it is about, as the conversation page shows it."""
    return {
        "id": handoff.id,
        "status": handoff.status,
        "agent_name": handoff.agent_name,
        "agent_email": handoff.agent_email,
        "mine": handoff.agent_id is not None and handoff.agent_id == agent_id,
        "category": handoff.category,
        "ticket": handoff.ticket_number,
    }
