"""Problem reports become tickets in the CRM, through the real stack."""

import uuid

import requests

from tests.e2e.test_conversation import texts


def tickets_of(stack, conversation_id: str) -> list[dict]:
    key = (stack.var_dir / "crm_api_key").read_text().strip()
    response = requests.get(
        f"{stack.crm_url}/api/v1/tickets",
        params={"conversation_id": conversation_id},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()["items"]


def test_a_signed_in_customers_detailed_complaint_becomes_a_classified_ticket(stack):
    sender = f"shop-session-{uuid.uuid4().hex[:8]}"
    ada = {"identity_token": stack.identity_token("ada@example.com", "Ada Lovelace")}
    stack.say(sender, "hi", metadata=ada)
    words = "my order NW-482913 arrived with a cracked blender jug and it leaks"

    confirmation = texts(stack.say(sender, words, metadata=ada))
    assert words in confirmation and "Shall I open the ticket?" in confirmation
    reply = texts(stack.say(sender, "yes", metadata=ada))

    [ticket] = tickets_of(stack, sender)
    assert ticket["number"] in reply
    assert ticket["description"] == words
    assert ticket["subject"].startswith("Order NW-482913:")
    assert ticket["customer_email"] == "ada@example.com"
    assert ticket["channel"] == "chat"
    assert ticket["category"] == "damaged_or_defective"
    assert ticket["category_confidence"] is not None


def test_a_vague_complaint_from_a_stranger_is_asked_through_and_opens_one_ticket(stack):
    sender = "widget-visitor-complaint"

    asked_email = texts(stack.say(sender, "I want to make a complaint"))
    asked_order = texts(stack.say(sender, "sam.jones@example.com"))
    asked_words = texts(stack.say(sender, "/deny"))
    confirmation = texts(stack.say(sender, "the kettle switch snapped off the first time I used it"))
    done = texts(stack.say(sender, "yes please"))
    again = texts(stack.say(sender, "yes"))

    assert "email" in asked_email
    assert "order" in asked_order.lower()
    assert "describe" in asked_words
    assert "the kettle switch snapped off the first time I used it" in confirmation
    [ticket] = tickets_of(stack, sender)
    assert ticket["number"] in done and "sam.jones@example.com" in done
    assert ticket["customer_email"] == "sam.jones@example.com"
    assert ticket["description"] == "the kettle switch snapped off the first time I used it"
    assert ticket["number"] not in again


def test_declining_at_the_confirmation_opens_nothing(stack):
    sender = "ada-declines@example.com"

    stack.say(sender, "the sole of my trainers from order NW-447120 is peeling off after a week")
    reply = texts(stack.say(sender, "no, don't"))

    assert "haven't opened a ticket" in reply
    assert tickets_of(stack, sender) == []


def test_a_signed_in_customer_hears_where_their_ticket_stands(stack):
    reply = texts(stack.say_signed_in("shop-session-status", "what's happening with TCK-000001?", "ada@example.com"))

    assert 'TCK-000001 ("Where is my order #10234?") is open' in reply


def test_a_visitor_who_only_types_the_tickets_email_is_not_shown_the_ticket(stack):
    sender = "widget-visitor-status"

    first = texts(stack.say(sender, "any news on ticket TCK-000002"))
    then = texts(stack.say(sender, "grace.hopper@example.com"))

    # Nothing of the ticket, however the bot asks: it says how to see it (sign in).
    for reply in (first, then):
        assert "Kettle" not in reply and "pending" not in reply and "Grace" not in reply
    assert "sign in" in (first + then).lower()


def test_my_tickets_lists_the_open_ones_of_the_signed_in_customer(stack):
    reply = texts(stack.say_signed_in("widget-visitor-grace", "show my tickets", "grace.hopper@example.com", "Grace Hopper"))

    assert "TCK-000002: Kettle arrived with a cracked lid (pending" in reply
    assert "TCK-000001" not in reply
