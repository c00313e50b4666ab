"""Problem reports become tickets: the ticket form's validation and the
actions that open (or drop) the ticket in the CRM."""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any, Optional

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.crm_client import CRMClient, CRMError, CRMUnavailable
from actions.customer_identity import KnownEmailMixin, name_for, proves_email

logger = logging.getLogger(__name__)

crm = CRMClient()

ORDER_NUMBER = re.compile(r"^\s*nw-?(\d{6})\s*$", re.IGNORECASE)
SUBJECT_LENGTH = 80
# Words that say *that* something is wrong but not *what*: "I have a problem
# with my order" needs a follow-up question, "my blender arrived cracked"
# does not.
VAGUE_WORDS = set(
    """a an the i i'm im me my mine we our you your it its this that is are was were be been am
    have has had got get want wanted would like need needs to of with for about on in at from
    and or but so just please can could help hi hello hey there some something problem problems
    issue issues complaint complain complaining make file report raise order orders purchase
    wrong not working bad question query ticket support thing things again""".split()
)


def is_too_vague(text: str) -> bool:
    words = re.findall(r"[a-z']+", text.lower())
    return len([word for word in words if word not in VAGUE_WORDS]) < 2


def normalise_order_number(value: str) -> Optional[str]:
    match = ORDER_NUMBER.match(value or "")
    return f"NW-{match.group(1)}" if match else None


def ticket_subject(description: str, order_number: Optional[str]) -> str:
    """A one-line subject: the first sentence of the customer's words."""
    first = re.split(r"(?<=[.!?])\s+|\n", description.strip(), maxsplit=1)[0].strip()
    if len(first) > SUBJECT_LENGTH:
        first = first[: SUBJECT_LENGTH - 1].rsplit(" ", 1)[0] + "…"
    if order_number and order_number != "none":
        return f"Order {order_number}: {first}"
    return first


def form_run_key(tracker: Tracker, form: str = "ticket_form", kind: str = "ticket") -> str:
    """The same for every retry within one run of ``form``, new for the
    next run (the next complaint): the time the form was activated."""
    started = next(
        (
            event.get("timestamp")
            for event in reversed(tracker.events)
            if event.get("event") == "active_loop" and event.get("name") == form
        ),
        None,
    )
    digest = hashlib.sha256(f"{tracker.sender_id}:{started}".encode()).hexdigest()
    return f"chat-{kind}-{digest[:40]}"


# What action_create_ticket may say that ends in the offer of a person.
OFFERS_OF_A_PERSON = {"utter_offer_human_for_need", "utter_ticket_daily_limit"}


def offered_a_person(tracker: Tracker) -> bool:
    """Whether the customer just said yes to the offer of a person after a ticket (or instead of one)."""
    if ((tracker.latest_message or {}).get("intent") or {}).get("name") != "affirm":
        return False
    last_bot = next((e for e in reversed(tracker.events) if e.get("event") == "bot"), None)
    return bool(last_bot) and (last_bot.get("metadata") or {}).get("utter_action") in OFFERS_OF_A_PERSON


class ValidateTicketForm(KnownEmailMixin, FormValidationAction):
    def name(self) -> str:
        return "validate_ticket_form"

    def validate_order_number(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value == "none":
            return {"order_number": "none"}
        return {"order_number": normalise_order_number(str(value or ""))}

    def validate_problem_description(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = str(value or "").strip()
        if not text or is_too_vague(text):
            return {"problem_description": None}
        return {"problem_description": text}


class ActionCreateTicket(Action):
    """Opens the ticket in the CRM; says the number and what happens next."""

    def name(self) -> str:
        return "action_create_ticket"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        if offered_a_person(tracker):
            # "yes" to "shall I bring in someone?" after the ticket was opened.
            return [FollowupAction("handoff_form")]
        email = tracker.get_slot("customer_email")
        description = tracker.get_slot("problem_description")
        order_number = tracker.get_slot("order_number")
        if not (email and description):
            dispatcher.utter_message(response="utter_ask_ticket_form_problem_description")
            return []
        try:
            ticket = await crm.create_ticket(
                customer_email=email,
                customer_name=name_for(tracker, email),
                customer_verified=proves_email(tracker, email),
                subject=ticket_subject(description, order_number),
                description=description,
                conversation_id=tracker.sender_id,
                idempotency_key=form_run_key(tracker),
            )
        except CRMUnavailable as error:
            # Unreachable, failing, or refusing the bot's own key: our side.
            logger.warning("ticket not created for %s: %s", tracker.sender_id, error)
            dispatcher.utter_message(response="utter_ticket_system_down")
            return []
        except CRMError as error:
            logger.warning("CRM refused the ticket for %s: %s", tracker.sender_id, error)
            if error.daily_limit:
                dispatcher.utter_message(response="utter_ticket_daily_limit")
                return [SlotSet("problem_description", None), SlotSet("order_number", None)]
            if error.status == 422 and error.about("customer_email"):
                # The one refusal the customer can fix: the address itself.
                dispatcher.utter_message(response="utter_ticket_rejected")
                return [SlotSet("customer_email", None)]
            dispatcher.utter_message(response="utter_ticket_system_down")
            return []
        number = ticket["number"]
        events: list[EventType] = [
            SlotSet("last_ticket_number", number),
            SlotSet("problem_description", None),
            SlotSet("order_number", None),
            SlotSet("csat_pending", True),
        ]
        dispatcher.utter_message(response="utter_ticket_created", last_ticket_number=number)
        if ticket.get("needs_human"):
            # The shop wants people, not the bot, on this kind of need.
            dispatcher.utter_message(response="utter_offer_human_for_need")
        return events


class ActionDiscardTicket(Action):
    """The customer said no at the confirmation: forget the details."""

    def name(self) -> str:
        return "action_discard_ticket"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        dispatcher.utter_message(response="utter_ticket_discarded")
        return [SlotSet("problem_description", None), SlotSet("order_number", None)]
