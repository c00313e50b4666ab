"""Ticket status look-ups: one ticket by number, or the customer's open ones.

Tickets are shown only to a verified customer (actions/customer_identity.py),
and only their own: a ticket number, or an address typed in the chat, reveals nothing,
not even whether the ticket exists. One narrow exception: the conversation
that opened a ticket may hear that ticket's status (no subject, no replies).
Anyone else is told how to see the rest: sign in on the shop.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timezone
from typing import Any, Optional

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.crm_client import CRMClient, CRMError, CRMUnavailable
from actions.customer_identity import verified_email

logger = logging.getLogger(__name__)

crm = CRMClient()

TICKET_NUMBER = re.compile(r"^\s*tck-?(\d{1,9})\s*$", re.IGNORECASE)
STATUS_RESPONSES = {"open", "pending", "on_hold", "solved", "closed"}


def normalise_ticket_number(value: str) -> Optional[str]:
    match = TICKET_NUMBER.match(value or "")
    return f"TCK-{int(match.group(1)):06d}" if match else None


def how_long_ago(timestamp: str, now: Optional[datetime] = None) -> str:
    """ "3 hours ago", "yesterday", "on 4 March 2026": plain words for an ISO time."""
    try:
        then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return "recently"
    if then.tzinfo is None:
        then = then.replace(tzinfo=timezone.utc)
    seconds = ((now or datetime.now(timezone.utc)) - then).total_seconds()
    if seconds < 90:
        return "just now"
    if seconds < 3600:
        return f"{round(seconds / 60)} minutes ago"
    if seconds < 2 * 3600:
        return "an hour ago"
    if seconds < 86400:
        return f"{round(seconds / 3600)} hours ago"
    if seconds < 2 * 86400:
        return "yesterday"
    if seconds < 7 * 86400:
        return f"{round(seconds / 86400)} days ago"
    return f"on {then.day} {then:%B %Y}"


class ValidateTicketStatusForm(FormValidationAction):
    def name(self) -> str:
        return "validate_ticket_status_form"

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        """No number is asked of a visitor nothing could be shown to: not
        verified, and this conversation has opened no ticket."""
        if verified_email(tracker) or tracker.get_slot("ticket_number") or tracker.get_slot("last_ticket_number"):
            return domain_slots
        return []

    def validate_ticket_number(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return {"ticket_number": normalise_ticket_number(str(value or ""))}


class ActionTicketStatus(Action):
    """Says where a ticket stands, in plain words: to its verified owner with
    the subject and the team's latest reply, to the conversation that opened
    it the status alone."""

    def name(self) -> str:
        return "action_ticket_status"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        number = tracker.get_slot("ticket_number")
        email = verified_email(tracker)
        if not number:
            dispatcher.utter_message(response="utter_tickets_need_sign_in")
            return []
        try:
            ticket = await crm.get_ticket(number)
            owned = bool(email) and ticket is not None and (ticket.get("customer_email") or "").lower() == email
            reply = await crm.latest_public_reply(number) if owned else None
        except (CRMUnavailable, CRMError) as error:
            logger.warning("ticket status of %s not available: %s", number, error)
            dispatcher.utter_message(response="utter_tickets_unavailable")
            return []
        done = [SlotSet("ticket_number", None), SlotSet("csat_pending", True)]
        if owned:
            status = ticket["status"] if ticket["status"] in STATUS_RESPONSES else "open"
            dispatcher.utter_message(
                response=f"utter_ticket_status_{status}",
                ticket_number=ticket["number"],
                ticket_subject=ticket["subject"],
                ticket_updated=how_long_ago(ticket.get("updated_at", "")),
            )
            if reply and status in ("open", "pending", "on_hold", "solved"):
                dispatcher.utter_message(response="utter_ticket_latest_reply", ticket_reply=reply["body"])
            return done
        if ticket is not None and ticket.get("conversation_id") == tracker.sender_id:
            status = ticket["status"] if ticket["status"] in STATUS_RESPONSES else "open"
            dispatcher.utter_message(response=f"utter_ticket_status_brief_{status}", ticket_number=ticket["number"])
            if not email:
                dispatcher.utter_message(response="utter_ticket_details_need_sign_in")
            return done
        if email:
            dispatcher.utter_message(response="utter_ticket_not_found", ticket_number=number, customer_email=email)
        else:
            # The same answer whether the ticket exists or not, whoever it belongs to.
            dispatcher.utter_message(response="utter_tickets_need_sign_in")
        return [SlotSet("ticket_number", None)]


class ActionListMyTickets(Action):
    """Lists a verified customer's tickets that are not solved or closed."""

    def name(self) -> str:
        return "action_list_my_tickets"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        email = verified_email(tracker)
        if not email:
            dispatcher.utter_message(response="utter_tickets_need_sign_in")
            return []
        try:
            tickets = await crm.open_tickets_of(email)
        except (CRMUnavailable, CRMError) as error:
            logger.warning("open tickets of a verified customer not available: %s", error)
            dispatcher.utter_message(response="utter_tickets_unavailable")
            return []
        # The CRM filters by address already; a ticket of anyone else is never listed.
        tickets = [t for t in tickets if (t.get("customer_email") or email).lower() == email]
        if not tickets:
            dispatcher.utter_message(response="utter_no_open_tickets", customer_email=email)
            return []
        lines = "\n".join(
            f"• {t['number']}: {t['subject']} ({t['status'].replace('_', ' ')}, updated {how_long_ago(t['updated_at'])})"
            for t in tickets
        )
        dispatcher.utter_message(response="utter_my_open_tickets", ticket_list=lines)
        return [SlotSet("csat_pending", True)]
