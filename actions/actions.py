"""Actions that need more than a canned response."""

from __future__ import annotations

import logging
import re
from typing import Any, Optional

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.crm_client import CRMClient, CRMError, CRMUnavailable

logger = logging.getLogger(__name__)

# Deliberately loose: the CRM does the real validation; this only decides
# whether a sender id or metadata value is worth looking up at all.
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

crm = CRMClient()


def known_email(tracker: Tracker) -> Optional[str]:
    """The customer's email, if the conversation already tells us.

    In order: the slot, the ``email`` the host page passed with the message
    (socket.io ``customData`` / message metadata), or a sender id that is
    itself an email address (integrations often use one).
    """
    email = tracker.get_slot("customer_email")
    if not email:
        user_event = tracker.get_last_event_for("user") or {}
        email = (user_event.get("metadata") or {}).get("email")
    if not email:
        email = tracker.sender_id
    email = (email or "").strip().lower()
    return email if EMAIL_PATTERN.match(email) else None


class ActionIdentifyCustomer(Action):
    """Looks the sender up in the CRM so replies can use their name.

    Sets ``customer_known`` and the name slots that ``utter_greet`` and later
    flows use. Never fails the conversation: when the CRM cannot be reached the
    customer is simply greeted without a name.
    """

    def name(self) -> str:
        return "action_identify_customer"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        if tracker.get_slot("customer_known"):
            return []
        email = known_email(tracker)
        if not email:
            return []
        try:
            customer = await crm.find_customer_by_email(email)
        except (CRMUnavailable, CRMError) as error:
            logger.warning("could not look up %s in the CRM: %s", email, error)
            return [SlotSet("customer_email", email)]
        if not customer:
            return [SlotSet("customer_email", email)]
        name = (customer.get("name") or "").strip()
        return [
            SlotSet("customer_email", customer.get("email") or email),
            SlotSet("customer_name", name or None),
            SlotSet("customer_first_name", name.split()[0] if name else None),
            SlotSet("customer_known", bool(name)),
        ]
