"""Ticket status look-ups: plain words, and never a stranger's ticket."""

from datetime import datetime, timezone

import pytest
from rasa_sdk.events import SlotSet

from actions import ticket_status
from actions.crm_client import CRMUnavailable
from actions.ticket_status import (
    ActionListMyTickets,
    ActionTicketStatus,
    ValidateTicketStatusForm,
    how_long_ago,
    normalise_ticket_number,
)

from tests.actions.conftest import make_tracker

TICKET = {
    "number": "TCK-000042",
    "subject": "Kettle leaks",
    "status": "pending",
    "customer_email": "ada@example.com",
    "updated_at": "2026-11-20T09:00:00+00:00",
}


class FakeCRM:
    def __init__(self, ticket=None, reply=None, tickets=(), error=None):
        self.ticket, self.reply, self.tickets, self.error = ticket, reply, list(tickets), error
        self.asked_replies = []

    async def get_ticket(self, number):
        if self.error:
            raise self.error
        return self.ticket if self.ticket and self.ticket["number"] == number else None

    async def latest_public_reply(self, number):
        self.asked_replies.append(number)
        return self.reply

    async def open_tickets_of(self, email):
        if self.error:
            raise self.error
        return [t for t in self.tickets if t["customer_email"] == email]


@pytest.fixture
def crm(monkeypatch):
    def install(**kwargs):
        fake = FakeCRM(**kwargs)
        monkeypatch.setattr(ticket_status, "crm", fake)
        return fake

    return install


def test_ticket_numbers_are_written_the_crms_way():
    assert normalise_ticket_number("tck-42") == "TCK-000042"
    assert normalise_ticket_number(" TCK-000123 ") == "TCK-000123"
    assert normalise_ticket_number("42") is None


def test_times_are_said_in_plain_words():
    now = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
    assert how_long_ago("2026-11-23T09:00:00+00:00", now) == "3 hours ago"
    assert how_long_ago("2026-11-22T08:00:00Z", now) == "yesterday"
    assert how_long_ago("2026-10-01T08:00:00+00:00", now) == "on 1 October 2026"
    assert how_long_ago("not a time", now) == "recently"


def test_a_ticket_number_in_any_spelling_is_accepted(dispatcher):
    result = ValidateTicketStatusForm().validate_ticket_number("tck-42", dispatcher, make_tracker(), {})
    assert result == {"ticket_number": "TCK-000042"}


@pytest.mark.asyncio
async def test_the_owner_hears_the_status_and_the_teams_latest_reply(crm, dispatcher):
    crm(ticket=TICKET, reply={"body": "Could you send a photo of the base?", "author_type": "agent"})
    tracker = make_tracker(slots={"ticket_number": "TCK-000042", "customer_email": "ada@example.com"})

    events = await ActionTicketStatus().run(dispatcher, tracker, {})

    status, reply = dispatcher.messages
    assert status["response"] == "utter_ticket_status_pending"
    assert status["ticket_subject"] == "Kettle leaks"
    assert reply["ticket_reply"] == "Could you send a photo of the base?"
    assert events == [SlotSet("ticket_number", None), SlotSet("csat_pending", True)]


@pytest.mark.asyncio
async def test_someone_elses_ticket_looks_like_no_ticket_at_all(crm, dispatcher):
    fake = crm(ticket=TICKET, reply={"body": "secret", "author_type": "agent"})
    tracker = make_tracker(slots={"ticket_number": "TCK-000042", "customer_email": "mallory@example.com"})

    await ActionTicketStatus().run(dispatcher, tracker, {})

    [message] = dispatcher.messages
    assert message["response"] == "utter_ticket_not_found"
    assert fake.asked_replies == []


@pytest.mark.asyncio
async def test_crm_down_during_a_lookup_is_said_honestly(crm, dispatcher):
    crm(error=CRMUnavailable("timeout"))
    tracker = make_tracker(slots={"ticket_number": "TCK-000042", "customer_email": "ada@example.com"})

    await ActionTicketStatus().run(dispatcher, tracker, {})

    assert dispatcher.messages[0]["response"] == "utter_tickets_unavailable"


@pytest.mark.asyncio
async def test_my_tickets_lists_only_the_customers_open_ones(crm, dispatcher):
    other = {**TICKET, "number": "TCK-000050", "customer_email": "grace@example.com"}
    crm(tickets=[TICKET, other])

    await ActionListMyTickets().run(dispatcher, make_tracker(slots={"customer_email": "ada@example.com"}), {})

    [message] = dispatcher.messages
    assert message["response"] == "utter_my_open_tickets"
    assert "TCK-000042: Kettle leaks (pending" in message["ticket_list"]
    assert "TCK-000050" not in message["ticket_list"]


@pytest.mark.asyncio
async def test_no_open_tickets_is_said(crm, dispatcher):
    crm(tickets=[])

    await ActionListMyTickets().run(dispatcher, make_tracker(slots={"customer_email": "new@example.com"}), {})

    assert dispatcher.messages[0]["response"] == "utter_no_open_tickets"
