"""Support hours and agents online decide whether a person can take a handoff now."""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from crm_backend.agents.service import create_agent
from crm_backend.db import get_session
from crm_backend.handoffs import availability
from crm_backend.handoffs.availability import HoursError, parse_hours, within_hours

LONDON = ZoneInfo("Europe/London")
HOURS = parse_hours("mon-fri 08:00-18:00; sat 09:00-14:00")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=LONDON)


@pytest.mark.parametrize(
    "moment, open_",
    [
        ("2026-11-23 08:00", True),  # Monday, opening
        ("2026-11-23 17:59", True),
        ("2026-11-23 18:00", False),  # closing time
        ("2026-11-28 13:30", True),  # Saturday
        ("2026-11-28 14:30", False),
        ("2026-11-29 12:00", False),  # Sunday
        ("2026-07-01 07:30", False),  # summer time: 07:30 local, not UTC
    ],
)
def test_support_hours_in_the_shops_time_zone(moment, open_):
    assert within_hours(HOURS, at(moment).astimezone(timezone.utc), LONDON) is open_


def test_no_hours_means_always_open_and_ranges_may_wrap_the_week():
    assert within_hours([], datetime.now(timezone.utc), LONDON)
    weekend = parse_hours("sat-mon 10:00-12:00")
    assert {opening.day for opening in weekend} == {5, 6, 0}


@pytest.mark.parametrize("text", ["weekdays 9-5", "mon-fri 18:00-08:00", "mon-fri 25:00-26:00", "xyz 08:00-09:00"])
def test_hours_that_cannot_be_read_fail_with_a_sentence(text):
    with pytest.raises(HoursError, match="support hours"):
        parse_hours(text)


def test_an_agent_with_the_console_open_recently_is_online(app):
    with app.app_context():
        session = get_session()
        agent = create_agent(session, email="alex@example.com", password="correct horse 1", name="Alex")
        session.commit()
        now = datetime.now(timezone.utc)
        assert availability.agents_online(session, now, 120) == 0
        availability.mark_seen(session, agent.id, now - timedelta(seconds=60))
        session.commit()
        assert availability.agents_online(session, now, 120) == 1
        assert availability.agents_online(session, now + timedelta(seconds=90), 120) == 0


def test_a_bad_setting_stops_the_app_at_start(tmp_path):
    from crm_backend import create_app

    with pytest.raises(HoursError):
        create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "SUPPORT_TIMEZONE": "Mars/Olympus"})
