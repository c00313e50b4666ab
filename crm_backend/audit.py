"""Audit events: who changed what, with before and after, in the change's transaction."""

from datetime import date, datetime

from flask import g, has_request_context
from sqlalchemy import select
from sqlalchemy.orm import Session

from .db import keyset_page
from .models import AuditEvent

CLI_ACTOR = ("cli", None, "crm command line")


def current_actor() -> tuple[str, int | None, str]:
    """(actor_type, actor_id, actor_name) of whoever makes the current change."""
    if has_request_context():
        # Whoever authenticated the request says who it is: a signed-in agent
        # of the console (crm_backend/console/auth.py) or an API key
        # (crm_backend/auth.py); audit knows neither, so neither import cycle.
        actor = g.get("audit_actor")
        if actor is not None:
            return actor
    return CLI_ACTOR


def jsonable(value):
    if isinstance(value, (datetime, date)):  # a datetime is a date too: both ISO 8601
        return value.isoformat()
    return value


def snapshot(entity, fields: tuple[str, ...]) -> dict:
    return {name: jsonable(getattr(entity, name)) for name in fields}


def changed(before: dict, after: dict) -> tuple[dict, dict]:
    """Only the keys whose values differ, from both sides."""
    keys = [key for key in after if before.get(key) != after[key]]
    return {key: before.get(key) for key in keys}, {key: after[key] for key in keys}


def record(
    session: Session,
    action: str,
    entity_type: str,
    entity_id: int,
    before: dict | None = None,
    after: dict | None = None,
) -> AuditEvent:
    """Add an event to the session; it commits (or not) with the change itself."""
    actor_type, actor_id, actor_name = current_actor()
    event = AuditEvent(
        actor_type=actor_type,
        actor_id=actor_id,
        actor_name=actor_name,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        before=before,
        after=after,
    )
    session.add(event)
    return event


def find_events(
    session: Session,
    *,
    entity_type: str | None = None,
    entity_id: int | None = None,
    action: str | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> tuple[list[AuditEvent], int | None]:
    """Newest first; returns the page and the id to continue before (or None)."""
    query = select(AuditEvent)
    if entity_type is not None:
        query = query.where(AuditEvent.entity_type == entity_type)
    if entity_id is not None:
        query = query.where(AuditEvent.entity_id == entity_id)
    if action is not None:
        query = query.where(AuditEvent.action == action)
    return keyset_page(session, query, AuditEvent.id, limit=limit, cursor=before_id, newest_first=True)
