"""Customer satisfaction: a 1-5 score and an optional comment, sent to the CRM.

Asked when a handed-off conversation comes back from a person, when the
customer says thanks or goodbye after the assistant did something for them
(opened a ticket, looked one up), and whenever the customer offers feedback.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Optional

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.crm_client import CRMClient, CRMError, CRMUnavailable
from actions.customer_identity import verified_email
from actions.tickets import form_run_key

logger = logging.getLogger(__name__)

crm = CRMClient()

SCORE_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
NO_COMMENT = {"no", "nope", "nah", "no thanks", "no thank you", "nothing", "none", "that's all", "thats all", "n/a", "-"}
COMMENT_LENGTH = 2000


def parse_score(value: Any) -> Optional[int]:
    """1-5 from "4", "4 stars", "four", "5/5", or an emoji of stars; else None."""
    text = str(value or "").strip().lower()
    if not text:
        return None
    stars = text.count("⭐") or text.count("★")
    if stars and 1 <= stars <= 5:
        return stars
    digits = re.findall(r"\d+", text)
    if digits:
        number = int(digits[0])
        return number if 1 <= number <= 5 else None
    for word, number in SCORE_WORDS.items():
        if re.search(rf"\b{word}\b", text):
            return number
    return None


def handoff_just_resolved(tracker: Tracker) -> bool:
    """Whether the latest message is the CRM's signal that a person finished."""
    text = (tracker.latest_message or {}).get("text") or ""
    return text.startswith("EXTERNAL:")


class ActionFeedbackIntro(Action):
    """Sets the scene for the score question: after a handoff, thanks the customer."""

    def name(self) -> str:
        return "action_feedback_intro"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        if handoff_just_resolved(tracker):
            agent = next(
                (e.get("value") for e in tracker.latest_message.get("entities") or [] if e.get("entity") == "agent_name"),
                None,
            )
            if agent:
                dispatcher.utter_message(response="utter_handoff_resolved_by", agent_name=agent)
            else:
                dispatcher.utter_message(response="utter_handoff_resolved")
        # Left over only if an earlier score question was interrupted.
        stale = [SlotSet(slot, None) for slot in ("feedback_score", "feedback_comment") if tracker.get_slot(slot) is not None]
        return [*stale, SlotSet("csat_pending", False)]


SCORE_BUTTONS = [
    *({"title": str(score), "payload": f'/inform{{"feedback_score":"{score}"}}'} for score in range(1, 6)),
    {"title": "Skip", "payload": "/deny"},
]


class ActionAskFeedbackScore(Action):
    """The score question with 1-5 buttons (the form's question for feedback_score)."""

    def name(self) -> str:
        return "action_ask_feedback_score"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        dispatcher.utter_message(response="utter_feedback_score_question", buttons=SCORE_BUTTONS)
        return []


class ValidateFeedbackForm(FormValidationAction):
    def name(self) -> str:
        return "validate_feedback_form"

    def validate_feedback_score(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value is None:
            # Cleared by action_feedback_intro, not answered: nothing to say.
            return {"feedback_score": None}
        if value == "skip":
            # "Skip": no score, and no comment question either.
            return {"feedback_score": "skip", "feedback_comment": "none"}
        score = parse_score(value)
        if score is None:
            dispatcher.utter_message(response="utter_invalid_feedback_score")
            return {"feedback_score": None}
        return {"feedback_score": str(score)}

    def validate_feedback_comment(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value is None:
            return {"feedback_comment": None}
        text = " ".join(str(value).split())
        if not text or text.lower().strip(".!") in NO_COMMENT or text.startswith("/"):
            return {"feedback_comment": "none"}
        return {"feedback_comment": text[:COMMENT_LENGTH]}


class ActionSubmitFeedback(Action):
    """Sends the score to the CRM; a low score gets an apology and the offer of a person."""

    def name(self) -> str:
        return "action_submit_feedback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        score = parse_score(tracker.get_slot("feedback_score"))
        comment = tracker.get_slot("feedback_comment")
        reset = [SlotSet("feedback_score", None), SlotSet("feedback_comment", None), SlotSet("csat_pending", False)]
        if score is None:
            dispatcher.utter_message(response="utter_feedback_skipped")
            return reset
        try:
            await crm.send_feedback(
                score=score,
                comment=None if comment in (None, "none") else comment,
                conversation_id=tracker.sender_id,
                # A score is someone's only when verified; a claimed address
                # must not put words in a customer's mouth.
                customer_email=verified_email(tracker),
                idempotency_key=form_run_key(tracker, "feedback_form", "feedback"),
            )
        except CRMError as error:
            logger.warning("feedback of %s not saved: %s", tracker.sender_id, error)
            if error.already_rated:
                dispatcher.utter_message(response="utter_feedback_already_recorded")
            elif error.daily_limit:
                dispatcher.utter_message(response="utter_feedback_daily_limit")
            else:
                dispatcher.utter_message(response="utter_feedback_not_saved")
            return reset
        except CRMUnavailable as error:
            logger.warning("feedback of %s not saved: %s", tracker.sender_id, error)
            dispatcher.utter_message(response="utter_feedback_not_saved")
            return reset
        if score <= 2:
            dispatcher.utter_message(response="utter_feedback_thanks_unhappy")
        else:
            dispatcher.utter_message(response="utter_feedback_thanks")
        return reset
