"""action_identify_customer: a name only for a verified customer, and never a broken greeting."""

import pytest
from rasa_sdk.events import SlotSet

from actions import actions
from actions.actions import ActionIdentifyCustomer
from actions.crm_client import CRMAuthError, CRMUnavailable

from tests.actions.conftest import make_tracker, signed_in

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


def names_in(events):
    return [e["value"] for e in events if e["name"] in ("customer_name", "customer_first_name") and e["value"]]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "tracker",
    [
        make_tracker("ada@example.com"),
        make_tracker("widget-7", metadata={"email": "ada@example.com"}),
        make_tracker("widget-7", slots={"customer_email": "ada@example.com"}, text="ada@example.com"),
    ],
    ids=["sender id", "unsigned metadata", "typed email"],
)
async def test_a_claimed_address_gets_no_name(crm, dispatcher, tracker):
    fake = crm(customer=ADA)

    events = await ActionIdentifyCustomer().run(dispatcher, tracker, {})

    assert names_in(events) == []
    assert SlotSet("customer_known", True) not in events
    assert fake.asked == []


@pytest.mark.asyncio
async def test_a_verified_customer_is_greeted_by_the_name_the_host_signed(crm, dispatcher):
    fake = crm(customer=ADA)

    events = await ActionIdentifyCustomer().run(
        dispatcher, make_tracker("widget-7", metadata=signed_in("ada@example.com", "Ada King")), {}
    )

    assert SlotSet("customer_first_name", "Ada") in events
    assert SlotSet("customer_name", "Ada King") in events
    assert SlotSet("customer_email", "ada@example.com") in events
    assert SlotSet("customer_known", True) in events
    assert fake.asked == []
    assert dispatcher.messages == []  # the greeting itself is utter_greet's job


@pytest.mark.asyncio
async def test_a_verified_customer_without_a_signed_name_gets_the_crms(crm, dispatcher):
    fake = crm(customer=ADA)

    events = await ActionIdentifyCustomer().run(dispatcher, make_tracker("widget-7", metadata=signed_in("ada@example.com")), {})

    assert fake.asked == ["ada@example.com"]
    assert SlotSet("customer_first_name", "Ada") in events


@pytest.mark.asyncio
async def test_a_name_is_never_made_out_of_an_email_address(crm, dispatcher):
    crm(customer={**ADA, "name": "ada@example.com"})

    events = await ActionIdentifyCustomer().run(dispatcher, make_tracker("widget-7", metadata=signed_in("ada@example.com")), {})

    assert names_in(events) == []
    assert SlotSet("customer_known", False) in events


@pytest.mark.asyncio
@pytest.mark.parametrize("error", [CRMUnavailable("connection refused"), CRMAuthError(401, {"detail": "bad key"})])
async def test_crm_trouble_still_lets_the_greeting_go_on(crm, dispatcher, error):
    crm(error=error)

    events = await ActionIdentifyCustomer().run(dispatcher, make_tracker("widget-7", metadata=signed_in("ada@example.com")), {})

    assert SlotSet("customer_known", True) not in events
    assert SlotSet("customer_email", "ada@example.com") in events
    assert dispatcher.messages == []


@pytest.mark.asyncio
async def test_a_previous_customers_name_is_not_used_for_a_visitor_who_is_not_signed_in(crm, dispatcher):
    crm(customer=ADA)
    tracker = make_tracker(
        "widget-7", slots={"customer_known": True, "customer_name": "Ada Lovelace", "customer_first_name": "Ada"}
    )

    events = await ActionIdentifyCustomer().run(dispatcher, tracker, {})

    assert SlotSet("customer_known", False) in events
    assert SlotSet("customer_first_name", None) in events


@pytest.mark.asyncio
async def test_anonymous_visitor_does_not_call_the_crm(crm, dispatcher):
    fake = crm(customer=ADA)

    events = await ActionIdentifyCustomer().run(dispatcher, make_tracker("widget-session-42"), {})

    assert events == [] and fake.asked == []


@pytest.mark.asyncio
async def test_an_already_identified_customer_is_not_looked_up_again(crm, dispatcher):
    fake = crm(customer=ADA)
    tracker = make_tracker(
        "widget-7",
        slots={"customer_known": True, "customer_email": "ada@example.com"},
        metadata=signed_in("ada@example.com"),
    )

    assert await ActionIdentifyCustomer().run(dispatcher, tracker, {}) == []
    assert fake.asked == []
