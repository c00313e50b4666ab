"""The ticket form's validation and the actions that open or drop a ticket."""

import json

import pytest
import respx
import httpx
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet

from actions import tickets
from actions.crm_client import CRMClient, CRMError, CRMUnavailable
from actions.tickets import (
    ActionCreateTicket,
    ActionDiscardTicket,
    ValidateTicketForm,
    form_run_key,
    is_too_vague,
    normalise_order_number,
    ticket_subject,
)

from tests.actions.conftest import make_tracker, signed_in

TICKET = {"id": 7, "number": "TCK-000007", "status": "open", "category": "damaged_or_defective"}


def tracker_with_form(sender="ada@example.com", started=1700000000.0, slots=None, metadata=None) -> Tracker:
    tracker = make_tracker(sender, slots=slots, metadata=metadata)
    tracker.events.insert(0, {"event": "active_loop", "name": "ticket_form", "timestamp": started})
    return tracker


@pytest.mark.parametrize(
    "text",
    ["I have a problem with my order", "I want to make a complaint", "something is wrong", "help!!"],
)
def test_saying_only_that_something_is_wrong_is_too_vague(text):
    assert is_too_vague(text)


@pytest.mark.parametrize(
    "text", ["my new blender arrived cracked and leaks", "the kettle switch is broken", "parcel never arrived"]
)
def test_saying_what_went_wrong_is_enough(text):
    assert not is_too_vague(text)


def test_order_numbers_are_normalised_and_nonsense_is_refused():
    assert normalise_order_number(" nw482913 ") == "NW-482913"
    assert normalise_order_number("NW-100245") == "NW-100245"
    assert normalise_order_number("12345") is None


def test_subject_is_the_first_sentence_with_the_order():
    subject = ticket_subject("My blender arrived cracked. It also leaks everywhere.", "NW-482913")
    assert subject == "Order NW-482913: My blender arrived cracked."
    assert ticket_subject("x " * 100, "none").endswith("…")
    assert len(ticket_subject("word " * 100, None)) <= 80


def test_idempotency_key_is_stable_within_a_form_run_and_new_for_the_next():
    first = form_run_key(tracker_with_form(started=1.0))
    assert first == form_run_key(tracker_with_form(started=1.0))
    assert first != form_run_key(tracker_with_form(started=2.0))
    assert first != form_run_key(tracker_with_form(sender="someone-else", started=1.0))


def test_a_bad_email_is_asked_again(dispatcher):
    result = ValidateTicketForm().validate_customer_email("ada at example", dispatcher, make_tracker(), {})

    assert result == {"customer_email": None}
    assert dispatcher.messages[0]["response"] == "utter_invalid_email"


def test_a_good_email_is_kept_lower_case(dispatcher):
    result = ValidateTicketForm().validate_customer_email(" Ada@Example.COM ", dispatcher, make_tracker(), {})

    assert result == {"customer_email": "ada@example.com"}


def test_a_vague_description_is_asked_for_again_and_a_real_one_kept_verbatim(dispatcher):
    form = ValidateTicketForm()
    assert form.validate_problem_description("I have a problem", dispatcher, make_tracker(), {}) == {
        "problem_description": None
    }
    words = "My blender arrived CRACKED and leaks!!"
    assert form.validate_problem_description(words, dispatcher, make_tracker(), {}) == {
        "problem_description": words
    }


class FakeCRM:
    def __init__(self, result=None, error=None):
        self.result, self.error, self.calls = result, error, []

    async def create_ticket(self, **kwargs):
        self.calls.append(kwargs)
        if self.error:
            raise self.error
        return self.result


@pytest.fixture
def crm(monkeypatch):
    def install(**kwargs):
        fake = FakeCRM(**kwargs)
        monkeypatch.setattr(tickets, "crm", fake)
        return fake

    return install


SLOTS = {
    "customer_email": "ada@example.com",
    "customer_name": "Ada Lovelace",
    "order_number": "NW-482913",
    "problem_description": "my new blender arrived cracked and leaks",
}


@pytest.mark.asyncio
async def test_the_ticket_is_opened_with_the_customers_words_and_the_number_is_told(crm, dispatcher):
    fake = crm(result=TICKET)
    tracker = tracker_with_form(slots=SLOTS, metadata=signed_in("ada@example.com", "Ada Lovelace"))

    events = await ActionCreateTicket().run(dispatcher, tracker, {})

    call = fake.calls[0]
    assert call["description"] == "my new blender arrived cracked and leaks"
    assert call["subject"] == "Order NW-482913: my new blender arrived cracked and leaks"
    assert call["customer_email"] == "ada@example.com"
    assert call["customer_name"] == "Ada Lovelace"
    assert call["conversation_id"] == "ada@example.com"
    assert call["idempotency_key"] == form_run_key(tracker)
    assert dispatcher.messages[0]["response"] == "utter_ticket_created"
    assert dispatcher.messages[0]["last_ticket_number"] == "TCK-000007"
    assert SlotSet("last_ticket_number", "TCK-000007") in events
    assert SlotSet("problem_description", None) in events


