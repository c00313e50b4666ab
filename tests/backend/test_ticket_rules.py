"""The ticket status lifecycle, as plain functions."""

import pytest

from crm_backend.models import TICKET_STATUSES, format_ticket_number, parse_ticket_reference
from crm_backend.tickets import rules

ALLOWED = {
    ("open", "pending"),
    ("open", "on_hold"),
    ("open", "solved"),
    ("pending", "open"),
    ("pending", "on_hold"),
    ("pending", "solved"),
    ("on_hold", "open"),
    ("on_hold", "pending"),
    ("on_hold", "solved"),
    ("solved", "open"),
    ("solved", "closed"),
}


@pytest.mark.parametrize("current", TICKET_STATUSES)
@pytest.mark.parametrize("wanted", TICKET_STATUSES)
def test_every_transition_follows_the_lifecycle(current, wanted):
    expected = (current, wanted) in ALLOWED or (current == wanted and current != "closed")

    if expected:
        rules.check_transition(current, wanted)
    else:
        with pytest.raises(rules.TransitionForbidden) as raised:
            rules.check_transition(current, wanted)
        assert raised.value.status == 409


def test_closed_is_final():
    for wanted in TICKET_STATUSES:
        with pytest.raises(rules.TransitionForbidden, match="closed"):
            rules.check_transition("closed", wanted)


def test_a_forbidden_transition_says_where_the_ticket_can_go():
    with pytest.raises(rules.TransitionForbidden) as raised:
        rules.check_transition("open", "closed")

    assert raised.value.extensions["allowed_statuses"] == ["on_hold", "pending", "solved"]
    assert "open to closed" in raised.value.detail


@pytest.mark.parametrize("reference, expected", [("TCK-000123", 123), ("tck-42", 42), ("7", 7), (" TCK-000001 ", 1)])
def test_ticket_references_are_ids_or_numbers(reference, expected):
    assert parse_ticket_reference(reference) == expected


@pytest.mark.parametrize("reference", ["", "TCK-", "TCK-0", "abc", "12a", "-3", "１２", "9" * 19])
def test_malformed_ticket_references_are_rejected(reference):
    assert parse_ticket_reference(reference) is None


def test_numbers_are_zero_padded_to_six_digits():
    assert format_ticket_number(123) == "TCK-000123"
    assert format_ticket_number(1234567) == "TCK-1234567"
