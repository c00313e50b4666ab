"""Dead letters: what a long-running worker could not handle, set aside so that it carries on.

The follower and the RabbitMQ consumer read whatever a chat visitor made
Rasa store; the webhook worker reads rows other code wrote and receivers'
answers; the nightly recompute reads every customer's orders. One item none
of them can handle must cost that item, never the process: a process that
exits stops `make run` (honcho stops everything when one process ends), and
one that meets the same item again after every restart stays down.

So a worker that cannot handle an item calls ``set_aside``: one row in
``dead_letters`` says where it came from (``source``: follower, consumer,
webhooks, insights), where it is there (``position``: the broker event's
id, the message's key, the delivery's id, the customer's id), what went
wrong and an escaped, bounded excerpt with email addresses masked; one log
line gives the dead letter's id, never a customer's email address. Then the
worker goes on with the next item. Recording is idempotent per (source,
position): an item read again after a restart is recorded, and logged, once.

Text goes through ``clean_text`` before it is stored: a lone UTF-16
surrogate (JSON may carry ``"\\ud800"``) cannot be encoded for SQLite or
PostgreSQL and becomes U+FFFD; a NUL character, which PostgreSQL's text
refuses, is dropped.
"""

from __future__ import annotations

import logging
import re
import traceback

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError, StatementError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from .db import utcnow
from .models import DeadLetter

log = logging.getLogger("crm_backend.dead_letters")

REPLACEMENT = "\ufffd"
EXCERPT_CHARS = 1000
ERROR_CHARS = 500
_SURROGATE = re.compile("[\ud800-\udfff]")
# C0 controls but tab and newline, and DEL: shown as \xNN in excerpts.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
_EMAIL = re.compile(r"[\w.%+'-]+@[\w-]+(?:\.[\w-]+)+")


def clean_text(text: str) -> str:
    """``text`` as a database can store it: lone surrogates replaced by U+FFFD, NUL dropped."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    if not text.isascii():
        text = _SURROGATE.sub(REPLACEMENT, text)
    return text


def mask_emails(text: str) -> str:
    return _EMAIL.sub("<email>", text)


def excerpt(raw: str | bytes | None, limit: int = EXCERPT_CHARS) -> str:
    """The start of ``raw`` for an operator: escaped (surrogates, bytes that are
    not UTF-8 and control characters as backslash escapes), email addresses
    masked, at most ``limit`` characters."""
    if raw is None:
        return ""
    if isinstance(raw, (bytes, bytearray, memoryview)):
        text = bytes(raw[: limit * 4]).decode("utf-8", "backslashreplace")
    else:
        text = str(raw)[: limit * 2]
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    text = _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)
    text = mask_emails(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(error: BaseException) -> str:
    """One line about ``error`` that is safe to log and store: its class, its
    message (the driver's, without the statement and its parameters), where it
    was raised; email addresses masked, at most ERROR_CHARS characters."""
    cause = error.orig if isinstance(error, StatementError) and error.orig is not None else error
    message = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    text = f"{type(error).__name__}: {message}" if message else type(error).__name__
    frames = traceback.extract_tb(error.__traceback__) if error.__traceback__ is not None else []
    if frames:
        frame = frames[-1]
        text += f" (at {frame.filename.rsplit('/', 1)[-1]}:{frame.lineno})"
    return excerpt(text, ERROR_CHARS)


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` says the database is away or busy, not that the item is wrong:
    then the worker keeps the item and tries again later instead of setting it aside."""
    if isinstance(error, (OperationalError, InterfaceError, PoolTimeout)):
        return True
    return bool(getattr(error, "connection_invalidated", False))


def _insert(session: Session):
    dialect = session.get_bind().dialect.name
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(dialect)
    if insert is None:
        raise RuntimeError(f"dead letters are kept on SQLite and PostgreSQL, not on {dialect}")
    return insert


def set_aside(session: Session, *, source: str, position: object, error: BaseException | str, raw: str | bytes | None = None) -> int | None:
    """Record an item a worker could not handle, and log it; the dead letter's id,
    or None if it was recorded before (or could not be recorded: then logged too).

    Rolls back whatever ``session`` has pending first (the failed unit of work)
    and commits the dead letter. Never raises for a database error: the worker
    carries on either way.
    """
    reason = describe(error) if isinstance(error, BaseException) else excerpt(error, ERROR_CHARS)
    where = excerpt(str(position), 128)
    try:
        session.rollback()
        statement = (
            _insert(session)(DeadLetter)
            .values(source=source, position=where, error=reason, excerpt=excerpt(raw), created_at=utcnow())
            .on_conflict_do_nothing(index_elements=["source", "position"])
            .returning(DeadLetter.id)
        )
        dead_letter_id = session.execute(statement).scalar()
        session.commit()
    except SQLAlchemyError as failure:
        session.rollback()
        log.error("%s: could not set aside %s (%s); recording it failed: %s", source, where, reason, describe(failure))
        return None
    if dead_letter_id is not None:
        log.warning("%s: set aside %s as dead letter %d: %s", source, where, dead_letter_id, reason)
    return dead_letter_id
