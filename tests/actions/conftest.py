"""Helpers for the action tests: a tracker built with rasa-sdk's own types."""

from __future__ import annotations

from typing import Any, Optional

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher


def signed_in(email: str, name: Optional[str] = None, via: str = "token") -> dict[str, Any]:
    """Message metadata as the channel writes it for a verified identity (bot/, contract)."""
    return {"identity": {"email": email, "name": name, "external_id": None, "verified": True, "via": via}}


def make_tracker(
    sender_id: str = "visitor-1",
    slots: Optional[dict[str, Any]] = None,
    text: str = "hi",
    metadata: Optional[dict[str, Any]] = None,
) -> Tracker:
    user_event = {
        "event": "user",
        "text": text,
        "parse_data": {"intent": {"name": "greet", "confidence": 1.0}, "entities": []},
        "metadata": metadata or {},
    }
    return Tracker(
        sender_id=sender_id,
        slots={"customer_known": False, **(slots or {})},
        latest_message=user_event["parse_data"] | {"text": text},
        events=[user_event],
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name="action_listen",
    )


@pytest.fixture
def dispatcher() -> CollectingDispatcher:
    return CollectingDispatcher()
