"""What the customer reads when something goes wrong, or when they are not signed in (domain.yml)."""

from functools import lru_cache
from pathlib import Path

import pytest
import yaml

DOMAIN = Path(__file__).resolve().parents[2] / "domain.yml"


@lru_cache(maxsize=1)
def responses() -> dict:
    return yaml.load(DOMAIN.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))["responses"]


def text_of(response: str) -> str:
    return " ".join(variant["text"] for variant in responses()[response])


@pytest.mark.parametrize(
    "response", ["utter_ticket_system_down", "utter_tickets_unavailable", "utter_handoff_unavailable", "utter_feedback_not_saved"]
)
def test_a_problem_on_our_side_is_called_that_and_never_the_customers_address(response):
    text = text_of(response)

    assert "technical problem on our side" in text
    assert "check your email" not in text.lower()


@pytest.mark.parametrize("response", ["utter_ticket_system_down", "utter_tickets_unavailable", "utter_handoff_unavailable"])
def test_a_problem_on_our_side_offers_a_person_or_a_ticket_later(response):
    text = text_of(response)

    assert "support@northwind.example" in text or "a person" in text


def test_a_visitor_who_is_not_signed_in_is_told_how_to_see_their_tickets():
    for response in ("utter_tickets_need_sign_in", "utter_ticket_details_need_sign_in"):
        assert "sign in on the shop and open the chat again" in text_of(response)
        assert "we can't show ticket details to an address we haven't verified" in text_of(response)


def test_the_daily_caps_are_said_politely_with_a_person_offered():
    assert "can't open any more tickets from this chat today" in text_of("utter_ticket_daily_limit")
    assert {"title": "Yes, a person please", "payload": "/request_human"} in responses()["utter_ticket_daily_limit"][0]["buttons"]
    assert "already recorded" in text_of("utter_feedback_already_recorded")


@pytest.mark.parametrize("status", ["open", "pending", "on_hold", "solved", "closed"])
def test_the_status_alone_names_no_subject(status):
    assert "{ticket_subject}" not in text_of(f"utter_ticket_status_brief_{status}")
    assert "{ticket_number}" in text_of(f"utter_ticket_status_brief_{status}")
