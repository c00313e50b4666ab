"""Dead letters: what a worker cannot handle is recorded once, readable, and
without the customer's email address; text is made storable first."""

import logging

from sqlalchemy import select

from crm_backend import dead_letters
from crm_backend.db import get_session
from crm_backend.models import DeadLetter


def test_lone_surrogates_become_replacement_characters_and_nul_is_dropped():
    assert dead_letters.clean_text("hi \ud800 there\x00!") == "hi \ufffd there!"
    assert dead_letters.clean_text("caf\u00e9 \U0001f600") == "caf\u00e9 \U0001f600"  # real characters stay


def test_an_excerpt_is_escaped_bounded_and_masks_email_addresses():
    shown = dead_letters.excerpt('{"email": "ada@example.com", "x": "\ud800\x00"}' + "y" * 5000)

    assert shown.startswith('{"email": "<email>", "x": "\\ud800\\x00"}')
    assert len(shown) == dead_letters.EXCERPT_CHARS
    assert dead_letters.excerpt(b"\xff\xfe{") == "\\xff\\xfe{"


def test_an_item_is_set_aside_once_and_logged_by_id_without_the_email(app, caplog):
    error = UnicodeEncodeError("utf-8", "ada\ud800@example.com", 3, 4, "surrogates not allowed")
    with app.app_context(), caplog.at_level(logging.WARNING, logger="crm_backend.dead_letters"):
        session = get_session()
        first = dead_letters.set_aside(session, source="follower", position="event 7", error=error, raw='{"email": "ada@example.com"}')
        again = dead_letters.set_aside(session, source="follower", position="event 7", error=error, raw="read again after a restart")
        rows = list(session.scalars(select(DeadLetter)))

    assert first is not None and again is None
    [row] = rows
    assert (row.source, row.position, row.excerpt) == ("follower", "event 7", '{"email": "<email>"}')
    assert row.error.startswith("UnicodeEncodeError: 'utf-8' codec can't encode character '\\ud800'")
    assert [record.getMessage() for record in caplog.records] == [f"follower: set aside event 7 as dead letter {first}: {row.error}"]
    assert "example.com" not in caplog.text