@pytest.mark.asyncio
async def test_crm_down_is_said_honestly_and_the_details_are_kept_for_a_retry(crm, dispatcher):
    crm(error=CRMUnavailable("timed out"))

    events = await ActionCreateTicket().run(dispatcher, tracker_with_form(slots=SLOTS), {})

    assert dispatcher.messages[0]["response"] == "utter_ticket_system_down"
    assert events == []


@pytest.mark.asyncio
async def test_a_claimed_address_opens_a_ticket_but_carries_no_name(crm, dispatcher):
    fake = crm(result=TICKET)

    await ActionCreateTicket().run(dispatcher, tracker_with_form(sender="widget-1", slots=SLOTS), {})

    assert fake.calls[0]["customer_email"] == "ada@example.com"
    assert fake.calls[0]["customer_name"] is None
    assert dispatcher.messages[0]["response"] == "utter_ticket_created"


@pytest.mark.asyncio
async def test_a_verified_customer_who_never_said_hello_sends_the_signed_name(crm, dispatcher):
    fake = crm(result=TICKET)
    slots = {name: value for name, value in SLOTS.items() if name != "customer_name"}
    tracker = tracker_with_form(sender="widget-1", slots=slots, metadata=signed_in("ada@example.com", "Ada Lovelace"))

    await ActionCreateTicket().run(dispatcher, tracker, {})

    assert fake.calls[0]["customer_name"] == "Ada Lovelace"


@pytest.mark.asyncio
async def test_only_a_verified_identity_with_the_same_email_marks_the_ticket_verified(crm, dispatcher):
    fake = crm(result=TICKET)

    # Typed (sender id ada@...): a claim; signed in as Ada; signed in as someone else.
    await ActionCreateTicket().run(dispatcher, tracker_with_form(slots=SLOTS), {})
    await ActionCreateTicket().run(dispatcher, tracker_with_form(sender="widget-1", slots=SLOTS, metadata=signed_in("ada@example.com")), {})
    await ActionCreateTicket().run(
        dispatcher, tracker_with_form(sender="widget-1", slots=SLOTS, metadata=signed_in("grace@example.com")), {}
    )

    assert [call["customer_verified"] for call in fake.calls] == [False, True, False]


@pytest.mark.asyncio
@respx.mock
async def test_the_client_sends_customer_verified_with_a_ticket_and_defaults_it_to_false():
    route = respx.post("http://crm.test/api/v1/tickets").mock(return_value=httpx.Response(201, json=TICKET))
    client = CRMClient(base_url="http://crm.test", api_key="k", timeout=0.5, retries=0)
    fields = {"customer_email": "ada@example.com", "subject": "s", "description": "d", "conversation_id": "c"}

    await client.create_ticket(**fields, idempotency_key="k1")
    await client.create_ticket(**fields, idempotency_key="k2", customer_verified=True)

    assert [json.loads(call.request.read())["customer_verified"] for call in route.calls] == [False, True]


@pytest.mark.asyncio
@respx.mock
@pytest.mark.parametrize("status", [401, 403, 500, 400])
async def test_trouble_on_our_side_is_never_blamed_on_the_customers_address(monkeypatch, dispatcher, status):
    # Through the real client: the CRM refusing the bot's key is what once
    # made the bot ask customers to check their email address.
    problem = {"type": "about:blank", "status": status, "title": "Refused", "detail": "A valid API key is required"}
    respx.post("http://crm.test/api/v1/tickets").mock(return_value=httpx.Response(status, json=problem))
    monkeypatch.setattr(tickets, "crm", CRMClient(base_url="http://crm.test", api_key="k", timeout=0.5, retries=0))

    events = await ActionCreateTicket().run(dispatcher, tracker_with_form(slots=SLOTS), {})

    assert [m["response"] for m in dispatcher.messages] == ["utter_ticket_system_down"]
    assert events == []  # the address and the words are kept for "try again"


@pytest.mark.asyncio
async def test_todays_ticket_cap_is_said_politely_with_a_person_offered(crm, dispatcher):
    crm(error=CRMError(429, {"type": "https://northwind.example/problems/daily-limit", "status": 429}))

    events = await ActionCreateTicket().run(dispatcher, tracker_with_form(slots=SLOTS), {})

    assert [m["response"] for m in dispatcher.messages] == ["utter_ticket_daily_limit"]
    assert SlotSet("customer_email", None) not in events


