"""What chat may create: daily caps per customer and conversation, one score per conversation.

Anyone can open the chat and claim an address, so what the assistant creates
for a chat (``channel == "chat"``) is capped per UTC day, for the customer's
e-mail and for the conversation alike (docs/security.md):
``CHAT_DAILY_TICKETS``, ``CHAT_DAILY_HANDOFFS`` and ``CHAT_DAILY_FEEDBACK``
(0: no cap). Over a cap the API answers 429 with the type ``.../daily-limit``
and a Retry-After until the next UTC midnight. A conversation (and a
handoff) is rated once: a second score is 409 ``.../already-rated``. An
Idempotency-Key replay of the first request answers before any of this.
"""

from datetime import datetime, time, timedelta, timezone

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .db import utcnow
from .models import Customer, Feedback, Handoff, Ticket, normalise_email
from .problems import ApiProblem, problem_type

DAILY_LIMIT = problem_type("daily-limit")
ALREADY_RATED = problem_type("already-rated")
CHAT_CHANNEL = "chat"

# What is capped: its model, its setting and the words for the problem.
CAPPED = {
    "tickets": (Ticket, "CHAT_DAILY_TICKETS", "tickets"),
    "handoffs": (Handoff, "CHAT_DAILY_HANDOFFS", "requests for a person"),
    "feedback": (Feedback, "CHAT_DAILY_FEEDBACK", "scores"),
}


def start_of_utc_day(now: datetime) -> datetime:
    return datetime.combine(now.astimezone(timezone.utc).date(), time.min, tzinfo=timezone.utc)


def _customer_id(session: Session, customer_id: int | None, customer_email: str | None) -> int | None:
    if customer_id is not None or customer_email is None:
        return customer_id
    return session.scalars(select(Customer.id).where(Customer.email == normalise_email(customer_email))).first()


def check_daily_cap(
    session: Session,
    kind: str,
    *,
    channel: str | None,
    customer_id: int | None = None,
    customer_email: str | None = None,
    conversation_id: str | None = None,
    now: datetime | None = None,
) -> None:
    """Raise a 429 ApiProblem if one more ``kind`` ("tickets", "handoffs", "feedback")
    for this chat customer or conversation would pass today's cap."""
    model, setting, words = CAPPED[kind]
    cap = int(current_app.config[setting])
    if channel != CHAT_CHANNEL or cap <= 0:
        return
    now = now or utcnow()
    since = start_of_utc_day(now)
    today = select(func.count()).select_from(model).where(model.channel == CHAT_CHANNEL, model.created_at >= since)
    counted = (
        ("customer", model.customer_id, _customer_id(session, customer_id, customer_email)),
        ("conversation", model.conversation_id, conversation_id),
    )
    for who, column, value in counted:
        if value is None:
            continue
        if session.scalar(today.where(column == value)) >= cap:
            retry_after = max(1, int((since + timedelta(days=1) - now).total_seconds()))
            raise ApiProblem(
                429,
                f"This {who} has reached today's limit of {cap} {words} from chat; "
                "it starts again at midnight UTC.",
                headers={"Retry-After": str(retry_after)},
                type=DAILY_LIMIT,
                limit=cap,
            )


def check_not_rated(session: Session, *, conversation_id: str | None, handoff_id: int | None) -> None:
    """Raise a 409 ApiProblem if this conversation or handoff already has a score."""
    conditions = []
    if conversation_id is not None:
        conditions.append(("conversation", Feedback.conversation_id == conversation_id))
    if handoff_id is not None:
        conditions.append(("handoff", Feedback.handoff_id == handoff_id))
    for what, condition in conditions:
        existing = session.scalars(select(Feedback.id).where(condition).order_by(Feedback.id).limit(1)).first()
        if existing is not None:
            raise ApiProblem(
                409,
                f"This {what} has already been rated (feedback {existing}); a conversation is rated once.",
                type=ALREADY_RATED,
                existing_id=existing,
            )
