"""action_identify_customer: who is writing, without ever breaking the greeting."""

import pytest
from rasa_sdk.events import SlotSet

from actions import actions
from actions.actions import ActionIdentifyCustomer, known_email
from actions.crm_client import CRMUnavailable

from tests.actions.conftest import make_tracker

ADA = {"id": 1, "name": "Ada Lovelace", "email": "ada@example.com", "phone": None}


class FakeCRM:
    """Stands in for CRMClient at the action boundary (the client has its own tests)."""

    def __init__(self, customer=None, error=None):
        self.customer, self.error, self.asked = customer, error, []

    async def find_customer_by_email(self, email):
        self.asked.append(email)
        if self.error:
            raise self.error
        return self.customer


@pytest.fixture
def crm(monkeypatch):
    def install(**kwargs):
        fake = FakeCRM(**kwargs)
        monkeypatch.setattr(actions, "crm", fake)
        return fake

    return install


def test_email_comes_from_message_metadata_before_the_sender_id():
    tracker = make_tracker(sender_id="ada@example.com", metadata={"email": "Grace@Example.com "})
    assert known_email(tracker) == "grace@example.com"


def test_sender_id_that_is_an_email_identifies_the_customer():
    assert known_email(make_tracker(sender_id="Ada@Example.com")) == "ada@example.com"


def test_anonymous_visitor_has_no_email():
    assert known_email(make_tracker(sender_id="3f0c2a9e-widget-session")) is None


@pytest.mark.asyncio
async def test_known_customer_fills_the_name_slots(crm, dispatcher):
    fake = crm(customer=ADA)

    events = await ActionIdentifyCustomer().run(dispatcher, make_tracker("ada@example.com"), {})

    assert fake.asked == ["ada@example.com"]
    assert SlotSet("customer_first_name", "Ada") in events
    assert SlotSet("customer_name", "Ada Lovelace") in events
    assert SlotSet("customer_known", True) in events
    assert dispatcher.messages == []  # the greeting itself is utter_greet's job


@pytest.mark.asyncio
async def test_unknown_customer_keeps_the_email_only(crm, dispatcher):
    crm(customer=None)

    events = await ActionIdentifyCustomer().run(dispatcher, make_tracker("new@example.com"), {})

    assert events == [SlotSet("customer_email", "new@example.com")]


@pytest.mark.asyncio
async def test_crm_down_still_lets_the_greeting_go_on(crm, dispatcher):
    crm(error=CRMUnavailable("connection refused"))

    events = await ActionIdentifyCustomer().run(dispatcher, make_tracker("ada@example.com"), {})

    assert SlotSet("customer_known", True) not in events
    assert dispatcher.messages == []


@pytest.mark.asyncio
async def test_anonymous_visitor_does_not_call_the_crm(crm, dispatcher):
    fake = crm(customer=ADA)

    events = await ActionIdentifyCustomer().run(dispatcher, make_tracker("widget-session-42"), {})

    assert events == [] and fake.asked == []


@pytest.mark.asyncio
async def test_already_identified_customer_is_not_looked_up_again(crm, dispatcher):
    fake = crm(customer=ADA)
    tracker = make_tracker("ada@example.com", slots={"customer_known": True})

    assert await ActionIdentifyCustomer().run(dispatcher, tracker, {}) == []
    assert fake.asked == []
