"""Ticket status look-ups: one ticket by number, or the customer's open ones.

A ticket is shown only to someone who gives the email address on it, so a
ticket number alone reveals nothing (not even whether the ticket exists).
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
from actions.tickets import KnownEmailMixin

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


class ValidateTicketStatusForm(KnownEmailMixin, FormValidationAction):
    def name(self) -> str:
        return "validate_ticket_status_form"

    def validate_ticket_number(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return {"ticket_number": normalise_ticket_number(str(value or ""))}


class ValidateMyTicketsForm(KnownEmailMixin, FormValidationAction):
    def name(self) -> str:
        return "validate_my_tickets_form"


class ActionTicketStatus(Action):
    """Says where a ticket stands, in plain words, with the team's latest reply."""

    def name(self) -> str:
        return "action_ticket_status"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        number = tracker.get_slot("ticket_number")
        email = (tracker.get_slot("customer_email") or "").lower()
        try:
            ticket = await crm.get_ticket(number)
            owned = ticket is not None and ticket.get("customer_email", "").lower() == email
            reply = await crm.latest_public_reply(number) if owned else None
        except (CRMUnavailable, CRMError) as error:
            logger.warning("ticket status of %s not available: %s", number, error)
            dispatcher.utter_message(response="utter_tickets_unavailable")
            return []
        if not owned:
            dispatcher.utter_message(response="utter_ticket_not_found", ticket_number=number, customer_email=email)
            return [SlotSet("ticket_number", None)]
        status = ticket["status"] if ticket["status"] in STATUS_RESPONSES else "open"
        dispatcher.utter_message(
            response=f"utter_ticket_status_{status}",
            ticket_number=ticket["number"],
            ticket_subject=ticket["subject"],
            ticket_updated=how_long_ago(ticket.get("updated_at", "")),
        )
        if reply and status in ("open", "pending", "on_hold", "solved"):
            dispatcher.utter_message(response="utter_ticket_latest_reply", ticket_reply=reply["body"])
        return [SlotSet("ticket_number", None), SlotSet("csat_pending", True)]


class ActionListMyTickets(Action):
    """Lists the customer's tickets that are not solved or closed."""

    def name(self) -> str:
        return "action_list_my_tickets"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        email = tracker.get_slot("customer_email")
        try:
            tickets = await crm.open_tickets_of(email)
        except (CRMUnavailable, CRMError) as error:
            logger.warning("open tickets of %s not available: %s", email, error)
            dispatcher.utter_message(response="utter_tickets_unavailable")
            return []
        if not tickets:
            dispatcher.utter_message(response="utter_no_open_tickets", customer_email=email)
            return []
        lines = "\n".join(
            f"• {t['number']}: {t['subject']} ({t['status'].replace('_', ' ')}, updated {how_long_ago(t['updated_at'])})"
            for t in tickets
        )
        dispatcher.utter_message(response="utter_my_open_tickets", ticket_list=lines)
        return [SlotSet("csat_pending", True)]
