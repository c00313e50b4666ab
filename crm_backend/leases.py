"""Leases: at most one holder of a job at a time, across processes and machines.

A row per job in ``job_leases``. Taking it is one conditional UPDATE (free,
or its lease ran out), which SQLite and PostgreSQL both apply atomically,
so of two processes asking at once exactly one gets it. The holder renews
it while working; a holder that dies without giving it back (kill -9, a
lost machine) blocks the job only until the lease runs out. Each call
commits on its own short transaction, never inside the caller's work.
"""

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .db import utcnow
from .models import JobLease


def new_holder() -> str:
    """This process, recognisably: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class LeaseState:
    name: str
    holder: str | None
    expires_at: datetime | None
    last_started_at: datetime | None
    last_finished_at: datetime | None
    last_failed_at: datetime | None
    last_error: str | None

    def held(self, now: datetime) -> bool:
        return self.holder is not None and self.expires_at is not None and self.expires_at > now


def _ensure_row(session: Session, name: str) -> None:
    if session.get(JobLease, name) is not None:
        return
    try:
        session.execute(insert(JobLease).values(name=name))
        session.commit()
    except IntegrityError:
        session.rollback()  # another process added it at the same moment


def state(session: Session, name: str) -> LeaseState:
    _ensure_row(session, name)
    row = session.execute(select(JobLease).where(JobLease.name == name).execution_options(populate_existing=True)).scalar_one()
    return LeaseState(row.name, row.holder, row.expires_at, row.last_started_at, row.last_finished_at, row.last_failed_at, row.last_error)


def acquire(session: Session, name: str, holder: str, *, ttl: timedelta, now: datetime | None = None) -> bool:
    """Take the lease if it is free or ran out; True if this holder has it now."""
    now = now or utcnow()
    _ensure_row(session, name)
    result = session.execute(
        update(JobLease)
        .where(JobLease.name == name, (JobLease.holder.is_(None)) | (JobLease.expires_at <= now) | (JobLease.holder == holder))
        .values(holder=holder, expires_at=now + ttl, last_started_at=now)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return result.rowcount == 1


def renew(session: Session, name: str, holder: str, *, ttl: timedelta, now: datetime | None = None) -> bool:
    """Extend the lease; False if this holder lost it (it ran out and someone took it)."""
    now = now or utcnow()
    result = session.execute(
        update(JobLease)
        .where(JobLease.name == name, JobLease.holder == holder)
        .values(expires_at=now + ttl)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return result.rowcount == 1


def release(session: Session, name: str, holder: str, *, error: str | None = None, now: datetime | None = None) -> None:
    """Give the lease back, recording when the job finished (or failed, and why)."""
    now = now or utcnow()
    outcome = {"last_finished_at": now} if error is None else {"last_failed_at": now, "last_error": error[:2000]}
    session.execute(
        update(JobLease)
        .where(JobLease.name == name, JobLease.holder == holder)
        .values(holder=None, expires_at=None, **outcome)
        .execution_options(synchronize_session=False)
    )
    session.commit()
