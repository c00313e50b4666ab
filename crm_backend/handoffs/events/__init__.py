"""Rasa's conversation events, as the CRM reads them: one job, two sources.

While a person has a conversation the bot is paused, but every customer
message is still an event that Rasa publishes to its event broker. The CRM
follows that broker for two things: it copies the messages of conversations
with an open handoff into ``handoff_messages``, where the agent console shows
them — the customer's, and the assistant's (it may still be helping while the
request waits for a person) — and it counts every customer message of every
conversation into ``conversations`` (crm_backend/conversations.py), for the
dashboard's containment rate.

Rasa's broker is one of two transports, so there are two event sources, side
by side, both run by ``crm handoffs follow`` (crm_backend/handoffs/commands.py):

- ``sql``: the SQL event broker of the embedded default, an ``events`` table
  of ``id, sender_id, data`` read from where it left off;
- ``amqp``: the Pika (RabbitMQ) event broker of the scaled profile
  (``--broker amqp://...``), a queue consumed message by message.

This module is what both do with one event: read it (``parse_event``), count
it (``count_customer_message``), copy it into its open handoff
(``copy_customer_message``, which also takes the assistant's messages), or
all of that at once (``handle_event``). An agent's reply is stored when it is
sent (handoffs/service.py), and a presence signal (joined, typing, left) is
no message: bot events without text are not copied.

An event is whatever a chat visitor made Rasa store, so nothing in one may stop
a source: its text is cleaned before it is stored (a lone surrogate becomes
U+FFFD, NUL is dropped, ``read_user_event``), and an event it cannot read or
store (not JSON, the wrong shape, a row the database refuses) is set aside as
a dead letter (crm_backend/dead_letters.py) while the source moves on. Only
the database being away or busy makes it read the event again.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ... import conversations, dead_letters
from ...models import Handoff
from .. import service


@dataclass
class OpenHandoff:
    id: int
    since: float  # epoch seconds: messages from then on belong to the handoff


class BadEvent(ValueError):
    """A broker event this code cannot read: not JSON, not an object, or a customer message of the wrong shape."""


# Epoch seconds a datetime can hold (years 1970 to 9999).
_LATEST_TIMESTAMP = 253402300799.0


def _valid_timestamp(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and 0 <= value <= _LATEST_TIMESTAMP


def parse_event(data: str | bytes) -> dict:
    """The broker event's JSON object, a customer message's fields checked and cleaned; BadEvent if it cannot be read."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = bytes(data).decode("utf-8", "replace")
    if not isinstance(data, str):
        raise BadEvent(f"the event is {type(data).__name__}, not JSON text")
    try:
        event = json.loads(data)
    except RecursionError:
        raise BadEvent("the event's JSON is nested too deeply") from None
    except ValueError as error:
        raise BadEvent(f"the event is not JSON ({getattr(error, 'msg', error)})") from None
    if not isinstance(event, dict):
        raise BadEvent(f"the event is a JSON {type(event).__name__}, not an object")
    if event.get("event") == "user":
        _check_user_event(event)
    elif event.get("event") == "bot":
        _check_bot_event(event)
    return event


def _check_bot_event(event: dict) -> None:
    """The fields of an assistant's message the CRM uses, checked and cleaned (in place)."""
    message = event.get("text")
    if message is not None and not isinstance(message, str):
        raise BadEvent("the assistant's message's text is not a string")
    if "timestamp" in event and not _valid_timestamp(event["timestamp"]):
        raise BadEvent("the assistant's message's timestamp is not a time")
    for name in ("data", "metadata"):
        if event.get(name) is not None and not isinstance(event[name], dict):
            raise BadEvent(f"the assistant's message's {name} is not an object")
    if message is not None:
        event["text"] = dead_letters.clean_text(message)


def _check_user_event(event: dict) -> None:
    """The fields of a customer message the CRM uses: their types checked, their text cleaned (in place)."""
    message = event.get("text")
    if message is not None and not isinstance(message, str):
        raise BadEvent("the customer message's text is not a string")
    if "timestamp" in event and not _valid_timestamp(event["timestamp"]):
        raise BadEvent("the customer message's timestamp is not a time")
    metadata = event.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise BadEvent("the customer message's metadata is not an object")
    for name in ("input_channel", "sender_id", "message_id"):
        value = event.get(name)
        if value is not None and not isinstance(value, str):
            raise BadEvent(f"the customer message's {name} is not a string")
        if value is not None:
            event[name] = dead_letters.clean_text(value)
    if message is not None:
        event["text"] = dead_letters.clean_text(message)
    if metadata is not None and isinstance(metadata.get("email"), str):
        metadata["email"] = dead_letters.clean_text(metadata["email"])


def is_customer_message(event: dict) -> bool:
    message = event.get("text")
    return (
        event.get("event") == "user"
        and isinstance(message, str)
        and bool(message.strip())
        and not message.startswith("EXTERNAL: ")
    )


def is_bot_message(event: dict) -> bool:
    """An assistant's message with text: not an agent's reply, not a presence signal."""
    message = event.get("text")
    metadata = event.get("metadata") if isinstance(event.get("metadata"), dict) else {}
    return event.get("event") == "bot" and isinstance(message, str) and bool(message.strip()) and "handoff_agent" not in metadata


