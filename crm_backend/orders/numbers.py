"""Order numbers as customers write them, in one canonical form.

The rules (the assistant's own parser, in the bot's environment, copies them;
docs/api.md "Orders" states them):

- the canonical form is ``NW-`` and the digits: ``NW-100234``;
- accepted: the digits alone (``100234``), after ``#`` (``#100234``), or after
  ``NW`` in any case with or without ``-``, ``_`` or spaces between
  (``nw100234``, ``NW 100234``, ``nw-#100234``); spaces around are ignored;
- 3 to 12 ASCII digits, kept as written (leading zeros too: ``NW-0042`` is
  not ``NW-42``);
- anything else is not an order number (``None``), never a guess.
"""

import re

PREFIX = "NW-"
_ORDER_NUMBER = re.compile(r"^(?:nw)?[\s_-]*#?\s*([0-9]{3,12})$", re.IGNORECASE)
MAX_REFERENCE_LENGTH = 40


def normalise_order_number(reference: str | None) -> str | None:
    """``NW-100234`` for any accepted way of writing it, else None."""
    if not reference or len(reference) > MAX_REFERENCE_LENGTH:
        return None
    match = _ORDER_NUMBER.match(reference.strip())
    return f"{PREFIX}{match.group(1)}" if match else None
