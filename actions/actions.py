"""Actions that need more than a canned response."""

from __future__ import annotations

import logging
from typing import Any, Optional

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.crm_client import CRMClient, CRMError, CRMUnavailable
from actions.customer_identity import clean_name, verified_identity

logger = logging.getLogger(__name__)

crm = CRMClient()


def first_name(name: Optional[str]) -> Optional[str]:
    words = clean_name(name).split()
    return words[0] if words else None


class ActionIdentifyCustomer(Action):
    """Fills the name slots that ``utter_greet`` uses, for a verified customer only.

    The name is the signed identity's ``name``, else the CRM's name for the
    verified address; never one made out of an email address, and never one
    for an address that is only claimed (typed, sender id, unsigned
    metadata). Never fails the conversation: when the CRM cannot be reached
    the customer is simply greeted without a name.
    """

    def name(self) -> str:
        return "action_identify_customer"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        identity = verified_identity(tracker)
        if not identity:
            # Nobody verified (any more): no name from an earlier customer.
            if tracker.get_slot("customer_known") or tracker.get_slot("customer_name"):
                return [
                    SlotSet("customer_name", None),
                    SlotSet("customer_first_name", None),
                    SlotSet("customer_known", False),
                ]
            return []
        email = identity["email"]
        if tracker.get_slot("customer_known") and tracker.get_slot("customer_email") == email:
            return []
        name = clean_name(identity.get("name"))
        if not name:
            try:
                customer = await crm.find_customer_by_email(email)
            except (CRMUnavailable, CRMError) as error:
                logger.warning("could not look up a verified customer in the CRM: %s", error)
                customer = None
            name = clean_name((customer or {}).get("name"))
        return [
            SlotSet("customer_email", email),
            SlotSet("customer_name", name or None),
            SlotSet("customer_first_name", first_name(name)),
            SlotSet("customer_known", bool(name)),
        ]
