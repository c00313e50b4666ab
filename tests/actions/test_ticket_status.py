"""Ticket status look-ups: plain words, only to a verified owner, and never a stranger's ticket."""

from datetime import datetime, timezone

import pytest
from rasa_sdk.events import SlotSet

from actions import ticket_status
from actions.crm_client import CRMAuthError, CRMUnavailable
from actions.ticket_status import (
    ActionListMyTickets,
    ActionTicketStatus,
    ValidateTicketStatusForm,
    how_long_ago,
    normalise_ticket_number,
)

from tests.actions.conftest import make_tracker, signed_in

TICKET = {
    "number": "TCK-000042",
    "subject": "Kettle leaks",
    "status": "pending",
    "customer_email": "ada@example.com",
    "conversation_id": "widget-ada-1",
    "updated_at": "2026-11-20T09:00:00+00:00",
}


class FakeCRM:
    def __init__(self, ticket=None, reply=None, tickets=(), error=None):
        self.ticket, self.reply, self.tickets, self.error = ticket, reply, list(tickets), error
        self.asked_replies, self.asked_lists = [], []

    async def get_ticket(self, number):
        if self.error:
            raise self.error
        return self.ticket if self.ticket and self.ticket["number"] == number else None

    async def latest_public_reply(self, number):
        self.asked_replies.append(number)
        return self.reply

    async def open_tickets_of(self, email):
        self.asked_lists.append(email)
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


ADA = signed_in("ada@example.com", "Ada Lovelace")
SECRETS = ("Kettle leaks", "Could you send a photo")


def said(dispatcher) -> str:
    return " ".join(str(value) for message in dispatcher.messages for value in message.values())


@pytest.mark.asyncio
async def test_the_verified_owner_hears_the_status_and_the_teams_latest_reply(crm, dispatcher):
    crm(ticket=TICKET, reply={"body": "Could you send a photo of the base?", "author_type": "agent"})
    tracker = make_tracker("widget-ada-2", slots={"ticket_number": "TCK-000042"}, metadata=ADA)

    events = await ActionTicketStatus().run(dispatcher, tracker, {})

    status, reply = dispatcher.messages
    assert status["response"] == "utter_ticket_status_pending"
    assert status["ticket_subject"] == "Kettle leaks"
    assert reply["ticket_reply"] == "Could you send a photo of the base?"
    assert events == [SlotSet("ticket_number", None), SlotSet("csat_pending", True)]


@pytest.mark.asyncio
async def test_someone_elses_ticket_looks_like_no_ticket_at_all_to_a_verified_customer(crm, dispatcher):
    fake = crm(ticket=TICKET, reply={"body": "secret", "author_type": "agent"})
    tracker = make_tracker("widget-mallory", slots={"ticket_number": "TCK-000042"}, metadata=signed_in("mallory@example.com"))

    await ActionTicketStatus().run(dispatcher, tracker, {})

    [message] = dispatcher.messages
    assert message["response"] == "utter_ticket_not_found"
    assert fake.asked_replies == []


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "tracker",
    [
        make_tracker("ada@example.com", slots={"ticket_number": "TCK-000042"}),
        make_tracker("widget-7", slots={"ticket_number": "TCK-000042"}, metadata={"email": "ada@example.com"}),
        make_tracker("widget-7", slots={"ticket_number": "TCK-000042", "customer_email": "ada@example.com"}),
    ],
    ids=["sender id", "unsigned metadata", "typed email"],
)
async def test_claiming_the_owners_address_shows_nothing_of_the_ticket(crm, dispatcher, tracker):
    fake = crm(ticket=TICKET, reply={"body": "Could you send a photo of the base?", "author_type": "agent"})

    await ActionTicketStatus().run(dispatcher, tracker, {})

    [message] = dispatcher.messages
    assert message["response"] == "utter_tickets_need_sign_in"
    assert not any(secret in said(dispatcher) for secret in SECRETS)
    assert "pending" not in said(dispatcher)
    assert fake.asked_replies == []


