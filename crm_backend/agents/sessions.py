"""Agents' console sessions, kept on the server (the agent_sessions table).

The console's cookie holds a random token and this table its SHA-256, its
agent, when it expires and whether it ended. Signing out ends one session
here, so a copied cookie stops working at once; "sign out everywhere" (the
console's button, or ``DELETE /api/v1/agents/{id}/sessions``) ends all of an
agent's sessions.
"""

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from .. import audit
from ..db import utcnow
from ..models import AgentSession

# Ended and expired sessions are kept a day (to tell "signed out" from
# "never existed" when reading logs), then removed at the agent's next sign-in.
KEEP_ENDED = timedelta(days=1)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(session: Session, agent_id: int, lifetime: timedelta) -> tuple[AgentSession, str]:
    """A new session for the agent (not committed) and the token for its cookie."""
    now = utcnow()
    session.execute(
        delete(AgentSession).where(
            AgentSession.agent_id == agent_id,
            or_(AgentSession.expires_at < now - KEEP_ENDED, AgentSession.ended_at < now - KEEP_ENDED),
        )
    )
    token = secrets.token_urlsafe(32)
    record = AgentSession(agent_id=agent_id, token_hash=token_hash(token), created_at=now, expires_at=now + lifetime)
    session.add(record)
    session.flush()
    return record, token


def find_active(session: Session, token: str, now: datetime | None = None) -> AgentSession | None:
    """The session of ``token`` if it has neither ended nor expired."""
    record = session.scalars(select(AgentSession).where(AgentSession.token_hash == token_hash(token))).one_or_none()
    if record is None or not is_active(record, now):
        return None
    return record


def is_active(record: AgentSession | None, now: datetime | None = None) -> bool:
    return record is not None and record.ended_at is None and record.expires_at > (now or utcnow())


def end(session: Session, token: str) -> None:
    """End the session of ``token`` (not committed); ending one twice is harmless."""
    session.execute(
        update(AgentSession)
        .where(AgentSession.token_hash == token_hash(token), AgentSession.ended_at.is_(None))
        .values(ended_at=utcnow())
    )


def end_all(session: Session, agent_id: int) -> int:
    """End every session of the agent (not committed), audited; how many were still active."""
    now = utcnow()
    ended = session.execute(
        update(AgentSession)
        .where(AgentSession.agent_id == agent_id, AgentSession.ended_at.is_(None), AgentSession.expires_at > now)
        .values(ended_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    audit.record(session, "agent.signed_out_everywhere", "agent", agent_id, None, {"sessions_ended": ended})
    return ended