MAX_BUTTON_TITLE = 80


def _button_titles(buttons) -> list[str]:
    if not isinstance(buttons, list):
        return []
    titles = [b.get("title") for b in buttons[:12] if isinstance(b, dict)]
    return [dead_letters.clean_text(" ".join(t.split()))[:MAX_BUTTON_TITLE] for t in titles if isinstance(t, str) and t.strip()]


def message_of(event: dict) -> tuple[str, str]:
    """(sender, text) of a message as the console shows it: a button the customer
    chose by its title (the widget sends it as ``metadata.button_title``), the
    assistant's buttons under its text."""
    if event.get("event") == "bot":
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        titles = _button_titles(data.get("buttons"))
        text = event["text"] + ("\nButtons: " + " · ".join(titles) if titles else "")
        return "bot", text
    text = event["text"]
    metadata = event.get("metadata") if isinstance(event.get("metadata"), dict) else {}
    title = metadata.get("button_title")
    if text.startswith("/") and isinstance(title, str) and title.strip():
        text = dead_letters.clean_text(" ".join(title.split()))[:MAX_BUTTON_TITLE]
    return "customer", text


def read_user_event(data: str | bytes) -> dict | None:
    """A customer's message event (not an EXTERNAL: trigger of the system), cleaned; None for other events; BadEvent."""
    event = parse_event(data)
    return event if is_customer_message(event) else None


def event_timestamp(event: dict | None) -> float | None:
    """The event's time in epoch seconds, None if it has none a datetime can hold."""
    timestamp = (event or {}).get("timestamp")
    return float(timestamp) if _valid_timestamp(timestamp) else None


def count_customer_message(session, sender_id: str, event: dict, handed_off: bool) -> bool:
    """Count one customer message of a conversation (not committed); False if counted before or not countable."""
    timestamp = event_timestamp(event)
    if timestamp is None or len(sender_id or "") > 128:
        return False
    metadata = event.get("metadata") if isinstance(event.get("metadata"), dict) else {}
    return conversations.record_user_message(
        session,
        sender_id,
        datetime.fromtimestamp(timestamp, tz=timezone.utc),
        channel=conversations.channel_name(event.get("input_channel")),
        customer_id=conversations.customer_id_for(session, metadata.get("email")),
        handed_off=handed_off,
    )


def copy_customer_message(session, handoff: OpenHandoff, event_key: str, event: dict) -> bool:
    """Store one customer (or assistant) message in its open handoff, committed; False if older than the handoff or stored before.

    ``event_key`` identifies the event at its source (unique per handoff), so
    reading an event twice stores it once.
    """
    timestamp = event_timestamp(event)
    sent = timestamp if timestamp is not None else time.time()
    if sent < handoff.since:
        return False
    record = session.get(Handoff, handoff.id)
    try:
        sent_at = datetime.fromtimestamp(sent, tz=timezone.utc)
        sender, text = message_of(event)
        message = dead_letters.clean_text(text[:20000])
        if service.add_customer_message(session, record, message, event_key, sender=sender, sent_at=sent_at) is None:
            return False
        session.commit()
        return True
    except IntegrityError:
        session.rollback()  # another follower or consumer stored it first
        return False


def copy_bot_message(session, sender_id: str, event_key: str, event: dict) -> bool:
    """Store one of the assistant's messages in the conversation's open handoff, if it has one."""
    row = session.execute(
        select(Handoff.id, Handoff.created_at).where(
            Handoff.conversation_id == sender_id, Handoff.status.in_(service.ACTIVE)
        )
    ).first()
    if row is None:
        return False
    return copy_customer_message(session, OpenHandoff(row.id, row.created_at.timestamp()), event_key, event)


def handle_event(session, sender_id: str, event_key: str, data: str | dict) -> tuple[bool, bool]:
    """Everything the CRM does with one broker event, committed: (counted, stored in a handoff).

    ``data`` is the event's JSON, or the object ``parse_event`` made of it. A
    customer's message is counted for its conversation and, while the
    conversation has an open handoff, copied into it; so is an assistant's
    message (not counted). Other events are ignored; one that cannot be read
    raises BadEvent.
    """
    event = data if isinstance(data, dict) else parse_event(data)
    if not sender_id:
        return False, False
    if is_bot_message(event):
        return False, copy_bot_message(session, dead_letters.clean_text(sender_id), event_key, event)
    if not is_customer_message(event):
        return False, False
    sender_id = dead_letters.clean_text(sender_id)
    handoffs = session.execute(
        select(Handoff.id, Handoff.created_at, Handoff.status)
        .where(Handoff.conversation_id == sender_id)
        .order_by(Handoff.id.desc())
    ).all()
    counted = count_customer_message(session, sender_id, event, handed_off=bool(handoffs))
    session.commit()
    open_one = next((row for row in handoffs if row.status in service.ACTIVE), None)
    if open_one is None:
        return counted, False
    return counted, copy_customer_message(session, OpenHandoff(open_one.id, open_one.created_at.timestamp()), event_key, event)
