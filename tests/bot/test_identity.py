"""The signed customer identity: what a host site's token proves, and what a
client can no longer claim (bot/identity.py, docs/security.md)."""

import base64
import json

import jwt
import pytest
from rasa.shared.core.events import ActionExecuted, SessionStarted, UserUttered

from bot.identity import Identity, identify, verified_email_of_session, verify_identity_token

SECRET = "host-site-secret-0123456789abcdef0123"
NOW = 1_800_000_000.0


def token(secret=SECRET, algorithm="HS256", **claims):
    claims = {"email": "Ada@Example.com", "name": "Ada Lovelace", "iat": int(NOW), "exp": int(NOW) + 3600, **claims}
    claims = {key: value for key, value in claims.items() if value is not None}
    return jwt.encode(claims, secret, algorithm=algorithm)


def unsigned(claims):
    def part(data):
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def test_a_token_the_host_site_signed_is_the_customers_verified_identity():
    identity = verify_identity_token(token(external_id="cust-42"), SECRET, now=NOW)

    assert identity == Identity(email="ada@example.com", name="Ada Lovelace", external_id="cust-42", via="token")


def test_an_expired_token_proves_nothing():
    assert verify_identity_token(token(iat=int(NOW) - 7200, exp=int(NOW) - 1), SECRET, now=NOW) is None


def test_a_token_signed_with_another_key_proves_nothing():
    assert verify_identity_token(token(secret="someone-elses-secret-0123456789abcdef"), SECRET, now=NOW) is None


def test_a_token_with_its_signature_changed_proves_nothing():
    header, payload, signature = token().split(".")
    forged_payload = base64.urlsafe_b64encode(
        json.dumps({"email": "bob@example.com", "exp": int(NOW) + 60}).encode()
    ).rstrip(b"=").decode()

    assert verify_identity_token(f"{header}.{forged_payload}.{signature}", SECRET, now=NOW) is None


def test_an_unsigned_token_alg_none_proves_nothing():
    assert verify_identity_token(unsigned({"email": "ada@example.com", "exp": int(NOW) + 60}), SECRET, now=NOW) is None


def test_only_hs256_is_accepted():
    assert verify_identity_token(token(algorithm="HS512"), SECRET, now=NOW) is None


def test_a_token_valid_for_more_than_a_day_is_refused():
    assert verify_identity_token(token(exp=int(NOW) + 24 * 3600 + 61), SECRET, now=NOW) is None
    assert verify_identity_token(token(exp=int(NOW) + 24 * 3600), SECRET, now=NOW) is not None


def test_a_token_without_an_expiry_is_refused():
    assert verify_identity_token(token(exp=None), SECRET, now=NOW) is None


def test_a_token_issued_in_the_future_is_refused_beyond_a_minute_of_clock_skew():
    assert verify_identity_token(token(iat=int(NOW) + 120), SECRET, now=NOW) is None
    assert verify_identity_token(token(iat=int(NOW) + 30), SECRET, now=NOW) is not None


@pytest.mark.parametrize("email", [None, "", "not-an-address", "ada@localhost", 42, ["ada@example.com"], "a b@example.com"])
def test_a_token_without_a_valid_email_is_refused(email):
    assert verify_identity_token(token(email=email), SECRET, now=NOW) is None


def test_a_name_that_is_not_text_makes_the_token_malformed():
    assert verify_identity_token(token(name={"first": "Ada"}), SECRET, now=NOW) is None


@pytest.mark.parametrize(
    "garbage",
    [None, 42, "", "garbage", "a.b.c", "....", "\ud800.\x00.x", "e30.e30.", token() + "x", "x" * 5000, {"token": "x"}],
)
def test_garbage_is_no_identity(garbage):
    assert verify_identity_token(garbage, SECRET, now=NOW) is None


def test_without_a_secret_no_token_verifies():
    assert verify_identity_token(token(), None, now=NOW) is None
    assert verify_identity_token(token(), "", now=NOW) is None


def test_a_lone_surrogate_in_a_signed_name_is_cleaned():
    identity = verify_identity_token(token(name="Ada\ud800\x00"), SECRET, now=NOW)

    assert identity.name == "Ada"


# --- the metadata Rasa gets ----------------------------------------------


def test_a_client_sent_identity_never_survives():
    forged = {"email": "ada@example.com", "name": "Ada", "verified": True, "via": "token"}

    metadata, identity = identify({"identity": forged, "email": "ada@example.com", "channel": "web"}, SECRET)

    assert identity is None
    assert metadata == {"email": "ada@example.com", "channel": "web"}  # the email: a mere claim


def test_a_verified_token_replaces_what_the_client_said_and_is_not_kept():
    raw = {"identity_token": token(), "identity": {"email": "mallory@example.com", "verified": True}}

    metadata, identity = identify(raw, SECRET, now=NOW)

    assert identity.email == "ada@example.com"
    assert metadata == {
        "identity": {"email": "ada@example.com", "name": "Ada Lovelace", "external_id": None, "verified": True, "via": "token"}
    }
    assert raw["identity"]["email"] == "mallory@example.com"  # the client's dict is not changed


def test_an_invalid_token_is_dropped_and_gives_no_identity():
    metadata, identity = identify({"identity_token": token(exp=int(NOW) - 1), "channel": "web"}, SECRET, now=NOW)

    assert (metadata, identity) == ({"channel": "web"}, None)


def test_only_an_integration_may_assert_an_email():
    anonymous, nobody = identify({"email": "Ada@example.com", "name": "Ada"}, SECRET)
    _, integration = identify({"email": "Ada@example.com", "name": "Ada"}, SECRET, integration=True)

    assert nobody is None and "identity" not in anonymous
    assert integration == Identity(email="ada@example.com", name="Ada", via="integration")


def test_the_sessions_verified_email_is_the_newest_since_the_session_started():
    def user(email=None, verified=True):
        metadata = {"identity": {"email": email, "verified": verified}} if email else {}
        return UserUttered("hi", metadata=metadata)

    events = [user("old@example.com"), ActionExecuted("action_session_start"), SessionStarted()]
    assert verified_email_of_session(events) is None
    events += [user("ada@example.com"), user(), user("bob@example.com", verified="yes")]
    assert verified_email_of_session(events) == "ada@example.com"
