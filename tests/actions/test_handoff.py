"""The handoff form, the request to the CRM, and pausing the bot."""

import json

import httpx
import pytest
import respx
from rasa_sdk.events import ConversationPaused, SlotSet

from actions import handoff
from actions.crm_client import CRMAuthError, CRMClient, CRMError, CRMUnavailable
from actions.handoff import ActionRequestHandoff, ValidateHandoffForm, reason_in, transcript_of
from actions.tickets import form_run_key

from tests.actions.conftest import make_tracker, signed_in

HANDOFF = {"id": 3, "status": "queued", "conversation_id": "visitor-1"}


class FakeCRM:
    def __init__(self, result=None, error=None):
        self.result, self.error, self.calls = result, error, []

    async def create_handoff(self, **kwargs):
        self.calls.append(kwargs)
        if self.error:
            raise self.error
        return self.result


@pytest.fixture
def crm(monkeypatch):
    def install(**kwargs):
        fake = FakeCRM(**kwargs)
        monkeypatch.setattr(handoff, "crm", fake)
        return fake

    return install


def conversation(slots=None, started=1700000000.0, metadata=None):
    tracker = make_tracker("visitor-1", slots=slots, text="can I talk to a person", metadata=metadata)
    tracker.events[:0] = [
        {"event": "user", "text": "my blender arrived cracked", "timestamp": 1700000000.0, "parse_data": {}},
        {"event": "bot", "text": "Sorry to hear that! What's your email?", "timestamp": 1700000001.0},
        {"event": "user", "text": '/inform{"feedback_score":"1"}', "timestamp": 1700000002.0, "parse_data": {}},
        {"event": "user", "text": "EXTERNAL: give_feedback", "timestamp": 1700000003.0, "parse_data": {}},
        {"event": "slot", "name": "x", "value": 1},
        {"event": "active_loop", "name": "handoff_form", "timestamp": started},
    ]
    return tracker


@pytest.mark.parametrize(
    "text", ["can I talk to a human", "agent please", "I want to speak to a real person right now", "human please, I'm mo.salah@example.com"]
)
def test_a_bare_request_for_a_person_gives_no_reason(text):
    assert reason_in(text) is None


def test_a_request_that_says_why_is_its_own_reason():
    assert reason_in("I need to speak to someone about my late refund") == "I need to speak to someone about my late refund"
    assert len(reason_in("refund " * 200)) <= 300


def test_the_transcript_has_customer_and_bot_lines_with_times_and_no_internal_events():
    lines = transcript_of(conversation())
    # The payload no button offered (sent by the system, not typed) is left out.
    assert [line["sender"] for line in lines] == ["customer", "bot", "customer"]
    assert lines[0] == {"sender": "customer", "text": "my blender arrived cracked", "timestamp": "2023-11-14T22:13:20+00:00"}
    assert "EXTERNAL" not in " ".join(line["text"] for line in lines)
    assert "inform" not in " ".join(line["text"] for line in lines)


def test_a_button_the_customer_chose_is_its_title_and_the_widgets_greeting_is_left_out():
    tracker = make_tracker("visitor-1", text="can I talk to a person")
    tracker.events[:0] = [
        {"event": "user", "text": "/greet", "timestamp": 1700000000.0, "parse_data": {}},
        {"event": "bot", "text": "Hi! Shall I get a person?", "timestamp": 1700000001.0,
         "data": {"buttons": [{"title": "Yes, a person please", "payload": "/request_human"}, {"title": "No", "payload": "/deny"}]}},
        {"event": "user", "text": "/deny", "timestamp": 1700000002.0, "parse_data": {}},
        {"event": "user", "text": "/request_human", "timestamp": 1700000003.0, "parse_data": {},
         "metadata": {"button_title": "Talk to a person"}},
    ]
    texts = [line["text"] for line in transcript_of(tracker)]
    assert texts[:3] == ["Hi! Shall I get a person?", "No", "Talk to a person"]
    assert not any(text.startswith("/") or text.startswith("[") for text in texts)


def test_the_form_takes_the_reason_from_the_request_or_the_earlier_problem(dispatcher):
    form = ValidateHandoffForm()
    tracker = make_tracker(text="I need someone to help with my missing parcel")
    assert pytest.importorskip("asyncio").run(form.extract_handoff_reason(dispatcher, tracker, {})) == {
        "handoff_reason": "I need someone to help with my missing parcel"
    }
    tracker = make_tracker(text="human please", slots={"problem_description": "the kettle leaks"})
    assert pytest.importorskip("asyncio").run(form.extract_handoff_reason(dispatcher, tracker, {})) == {
        "handoff_reason": "the kettle leaks"
    }
    tracker = make_tracker(text="human please")
    assert pytest.importorskip("asyncio").run(form.extract_handoff_reason(dispatcher, tracker, {})) == {}
    # An answer to the form's email question is not a reason.
    tracker = make_tracker(text="mo.salah@example.com", slots={"requested_slot": "customer_email"})
    assert pytest.importorskip("asyncio").run(form.extract_handoff_reason(dispatcher, tracker, {})) == {}


