"""Where a waiting customer stands: their place in the queue and the expected wait.

The expected wait is measured, not promised: the median of the waits
(requested → claimed, the dashboard's "Handoff times") of the handoffs claimed
in the last ``WAIT_WINDOW``, once there are at least ``MIN_SAMPLES`` of them;
otherwise there is no estimate and the widget shows only the place in the queue.
"""

from __future__ import annotations

from datetime import timedelta
from statistics import median

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..db import utcnow
from ..models import Handoff

WAIT_WINDOW = timedelta(days=28)
MIN_SAMPLES = 3
# The newest waits are the best guide; more would only cost time.
MAX_SAMPLES = 500


def position(session: Session, handoff: Handoff) -> int | None:
    """1 for the next to be claimed; None unless the handoff is waiting."""
    if handoff.status != "queued":
        return None
    ahead = session.scalar(
        select(func.count()).select_from(Handoff).where(Handoff.status == "queued", Handoff.id < handoff.id)
    )
    return (ahead or 0) + 1


def expected_wait_seconds(session: Session, now=None) -> float | None:
    """The median measured wait of recent handoffs, None with too few to say."""
    now = now or utcnow()
    rows = session.execute(
        select(Handoff.created_at, Handoff.claimed_at)
        .where(Handoff.claimed_at.is_not(None), Handoff.claimed_at >= now - WAIT_WINDOW)
        .order_by(Handoff.claimed_at.desc())
        .limit(MAX_SAMPLES)
    ).all()
    waits = [max(0.0, (claimed - created).total_seconds()) for created, claimed in rows]
    if len(waits) < MIN_SAMPLES:
        return None
    return round(median(waits), 1)


def place(session: Session, handoff: Handoff) -> dict:
    """``{position, expected_wait_seconds}`` of a handoff, for the assistant to tell the customer."""
    return {"position": position(session, handoff), "expected_wait_seconds": expected_wait_seconds(session)}
