"""The satisfaction score: parsing, the form's validation, sending it to the CRM."""

import httpx
import pytest
import respx
from rasa_sdk.events import SlotSet

from actions import feedback
from actions.crm_client import CRMAuthError, CRMClient, CRMError, CRMUnavailable
from actions.feedback import ActionFeedbackIntro, ActionSubmitFeedback, ValidateFeedbackForm, parse_score

from tests.actions.conftest import make_tracker, signed_in


@pytest.mark.parametrize(
    "text, score",
    [("4", 4), ("5 stars", 5), ("five", 5), ("I'd say three", 3), ("⭐⭐", 2), ("5/5", 5), (' /inform{"feedback_score":"1"}', 1)],
)
def test_scores_are_read_from_what_people_type(text, score):
    assert parse_score(text) == score


@pytest.mark.parametrize("text", ["", "great", "0", "10", "6 stars", None])
def test_anything_else_is_not_a_score(text):
    assert parse_score(text) is None


def test_a_non_score_is_asked_again_and_skip_skips_the_comment_too(dispatcher):
    form = ValidateFeedbackForm()
    # Slots cleared when the form starts are not answers: nothing is said.
    assert form.validate_feedback_score(None, dispatcher, make_tracker(), {}) == {"feedback_score": None}
    assert form.validate_feedback_comment(None, dispatcher, make_tracker(), {}) == {"feedback_comment": None}
    assert dispatcher.messages == []
    assert form.validate_feedback_score("meh", dispatcher, make_tracker(), {}) == {"feedback_score": None}
    assert dispatcher.messages[0]["response"] == "utter_invalid_feedback_score"
    assert form.validate_feedback_score("skip", dispatcher, make_tracker(), {}) == {
        "feedback_score": "skip",
        "feedback_comment": "none",
    }
    assert form.validate_feedback_score("4 stars", dispatcher, make_tracker(), {}) == {"feedback_score": "4"}


def test_no_comment_answers_are_none(dispatcher):
    form = ValidateFeedbackForm()
    for text in ("no", "No thanks.", "nothing", "/deny"):
        assert form.validate_feedback_comment(text, dispatcher, make_tracker(), {}) == {"feedback_comment": "none"}
    assert form.validate_feedback_comment(" fast  and kind ", dispatcher, make_tracker(), {}) == {
        "feedback_comment": "fast and kind"
    }


class FakeCRM:
    def __init__(self, error=None):
        self.error, self.calls = error, []

    async def send_feedback(self, **kwargs):
        self.calls.append(kwargs)
        if self.error:
            raise self.error
        return {"id": 1, **kwargs}


@pytest.fixture
def crm(monkeypatch):
    def install(**kwargs):
        fake = FakeCRM(**kwargs)
        monkeypatch.setattr(feedback, "crm", fake)
        return fake

    return install


def answered(score, comment, sender="ada@example.com", metadata=None):
    tracker = make_tracker(sender, slots={"feedback_score": score, "feedback_comment": comment}, metadata=metadata)
    tracker.events.insert(0, {"event": "active_loop", "name": "feedback_form", "timestamp": 5.0})
    return tracker


@pytest.mark.asyncio
async def test_the_score_and_comment_reach_the_crm(crm, dispatcher):
    fake = crm()
    events = await ActionSubmitFeedback().run(dispatcher, answered("5", "lovely", "widget-1", signed_in("ada@example.com")), {})
    call = fake.calls[0]
    assert (call["score"], call["comment"], call["conversation_id"], call["customer_email"]) == (5, "lovely", "widget-1", "ada@example.com")
    assert call["idempotency_key"].startswith("chat-feedback-")
    assert dispatcher.messages[0]["response"] == "utter_feedback_thanks"
    assert SlotSet("feedback_score", None) in events and SlotSet("csat_pending", False) in events