def test_a_reason_is_one_line_and_a_button_press_is_not_a_reason(dispatcher):
    form = ValidateHandoffForm()
    assert form.validate_handoff_reason("  the boots\n are  too small ", dispatcher, make_tracker(), {}) == {
        "handoff_reason": "the boots are too small"
    }
    assert form.validate_handoff_reason("/deny", dispatcher, make_tracker(), {}) == {"handoff_reason": None}


@pytest.mark.asyncio
async def test_the_handoff_reaches_the_crm_and_the_bot_pauses(crm, dispatcher):
    fake = crm(result=HANDOFF)
    tracker = conversation(
        slots={"customer_email": "ada@example.com", "handoff_reason": "cracked blender", "last_ticket_number": "TCK-000007"}
    )

    events = await ActionRequestHandoff().run(dispatcher, tracker, {})

    call = fake.calls[0]
    assert call["conversation_id"] == "visitor-1"
    assert call["customer_email"] == "ada@example.com"
    assert call["reason"] == "cracked blender"
    assert call["ticket"] == "TCK-000007"
    assert call["transcript"][0]["text"] == "my blender arrived cracked"
    assert call["idempotency_key"] == form_run_key(tracker, "handoff_form", "handoff")
    assert dispatcher.messages[0]["response"] == "utter_handoff_queued"
    assert ConversationPaused() in events


@pytest.mark.asyncio
async def test_the_customer_hears_their_place_in_the_queue_and_the_expected_wait(crm, dispatcher):
    crm(result={**HANDOFF, "queue": {"position": 2, "expected_wait_seconds": 180.0}})
    tracker = conversation(slots={"customer_email": "ada@example.com", "handoff_reason": "cracked blender"})

    await ActionRequestHandoff().run(dispatcher, tracker, {})

    queued = dispatcher.messages[1]["custom"]
    assert queued == {"data": {"presence": "queued", "position": 2, "expected_wait_seconds": 180.0}}


@pytest.mark.asyncio
async def test_an_older_crm_without_a_queue_place_still_queues_the_customer(crm, dispatcher):
    crm(result=HANDOFF)
    tracker = conversation(slots={"customer_email": "ada@example.com", "handoff_reason": "cracked blender"})
    await ActionRequestHandoff().run(dispatcher, tracker, {})
    assert dispatcher.messages[1]["custom"] == {"data": {"presence": "queued", "position": None, "expected_wait_seconds": None}}


@pytest.mark.asyncio
async def test_when_the_crm_is_down_the_customer_is_told_and_the_bot_keeps_talking(crm, dispatcher):
    crm(error=CRMUnavailable("timed out"))

    events = await ActionRequestHandoff().run(dispatcher, conversation(slots={"customer_email": "a@b.co"}), {})

    assert dispatcher.messages[0]["response"] == "utter_handoff_unavailable"
    assert ConversationPaused() not in events
    assert SlotSet("handoff_reason", None) in events


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "error",
    [CRMAuthError(401, {"detail": "bad key"}), CRMAuthError(403, {"detail": "scope"}), CRMUnavailable("CRM answered 500")],
    ids=["401", "403", "500"],
)
async def test_trouble_on_our_side_is_said_honestly_and_the_bot_keeps_talking(crm, dispatcher, error):
    crm(error=error)

    events = await ActionRequestHandoff().run(dispatcher, conversation(slots={"customer_email": "a@b.co"}), {})

    assert [m["response"] for m in dispatcher.messages] == ["utter_handoff_unavailable"]
    assert ConversationPaused() not in events


@pytest.mark.asyncio
async def test_todays_handoff_cap_is_said_politely(crm, dispatcher):
    crm(error=CRMError(429, {"type": "https://northwind.example/problems/daily-limit", "status": 429}))

    events = await ActionRequestHandoff().run(dispatcher, conversation(slots={"customer_email": "a@b.co"}), {})

    assert [m["response"] for m in dispatcher.messages] == ["utter_handoff_daily_limit"]
    assert ConversationPaused() not in events


@pytest.mark.asyncio
async def test_only_a_verified_customers_name_goes_with_the_handoff(crm, dispatcher):
    fake = crm(result=HANDOFF)
    slots = {"customer_email": "ada@example.com", "customer_name": "Ada Lovelace", "handoff_reason": "cracked blender"}

    await ActionRequestHandoff().run(dispatcher, conversation(slots=slots), {})
    await ActionRequestHandoff().run(dispatcher, conversation(slots=slots, metadata=signed_in("ada@example.com")), {})

    assert [call["customer_name"] for call in fake.calls] == [None, "Ada Lovelace"]


