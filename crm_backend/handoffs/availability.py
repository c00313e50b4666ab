"""Is a person there to take a handoff? Support hours and agents online.

Support hours are a setting, e.g. ``SUPPORT_HOURS="mon-fri 08:00-18:00;
sat 09:00-14:00"`` in ``SUPPORT_TIMEZONE`` (an IANA zone). An agent is
online while their console is open: the console's live stream and pages
mark ``agents.last_seen_at``, and an agent seen within
``AGENT_ONLINE_SECONDS`` counts. Outside hours or with nobody online the
assistant says so, offers a ticket, and the handoff waits in the queue.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from ..db import utcnow
from ..models import Agent

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_HOURS = "mon-fri 08:00-18:00; sat 09:00-14:00"
DEFAULT_TIMEZONE = "Europe/London"
DEFAULT_ONLINE_SECONDS = 120
# Writing last_seen_at on every console poll would be a write per half second.
SEEN_RESOLUTION = timedelta(seconds=30)
_RULE = re.compile(r"^\s*(?P<first>[a-z]{3})(?:-(?P<last>[a-z]{3}))?\s+(?P<start>\d{1,2}:\d{2})-(?P<end>\d{1,2}:\d{2})\s*$")


class HoursError(ValueError):
    pass


@dataclass(frozen=True)
class Opening:
    day: int  # 0 = Monday
    start: time
    end: time


def parse_hours(text: str) -> list[Opening]:
    """``"mon-fri 08:00-18:00; sat 09:00-14:00"`` as openings; ``""`` means always open."""
    openings = []
    for rule in filter(None, (part.strip().lower() for part in text.split(";"))):
        match = _RULE.match(rule)
        if not match or match["first"] not in DAYS or (match["last"] and match["last"] not in DAYS):
            raise HoursError(f"support hours {rule!r} are not like 'mon-fri 08:00-18:00'")
        first, last = DAYS.index(match["first"]), DAYS.index(match["last"] or match["first"])
        try:
            start, end = time.fromisoformat(match["start"].zfill(5)), time.fromisoformat(match["end"].zfill(5))
        except ValueError as error:
            raise HoursError(f"support hours {rule!r}: {error}") from error
        if end <= start:
            raise HoursError(f"support hours {rule!r} end before they start")
        days = range(first, last + 1) if first <= last else [*range(first, 7), *range(0, last + 1)]
        openings.extend(Opening(day, start, end) for day in days)
    return openings


def within_hours(openings: list[Opening], now: datetime, zone: ZoneInfo) -> bool:
    if not openings:
        return True
    local = now.astimezone(zone)
    return any(o.day == local.weekday() and o.start <= local.time() < o.end for o in openings)


def agents_online(session: Session, now: datetime, online_seconds: float) -> int:
    since = now - timedelta(seconds=online_seconds)
    return session.scalar(select(func.count()).select_from(Agent).where(Agent.last_seen_at >= since)) or 0


def current(session: Session, now: datetime | None = None) -> dict:
    """{within_hours, agents_online, available, hours} for the assistant and the API."""
    config = current_app.config
    now = now or utcnow()
    hours_text = config.get("SUPPORT_HOURS", DEFAULT_HOURS)
    zone = ZoneInfo(config.get("SUPPORT_TIMEZONE", DEFAULT_TIMEZONE))
    inside = within_hours(parse_hours(hours_text), now, zone)
    online = agents_online(session, now, float(config.get("AGENT_ONLINE_SECONDS", DEFAULT_ONLINE_SECONDS)))
    return {"within_hours": inside, "agents_online": online, "available": inside and online > 0, "hours": hours_text}


_last_marked: dict[int, float] = {}


def mark_seen_soon(sessionmaker, agent_id: int) -> None:
    """``mark_seen`` in its own short transaction, at most every 30 s per agent and process."""
    import time as clock

    now = clock.monotonic()
    if now - _last_marked.get(agent_id, float("-inf")) < SEEN_RESOLUTION.total_seconds():
        return
    _last_marked[agent_id] = now
    with sessionmaker() as session:
        mark_seen(session, agent_id)
        session.commit()


def mark_seen(session: Session, agent_id: int, now: datetime | None = None) -> None:
    """Record that the agent has the console open (at most one write per 30 s)."""
    now = now or utcnow()
    session.execute(
        update(Agent)
        .where(Agent.id == agent_id, or_(Agent.last_seen_at.is_(None), Agent.last_seen_at < now - SEEN_RESOLUTION))
        .values(last_seen_at=now)
        .execution_options(synchronize_session=False)
    )


def check_settings(config) -> None:
    """Fail at start, in one sentence, on support hours or a zone that cannot be read."""
    parse_hours(config.get("SUPPORT_HOURS", DEFAULT_HOURS))
    try:
        ZoneInfo(config.get("SUPPORT_TIMEZONE", DEFAULT_TIMEZONE))
    except (KeyError, ValueError) as error:
        raise HoursError(f"SUPPORT_TIMEZONE {config.get('SUPPORT_TIMEZONE')!r} is not a known time zone") from error