@pytest.mark.asyncio
async def test_a_low_score_is_met_with_an_apology_and_the_offer_of_a_person(crm, dispatcher):
    fake = crm()
    await ActionSubmitFeedback().run(dispatcher, answered("1", "none", sender="visitor-9"), {})
    assert fake.calls[0]["comment"] is None and fake.calls[0]["customer_email"] is None
    assert dispatcher.messages[0]["response"] == "utter_feedback_thanks_unhappy"


@pytest.mark.asyncio
async def test_a_skipped_score_sends_nothing(crm, dispatcher):
    fake = crm()
    await ActionSubmitFeedback().run(dispatcher, answered("skip", "none"), {})
    assert fake.calls == []
    assert dispatcher.messages[0]["response"] == "utter_feedback_skipped"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "tracker",
    [answered("5", "none"), answered("5", "none", "widget-1", {"email": "ada@example.com"})],
    ids=["sender id", "unsigned metadata"],
)
async def test_a_claimed_address_gives_no_score_in_the_customers_name(crm, dispatcher, tracker):
    fake = crm()
    await ActionSubmitFeedback().run(dispatcher, tracker, {})
    assert fake.calls[0]["customer_email"] is None


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "error", [CRMUnavailable("timed out"), CRMAuthError(401, {"detail": "bad key"}), CRMAuthError(403, {})], ids=["down", "401", "403"]
)
async def test_crm_trouble_is_said_honestly(crm, dispatcher, error):
    crm(error=error)
    events = await ActionSubmitFeedback().run(dispatcher, answered("4", "none"), {})
    assert [m["response"] for m in dispatcher.messages] == ["utter_feedback_not_saved"]
    assert SlotSet("csat_pending", False) in events


@pytest.mark.asyncio
async def test_a_second_score_for_the_conversation_is_thanked_as_already_recorded(crm, dispatcher):
    crm(error=CRMError(409, {"type": "https://northwind.example/problems/already-rated", "status": 409}))
    events = await ActionSubmitFeedback().run(dispatcher, answered("2", "none"), {})
    assert [m["response"] for m in dispatcher.messages] == ["utter_feedback_already_recorded"]
    assert SlotSet("feedback_score", None) in events


@pytest.mark.asyncio
async def test_todays_score_cap_is_said_politely(crm, dispatcher):
    crm(error=CRMError(429, {"type": "https://northwind.example/problems/daily-limit", "status": 429}))
    await ActionSubmitFeedback().run(dispatcher, answered("4", "none"), {})
    assert [m["response"] for m in dispatcher.messages] == ["utter_feedback_daily_limit"]


@pytest.mark.asyncio
async def test_after_a_handoff_the_agent_is_thanked_by_name(dispatcher):
    tracker = make_tracker(text="EXTERNAL: give_feedback")
    tracker.latest_message["entities"] = [{"entity": "agent_name", "value": "Alex Agent"}]
    await ActionFeedbackIntro().run(dispatcher, tracker, {})
    assert dispatcher.messages[0]["response"] == "utter_handoff_resolved_by"
    assert dispatcher.messages[0]["agent_name"] == "Alex Agent"


@pytest.mark.asyncio
async def test_offering_feedback_needs_no_intro(dispatcher):
    events = await ActionFeedbackIntro().run(dispatcher, make_tracker(text="I want to leave feedback"), {})
    assert dispatcher.messages == []
    assert events == [SlotSet("csat_pending", False)]
    stale = make_tracker(text="feedback", slots={"feedback_score": "3"})
    assert SlotSet("feedback_score", None) in await ActionFeedbackIntro().run(dispatcher, stale, {})


@pytest.mark.asyncio
@respx.mock
async def test_the_client_posts_feedback_with_an_idempotency_key():
    route = respx.post("http://crm.test/api/v1/feedback").mock(return_value=httpx.Response(201, json={"id": 1}))
    client = CRMClient(base_url="http://crm.test", api_key="k", timeout=0.5, retries=0)
    await client.send_feedback(score=4, comment=None, conversation_id="c", idempotency_key="chat-feedback-1")
    request = route.calls.last.request
    assert request.headers["Idempotency-Key"] == "chat-feedback-1"
    assert b'"score": 4' in request.read() or b'"score":4' in request.read()
