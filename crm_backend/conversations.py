"""Conversations with the assistant, counted for the containment rate.

``crm handoffs follow`` reads every customer message from Rasa's event
broker and calls ``record_user_message``; asking for a person calls
``mark_handed_off`` in the handoff's own transaction. A conversation is
contained when the customer wrote at least once and it was never handed off
(docs/console.md "Dashboard").

Counting is idempotent: a message counts only if it is later than the last
one counted (``last_message_at``), checked and changed in one UPDATE, so the
follower may read the same events again after a restart, or next to a second
follower, without counting anything twice.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .models import Conversation, Customer, normalise_email

# Rasa's input channels in the CRM's words; others keep Rasa's name.
RASA_CHANNELS = {"socketio": "chat", "rest": "api"}


def channel_name(input_channel: str | None) -> str:
    if not input_channel:
        return "chat"
    return RASA_CHANNELS.get(input_channel, input_channel)[:32]


def _insert_new(session: Session, **values) -> bool:
    """Insert the conversation unless it exists (a concurrent writer may add it first); True if inserted."""
    dialect = session.get_bind().dialect.name
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(dialect)
    if insert is None:
        raise RuntimeError(f"conversations are counted on SQLite and PostgreSQL, not on {dialect}")
    statement = (
        insert(Conversation)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["conversation_id"])
        # rowcount is not reliable for an ORM insert on every driver (psycopg
        # gave 0 for a written row); a returned id is.
        .returning(Conversation.id)
    )
    return session.execute(statement).first() is not None


def customer_id_for(session: Session, email: object) -> int | None:
    if not isinstance(email, str) or "@" not in email or len(email) > 320:
        return None
    return session.scalar(select(Customer.id).where(Customer.email == normalise_email(email)))


def record_user_message(
    session: Session,
    conversation_id: str,
    sent_at: datetime,
    *,
    channel: str = "chat",
    customer_id: int | None = None,
    handed_off: bool = False,
) -> bool:
    """Count one customer message (not committed); False if it was counted before."""
    inserted = _insert_new(
        session,
        conversation_id=conversation_id,
        channel=channel,
        customer_id=customer_id,
        started_at=sent_at,
        last_message_at=sent_at,
        user_messages=1,
        handed_off=handed_off,
    )
    if inserted:
        return True
    counted = session.execute(
        update(Conversation)
        .where(
            Conversation.conversation_id == conversation_id,
            # A row made by a handoff before any message was counted has none yet.
            or_(Conversation.last_message_at < sent_at, Conversation.user_messages == 0),
        )
        .values(
            user_messages=Conversation.user_messages + 1,
            last_message_at=sent_at,
            started_at=case((Conversation.started_at > sent_at, sent_at), else_=Conversation.started_at),
            customer_id=func.coalesce(Conversation.customer_id, customer_id),
            handed_off=or_(Conversation.handed_off, handed_off),
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    return counted == 1


def mark_handed_off(
    session: Session, conversation_id: str, at: datetime, *, channel: str = "chat", customer_id: int | None = None
) -> None:
    """The conversation was handed to a person (not committed); adds it if no message was counted yet."""
    inserted = _insert_new(
        session,
        conversation_id=conversation_id,
        channel=channel,
        customer_id=customer_id,
        started_at=at,
        last_message_at=at,
        user_messages=0,
        handed_off=True,
    )
    if not inserted:
        session.execute(
            update(Conversation)
            .where(Conversation.conversation_id == conversation_id)
            .values(handed_off=True, customer_id=func.coalesce(Conversation.customer_id, customer_id))
            .execution_options(synchronize_session=False)
        )
