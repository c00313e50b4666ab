"""Who is writing: only what the channel verified counts; everything else is a claim."""

from actions.customer_identity import claimed_email, verified_identity

from tests.actions.conftest import make_tracker, signed_in


def user(metadata=None, text="hi"):
    return {"event": "user", "text": text, "parse_data": {}, "metadata": metadata or {}}


def test_the_channels_verified_identity_is_the_customer():
    tracker = make_tracker("widget-1", metadata=signed_in("Ada@Example.com", "Ada Lovelace"))

    identity = verified_identity(tracker)

    assert identity["email"] == "ada@example.com"
    assert identity["name"] == "Ada Lovelace"


def test_an_unsigned_email_in_the_metadata_is_not_an_identity():
    assert verified_identity(make_tracker("widget-1", metadata={"email": "ada@example.com"})) is None


def test_an_email_shaped_sender_id_is_not_an_identity():
    assert verified_identity(make_tracker("ada@example.com")) is None


def test_an_identity_without_verified_true_is_not_one():
    for identity in ({"email": "ada@example.com"}, {"email": "ada@example.com", "verified": "true"}):
        assert verified_identity(make_tracker("widget-1", metadata={"identity": identity})) is None


def test_a_later_message_without_the_token_keeps_the_sessions_identity():
    tracker = make_tracker("widget-1", metadata={})
    tracker.events.insert(0, user(signed_in("ada@example.com")))

    assert verified_identity(tracker)["email"] == "ada@example.com"


def test_an_identity_from_before_the_session_started_is_forgotten():
    tracker = make_tracker("widget-1", metadata={})
    tracker.events[:0] = [user(signed_in("ada@example.com")), {"event": "session_started"}]

    assert verified_identity(tracker) is None


def test_the_newest_verified_identity_wins():
    tracker = make_tracker("widget-1", metadata=signed_in("grace@example.com"))
    tracker.events.insert(0, user(signed_in("ada@example.com")))

    assert verified_identity(tracker)["email"] == "grace@example.com"


def test_a_claim_comes_from_the_slot_then_the_metadata_then_the_sender_id():
    assert claimed_email(make_tracker("ada@example.com", slots={"customer_email": "Sam@Example.com"})) == "sam@example.com"
    assert claimed_email(make_tracker("ada@example.com", metadata={"email": "Grace@Example.com "})) == "grace@example.com"
    assert claimed_email(make_tracker("Ada@Example.com")) == "ada@example.com"
    assert claimed_email(make_tracker("3f0c2a9e-widget-session")) is None
