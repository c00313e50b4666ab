"""Talk to a human: the handoff form, the request to the CRM, and pausing the bot.

While a person has the conversation the bot is paused (Rasa's
``ConversationPaused``): customer messages still reach the tracker, but the
assistant answers nothing until the CRM resolves the handoff and resumes it.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Optional

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ConversationPaused, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.crm_client import CRMClient, CRMError, CRMUnavailable
from actions.customer_identity import KnownEmailMixin, name_for, proves_email
from actions.tickets import form_run_key

logger = logging.getLogger(__name__)

crm = CRMClient()

# How much of the conversation goes to the agent (the newest lines).
TRANSCRIPT_LINES = 60
TRANSCRIPT_TEXT = 2000
REASON_LENGTH = 300
EMAIL = re.compile(r"\S+@\S+")
# Words of "let me talk to a person" itself, which say nothing about why.
REQUEST_WORDS = set(
    """a an the i i'm im me my we our you your it this that is are be am to of with for about on in at
    and or but so just please can could would like want wanna need let speak talk chat connect transfer
    put through get give someone somebody anyone person people human humans real live agent agents
    operator representative rep staff employee team member support customer service help now right
    away asap instead not bot robot machine no more yes ok okay hi hello hey there""".split()
)


def reason_in(text: str) -> Optional[str]:
    """``text`` as a one-line reason, or None if it only asks for a person."""
    words = re.findall(r"[a-z']+", EMAIL.sub(" ", (text or "").lower()))
    if not [word for word in words if word not in REQUEST_WORDS]:
        return None
    line = " ".join(text.split())
    return line if len(line) <= REASON_LENGTH else line[: REASON_LENGTH - 1].rsplit(" ", 1)[0] + "…"


def button_title(event: dict[str, Any], buttons: list[Any]) -> Optional[str]:
    """The title of the button whose payload a customer message is: as the widget
    reports it (``metadata.button_title``), else from the buttons last offered."""
    metadata = event.get("metadata") if isinstance(event.get("metadata"), dict) else {}
    title = metadata.get("button_title")
    if isinstance(title, str) and title.strip():
        return " ".join(title.split())[:80]
    for button in buttons:
        if isinstance(button, dict) and button.get("payload") == event.get("text") and isinstance(button.get("title"), str):
            return button["title"]
    return None


def transcript_of(tracker: Tracker, limit: int = TRANSCRIPT_LINES) -> list[dict[str, Any]]:
    """The conversation so far as the CRM stores it: [{sender, text, timestamp}], oldest first.

    A button the customer chose is its title, as they saw it; a payload no
    button offered (the widget's unseen ``/greet`` that starts a
    conversation) is left out: the customer never said it.
    """
    lines = []
    buttons: list[Any] = []
    for event in tracker.events:
        kind = event.get("event")
        text = event.get("text")
        if kind == "bot":
            data = event.get("data") if isinstance(event.get("data"), dict) else {}
            buttons = data.get("buttons") or buttons if text else buttons
        if kind not in ("user", "bot") or not text or text.startswith("EXTERNAL:"):
            continue
        if kind == "user" and text.startswith("/"):
            title = button_title(event, buttons)
            if title is None:
                continue
            text = title
        line: dict[str, Any] = {"sender": "customer" if kind == "user" else "bot", "text": text[:TRANSCRIPT_TEXT]}
        timestamp = event.get("timestamp")
        if isinstance(timestamp, (int, float)):
            from datetime import datetime, timezone

            line["timestamp"] = datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat()
        lines.append(line)
    return lines[-limit:]


def queue_presence(handoff: dict[str, Any]) -> dict[str, Any]:
    """The widget's "you're number 2 in the queue, about 4 minutes" (docs/widget.md,
    "A person in the chat"): a custom message, ``{"data": {...}}`` as Rasa's
    socket.io output expects it."""
    place = handoff.get("queue") if isinstance(handoff.get("queue"), dict) else {}
    return {
        "data": {
            "presence": "queued",
            "position": place.get("position"),
            "expected_wait_seconds": place.get("expected_wait_seconds"),
        }
    }


class ValidateHandoffForm(KnownEmailMixin, FormValidationAction):
    def name(self) -> str:
        return "validate_handoff_form"

    async def extract_handoff_reason(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """Don't ask why when the customer already said: in the request
        itself ("a person please, my refund is late") or in the problem they
        described earlier."""
        if tracker.get_slot("handoff_reason") or tracker.get_slot("requested_slot") is not None:
            # Only the message that asked for a person is read this way;
            # answers to the form's questions (an email) are not reasons.
            return {}
        reason = reason_in(tracker.latest_message.get("text") or "") or tracker.get_slot("problem_description")
        return {"handoff_reason": reason} if reason else {}

    def validate_handoff_reason(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = " ".join(str(value or "").split())
        if not text or text.startswith("/"):
            return {"handoff_reason": None}
        return {"handoff_reason": text[:REASON_LENGTH]}


class ActionRequestHandoff(Action):
    """Queues the conversation for a person in the CRM and pauses the bot."""

    def name(self) -> str:
        return "action_request_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        email = tracker.get_slot("customer_email")
        reason = tracker.get_slot("handoff_reason") or "The customer asked for a person."
        try:
            handoff = await crm.create_handoff(
                conversation_id=tracker.sender_id,
                reason=reason,
                customer_email=email,
                customer_name=name_for(tracker, email),
                customer_verified=proves_email(tracker, email),
                ticket=tracker.get_slot("last_ticket_number"),
                transcript=transcript_of(tracker),
                idempotency_key=form_run_key(tracker, "handoff_form", "handoff"),
            )
        except CRMUnavailable as error:
            # Unreachable, failing, or refusing the bot's own key: our side.
            logger.warning("handoff not queued for %s: %s", tracker.sender_id, error)
            dispatcher.utter_message(response="utter_handoff_unavailable")
            return [SlotSet("handoff_reason", None)]
        except CRMError as error:
            if error.daily_limit:
                logger.warning("handoff of %s over today's cap: %s", tracker.sender_id, error)
                dispatcher.utter_message(response="utter_handoff_daily_limit")
                return [SlotSet("handoff_reason", None)]
            if error.status != 409:
                logger.warning("CRM refused the handoff for %s: %s", tracker.sender_id, error)
                dispatcher.utter_message(response="utter_handoff_unavailable")
                return [SlotSet("handoff_reason", None)]
            # A person already has this conversation: stay quiet for them.
            dispatcher.utter_message(response="utter_handoff_already_queued")
            return [SlotSet("handoff_reason", None), ConversationPaused()]
        if (handoff.get("availability") or {}).get("available") is False:
            # Outside support hours or nobody online: the request waits in the
            # queue, and the assistant keeps helping, starting with a ticket.
            dispatcher.utter_message(response="utter_handoff_offline")
            events: list[EventType] = [SlotSet("handoff_reason", None)]
            if reason_in(reason) and not tracker.get_slot("problem_description"):
                events.append(SlotSet("problem_description", reason))
            return events
        dispatcher.utter_message(response="utter_handoff_queued")
        dispatcher.utter_message(json_message=queue_presence(handoff))
        return [SlotSet("handoff_reason", None), ConversationPaused()]