@pytest.mark.asyncio
async def test_the_conversation_that_opened_the_ticket_hears_its_status_and_nothing_more(crm, dispatcher):
    fake = crm(ticket=TICKET, reply={"body": "Could you send a photo of the base?", "author_type": "agent"})
    tracker = make_tracker("widget-ada-1", slots={"ticket_number": "TCK-000042"})

    events = await ActionTicketStatus().run(dispatcher, tracker, {})

    status, how = dispatcher.messages
    assert status == {**status, "response": "utter_ticket_status_brief_pending", "ticket_number": "TCK-000042"}
    assert how["response"] == "utter_ticket_details_need_sign_in"
    assert not any(secret in said(dispatcher) for secret in SECRETS)
    assert fake.asked_replies == []
    assert SlotSet("ticket_number", None) in events


@pytest.mark.asyncio
async def test_another_conversation_hears_the_same_whether_the_ticket_exists_or_not(crm, dispatcher):
    crm(ticket=TICKET)
    tracker = make_tracker("widget-someone-else", slots={"ticket_number": "TCK-000042"})
    await ActionTicketStatus().run(dispatcher, tracker, {})
    existing = dispatcher.messages

    other = type(dispatcher)()
    missing = make_tracker("widget-someone-else", slots={"ticket_number": "TCK-000999"})
    await ActionTicketStatus().run(other, missing, {})

    assert existing == other.messages == [{**existing[0], "response": "utter_tickets_need_sign_in"}]


@pytest.mark.asyncio
async def test_a_visitor_nothing_could_be_shown_to_is_not_asked_for_a_number(dispatcher):
    form = ValidateTicketStatusForm()

    anonymous = await form.required_slots(["ticket_number"], dispatcher, make_tracker("ada@example.com"), {})
    opened_one_here = await form.required_slots(
        ["ticket_number"], dispatcher, make_tracker("widget-1", slots={"last_ticket_number": "TCK-000042"}), {}
    )
    verified = await form.required_slots(["ticket_number"], dispatcher, make_tracker("widget-1", metadata=ADA), {})

    assert anonymous == []
    assert opened_one_here == verified == ["ticket_number"]


@pytest.mark.asyncio
async def test_crm_down_during_a_lookup_is_said_honestly(crm, dispatcher):
    crm(error=CRMUnavailable("timeout"))
    tracker = make_tracker(slots={"ticket_number": "TCK-000042"}, metadata=ADA)

    await ActionTicketStatus().run(dispatcher, tracker, {})

    assert dispatcher.messages[0]["response"] == "utter_tickets_unavailable"


@pytest.mark.asyncio
async def test_the_bots_key_refused_during_a_lookup_is_a_problem_on_our_side(crm, dispatcher):
    crm(error=CRMAuthError(401, {"detail": "bad key"}))

    await ActionListMyTickets().run(dispatcher, make_tracker(metadata=ADA), {})

    assert [m["response"] for m in dispatcher.messages] == ["utter_tickets_unavailable"]


@pytest.mark.asyncio
async def test_my_tickets_lists_only_the_verified_customers_open_ones(crm, dispatcher):
    other = {**TICKET, "number": "TCK-000050", "customer_email": "grace@example.com"}
    fake = crm(tickets=[TICKET, other])

    await ActionListMyTickets().run(dispatcher, make_tracker(slots={"customer_email": "grace@example.com"}, metadata=ADA), {})

    [message] = dispatcher.messages
    assert fake.asked_lists == ["ada@example.com"]
    assert message["response"] == "utter_my_open_tickets"
    assert "TCK-000042: Kettle leaks (pending" in message["ticket_list"]
    assert "TCK-000050" not in message["ticket_list"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "tracker",
    [
        make_tracker("ada@example.com"),
        make_tracker("widget-7", metadata={"email": "ada@example.com"}),
        make_tracker("widget-7", slots={"customer_email": "ada@example.com"}),
    ],
    ids=["sender id", "unsigned metadata", "typed email"],
)
async def test_claiming_an_address_lists_no_tickets(crm, dispatcher, tracker):
    fake = crm(tickets=[TICKET])

    await ActionListMyTickets().run(dispatcher, tracker, {})

    assert [m["response"] for m in dispatcher.messages] == ["utter_tickets_need_sign_in"]
    assert fake.asked_lists == []


@pytest.mark.asyncio
async def test_no_open_tickets_is_said(crm, dispatcher):
    crm(tickets=[])

    await ActionListMyTickets().run(dispatcher, make_tracker(metadata=signed_in("new@example.com")), {})

    assert dispatcher.messages[0]["response"] == "utter_no_open_tickets"