@pytest.mark.asyncio
async def test_yes_to_a_person_after_the_cap_starts_the_handoff(crm, dispatcher):
    fake = crm(result=TICKET)
    tracker = tracker_with_form(slots=SLOTS)
    tracker.events.append({"event": "bot", "text": "...", "metadata": {"utter_action": "utter_ticket_daily_limit"}})
    tracker.latest_message["intent"] = {"name": "affirm", "confidence": 1.0}

    events = await ActionCreateTicket().run(dispatcher, tracker, {})

    assert fake.calls == []
    assert events == [{"event": "followup", "timestamp": None, "name": "handoff_form"}]


@pytest.mark.asyncio
async def test_a_refused_email_is_forgotten_so_it_can_be_asked_again(crm, dispatcher):
    crm(error=CRMError(422, {"detail": "customer_email: not a valid email"}))

    events = await ActionCreateTicket().run(dispatcher, tracker_with_form(slots=SLOTS), {})

    assert dispatcher.messages[0]["response"] == "utter_ticket_rejected"
    assert events == [SlotSet("customer_email", None)]


@pytest.mark.asyncio
async def test_nothing_to_send_asks_for_the_problem(crm, dispatcher):
    fake = crm(result=TICKET)

    await ActionCreateTicket().run(dispatcher, tracker_with_form(slots={"customer_email": "a@b.co"}), {})

    assert fake.calls == []
    assert dispatcher.messages[0]["response"] == "utter_ask_ticket_form_problem_description"


@pytest.mark.asyncio
async def test_declining_forgets_the_details(dispatcher):
    events = await ActionDiscardTicket().run(dispatcher, tracker_with_form(slots=SLOTS), {})

    assert dispatcher.messages[0]["response"] == "utter_ticket_discarded"
    assert SlotSet("problem_description", None) in events


@pytest.mark.asyncio
@respx.mock
async def test_the_client_retries_a_create_with_the_same_idempotency_key():
    route = respx.post("http://crm.test/api/v1/tickets").mock(
        side_effect=[httpx.ConnectError("reset"), httpx.Response(201, json=TICKET)]
    )
    client = CRMClient(base_url="http://crm.test", api_key="k", timeout=0.5, retries=2)

    ticket = await client.create_ticket(
        customer_email="ada@example.com",
        subject="s",
        description="d",
        conversation_id="c",
        idempotency_key="chat-ticket-abc",
    )

    assert ticket == TICKET
    keys = [call.request.headers["Idempotency-Key"] for call in route.calls]
    assert keys == ["chat-ticket-abc", "chat-ticket-abc"]
    assert route.calls.last.request.read() == route.calls[0].request.read()


@pytest.mark.asyncio
async def test_an_email_the_conversation_already_has_is_not_asked_for(dispatcher):
    form = ValidateTicketForm()

    from_sender = await form.extract_customer_email(dispatcher, make_tracker("Ada@Example.com"), {})
    anonymous = await form.extract_customer_email(dispatcher, make_tracker("widget-1234"), {})

    assert from_sender == {"customer_email": "ada@example.com"}
    assert anonymous == {}


@pytest.mark.asyncio
async def test_a_verified_identity_fills_the_forms_email(dispatcher):
    tracker = make_tracker("widget-1234", metadata=signed_in("Ada@Example.com"))

    assert await ValidateTicketForm().extract_customer_email(dispatcher, tracker, {}) == {"customer_email": "ada@example.com"}


@pytest.mark.asyncio
async def test_a_need_the_shop_handles_in_person_gets_the_offer_of_a_person(crm, dispatcher):
    crm(result={**TICKET, "needs_human": True})

    await ActionCreateTicket().run(dispatcher, tracker_with_form(slots=SLOTS), {})

    assert [m["response"] for m in dispatcher.messages] == ["utter_ticket_created", "utter_offer_human_for_need"]


@pytest.mark.asyncio
async def test_yes_to_that_offer_starts_the_handoff_instead_of_a_second_ticket(crm, dispatcher):
    fake = crm(result=TICKET)
    tracker = tracker_with_form(slots=SLOTS)
    tracker.events.append({"event": "bot", "text": "...", "metadata": {"utter_action": "utter_offer_human_for_need"}})
    tracker.latest_message["intent"] = {"name": "affirm", "confidence": 1.0}

    events = await ActionCreateTicket().run(dispatcher, tracker, {})

    assert fake.calls == [] and dispatcher.messages == []
    assert events == [{"event": "followup", "timestamp": None, "name": "handoff_form"}]
