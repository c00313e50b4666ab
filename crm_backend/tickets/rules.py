"""Ticket status lifecycle (plain functions, no database).

open -> pending / on_hold / solved; pending and on_hold go back to open or
on to solved; solved -> open (reopen) or closed; closed is final.
"""

from ..problems import ApiProblem

ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"pending", "on_hold", "solved"}),
    "pending": frozenset({"open", "on_hold", "solved"}),
    "on_hold": frozenset({"open", "pending", "solved"}),
    "solved": frozenset({"open", "closed"}),
    "closed": frozenset(),
}


class TransitionForbidden(ApiProblem):
    def __init__(self, current: str, wanted: str):
        allowed = sorted(ALLOWED_TRANSITIONS[current])
        if current == "closed":
            detail = "The ticket is closed; closed tickets cannot be changed. Open a new ticket instead."
        else:
            detail = f"A ticket cannot go from {current} to {wanted}; from {current} it can go to {', '.join(allowed)}."
        super().__init__(409, detail, current_status=current, allowed_statuses=allowed)


def can_transition(current: str, wanted: str) -> bool:
    return wanted == current or wanted in ALLOWED_TRANSITIONS[current]


def check_transition(current: str, wanted: str) -> None:
    """Raise TransitionForbidden (a 409 problem) unless ``current -> wanted`` is allowed.

    Setting the status a ticket already has is a harmless no-op, except on a
    closed ticket, which accepts no change at all.
    """
    if current == "closed" or not can_transition(current, wanted):
        raise TransitionForbidden(current, wanted)


def check_editable(status: str) -> None:
    """Closed tickets are final: no field changes and no new comments."""
    if status == "closed":
        raise TransitionForbidden("closed", "closed")
