"""Record and find satisfaction scores."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import audit, chat_limits
from ..db import keyset_page
from ..insights import service as insights
from ..models import Customer, Feedback, Handoff, normalise_email
from ..problems import field_problem
from ..webhooks import outbox

FEEDBACK_AUDIT_FIELDS = ("score", "comment", "category", "conversation_id", "customer_id", "handoff_id", "agent_email")


def _handoff_for(session: Session, handoff_id: int | None, conversation_id: str | None) -> Handoff | None:
    if handoff_id is not None:
        handoff = session.get(Handoff, handoff_id)
        if handoff is None:
            raise field_problem("handoff_id", f"There is no handoff {handoff_id}.")
        return handoff
    if conversation_id is None:
        return None
    # Scores asked for after a handoff rate the person who handled it.
    return session.scalars(
        select(Handoff)
        .where(Handoff.conversation_id == conversation_id, Handoff.status == "resolved")
        .order_by(Handoff.resolved_at.desc(), Handoff.id.desc())
        .limit(1)
    ).first()


def record_feedback(
    session: Session,
    *,
    score: int,
    comment: str | None,
    customer: Customer | None,
    conversation_id: str | None = None,
    handoff_id: int | None = None,
    channel: str = "chat",
) -> Feedback:
    from ..needs import classify_or_other

    handoff = _handoff_for(session, handoff_id, conversation_id)
    # One score per conversation and per handoff (chat_limits).
    chat_limits.check_not_rated(
        session, conversation_id=conversation_id, handoff_id=handoff.id if handoff is not None else None
    )
    comment = comment.strip() if comment else None
    category, confidence = classify_or_other(comment) if comment else (None, None)
    if customer is None and handoff is not None:
        customer = handoff.customer
    feedback = Feedback(
        score=score,
        comment=comment or None,
        category=category,
        category_confidence=confidence,
        conversation_id=conversation_id,
        customer_id=customer.id if customer is not None else None,
        handoff_id=handoff.id if handoff is not None else None,
        agent_id=handoff.agent_id if handoff is not None else None,
        channel=channel,
    )
    session.add(feedback)
    session.flush()
    session.refresh(feedback)
    if customer is not None:
        insights.refresh_customers(session, [customer.id])
    audit.record(session, "feedback.received", "feedback", feedback.id, None, audit.snapshot(feedback, FEEDBACK_AUDIT_FIELDS))
    outbox.emit(session, "feedback.received", feedback)
    return feedback


def find_feedback(
    session: Session,
    *,
    conversation_id: str | None = None,
    customer_email: str | None = None,
    max_score: int | None = None,
    limit: int = 20,
    before_id: int | None = None,
) -> tuple[list[Feedback], int | None]:
    """Feedback newest first, a page at a time."""
    query = select(Feedback)
    if conversation_id is not None:
        query = query.where(Feedback.conversation_id == conversation_id)
    if customer_email is not None:
        query = query.join(Customer, Feedback.customer_id == Customer.id).where(
            Customer.email == normalise_email(customer_email)
        )
    if max_score is not None:
        query = query.where(Feedback.score <= max_score)
    return keyset_page(session, query, Feedback.id, limit=limit, cursor=before_id, newest_first=True)
