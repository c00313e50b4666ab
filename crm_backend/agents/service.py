"""Agents and their passwords (argon2id via argon2-cffi)."""

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import audit
from ..models import Agent, normalise_email
from ..problems import ApiProblem

MIN_PASSWORD_LENGTH = 10
AGENT_AUDIT_FIELDS = ("email", "name", "is_admin")

_hasher = PasswordHasher()


class PasswordTooShort(ApiProblem):
    def __init__(self):
        super().__init__(
            422,
            f"The password must have at least {MIN_PASSWORD_LENGTH} characters.",
            errors=[{"in": "json", "field": "password", "message": f"Shorter than {MIN_PASSWORD_LENGTH} characters."}],
        )


def find_agent(session: Session, email: str) -> Agent | None:
    return session.scalars(select(Agent).where(Agent.email == normalise_email(email))).one_or_none()


def create_agent(session: Session, *, email: str, password: str, name: str | None = None, is_admin: bool = False) -> Agent:
    """Add an agent (not committed); 409 if the e-mail is taken, 422 if the password is short."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordTooShort()
    existing = find_agent(session, email)
    if existing is not None:
        raise ApiProblem(409, f"An agent with the e-mail {existing.email} already exists (id {existing.id}).", existing_id=existing.id)
    agent = Agent(
        email=email,
        name=name or email.split("@", 1)[0],
        password_hash=_hasher.hash(password),
        is_admin=is_admin,
    )
    session.add(agent)
    session.flush()
    # The hash is not audited: the audit log is readable by admins.
    audit.record(session, "agent.created", "agent", agent.id, None, audit.snapshot(agent, AGENT_AUDIT_FIELDS))
    return agent


def verify_password(session: Session, email: str, password: str) -> Agent | None:
    """The agent if ``password`` is theirs, else None; upgrades outdated hashes."""
    agent = find_agent(session, email)
    if agent is None:
        # Hash anyway so that unknown e-mails take as long as wrong passwords.
        _hasher.hash(password)
        return None
    try:
        _hasher.verify(agent.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(agent.password_hash):
        agent.password_hash = _hasher.hash(password)
    return agent