@pytest.mark.asyncio
async def test_only_a_verified_identity_with_the_same_email_marks_the_handoff_verified(crm, dispatcher):
    fake = crm(result=HANDOFF)
    slots = {"customer_email": "ada@example.com", "handoff_reason": "cracked blender"}

    # Typed only; signed in as Ada; signed in as someone else; signed in, different case.
    await ActionRequestHandoff().run(dispatcher, conversation(slots=slots), {})
    await ActionRequestHandoff().run(dispatcher, conversation(slots=slots, metadata=signed_in("ada@example.com")), {})
    await ActionRequestHandoff().run(dispatcher, conversation(slots=slots, metadata=signed_in("grace@example.com")), {})
    await ActionRequestHandoff().run(
        dispatcher, conversation(slots={**slots, "customer_email": "Ada@Example.com"}, metadata=signed_in("ada@example.com")), {}
    )
    # An unsigned identity the client made up itself is no proof.
    forged = {"identity": {"email": "ada@example.com", "verified": "yes"}, "email": "ada@example.com"}
    await ActionRequestHandoff().run(dispatcher, conversation(slots=slots, metadata=forged), {})

    assert [call["customer_verified"] for call in fake.calls] == [False, True, False, True, False]


@pytest.mark.asyncio
@respx.mock
async def test_the_client_sends_customer_verified_and_defaults_it_to_false():
    route = respx.post("http://crm.test/api/v1/handoffs").mock(return_value=httpx.Response(201, json=HANDOFF))
    client = CRMClient(base_url="http://crm.test", api_key="k", timeout=0.5, retries=0)

    await client.create_handoff(conversation_id="c", reason="r", customer_email="a@b.co", transcript=[], idempotency_key="k1")
    await client.create_handoff(
        conversation_id="c", reason="r", customer_email="a@b.co", transcript=[], idempotency_key="k2", customer_verified=True
    )

    assert [json.loads(call.request.read())["customer_verified"] for call in route.calls] == [False, True]


@pytest.mark.asyncio
async def test_a_conversation_a_person_already_has_stays_paused(crm, dispatcher):
    crm(error=CRMError(409, {"detail": "already handed off", "existing_id": 3}))

    events = await ActionRequestHandoff().run(dispatcher, conversation(slots={"customer_email": "a@b.co"}), {})

    assert dispatcher.messages[0]["response"] == "utter_handoff_already_queued"
    assert ConversationPaused() in events


@pytest.mark.asyncio
async def test_a_refused_handoff_is_not_a_pause(crm, dispatcher):
    crm(error=CRMError(422, {"detail": "bad email"}))

    events = await ActionRequestHandoff().run(dispatcher, conversation(slots={"customer_email": "a@b.co"}), {})

    assert dispatcher.messages[0]["response"] == "utter_handoff_unavailable"
    assert ConversationPaused() not in events


@pytest.mark.asyncio
@respx.mock
async def test_the_client_posts_the_handoff_with_an_idempotency_key_and_retries():
    route = respx.post("http://crm.test/api/v1/handoffs").mock(
        side_effect=[httpx.Response(503), httpx.Response(201, json=HANDOFF)]
    )
    client = CRMClient(base_url="http://crm.test", api_key="k", timeout=0.5, retries=2)

    result = await client.create_handoff(
        conversation_id="c", reason="r", customer_email="a@b.co", transcript=[], idempotency_key="chat-handoff-1"
    )

    assert result == HANDOFF
    assert [call.request.headers["Idempotency-Key"] for call in route.calls] == ["chat-handoff-1"] * 2


@pytest.mark.asyncio
@respx.mock
async def test_the_client_reports_a_conflict_with_its_status():
    respx.post("http://crm.test/api/v1/handoffs").mock(
        return_value=httpx.Response(409, json={"status": 409, "detail": "already", "existing_id": 3})
    )
    client = CRMClient(base_url="http://crm.test", api_key="k", timeout=0.5, retries=0)
    with pytest.raises(CRMError) as raised:
        await client.create_handoff(conversation_id="c", reason="r", customer_email="a@b.co", transcript=[], idempotency_key="k")
    assert raised.value.status == 409


def test_one_word_of_substance_is_reason_enough():
    assert reason_in("I need to speak to someone about my refund, I'm ada@example.com")


@pytest.mark.asyncio
async def test_with_nobody_online_the_request_waits_and_a_ticket_is_offered(crm, dispatcher):
    crm(result={**HANDOFF, "availability": {"within_hours": False, "agents_online": 0, "available": False}})
    tracker = conversation(slots={"customer_email": "a@b.co", "handoff_reason": "my refund never arrived"})

    events = await ActionRequestHandoff().run(dispatcher, tracker, {})

    assert dispatcher.messages[0]["response"] == "utter_handoff_offline"
    assert ConversationPaused() not in events
    # The ticket form then only needs to confirm what the customer already said.
    assert SlotSet("problem_description", "my refund never arrived") in events


@pytest.mark.asyncio
async def test_with_someone_online_the_bot_pauses(crm, dispatcher):
    crm(result={**HANDOFF, "availability": {"within_hours": True, "agents_online": 2, "available": True}})
    events = await ActionRequestHandoff().run(dispatcher, conversation(slots={"customer_email": "a@b.co"}), {})
    assert dispatcher.messages[0]["response"] == "utter_handoff_queued"
    assert ConversationPaused() in events
