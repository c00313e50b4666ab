"""Our signer and verifier against the standardwebhooks library, as properties (hypothesis)."""

import base64
import time
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from standardwebhooks import Webhook
from werkzeug.datastructures import Headers

from crm_backend.webhooks import signing

secrets_ = st.binary(min_size=16, max_size=64).map(lambda raw: "whsec_" + base64.b64encode(raw).decode())
message_ids = st.from_regex(r"\A[\x21-\x7e]{1,64}\Z")
bodies = st.text(max_size=400).map(lambda text: text.encode("utf-8"))
# Within the library's 5-minute tolerance of the real clock.
offsets = st.integers(min_value=-290, max_value=290)
fast = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def library_accepts(secret: str, body: bytes, headers: dict) -> bool:
    try:
        Webhook(secret).verify(body, headers, json_parse=False)
    except Exception:  # noqa: BLE001  (it raises several kinds for bad input)
        return False
    return True


def ours_accepts(secret: str, body: bytes, headers: dict, now: float | None = None) -> bool:
    try:
        signing.verify([secret], body, headers, now=time.time() if now is None else now)
    except signing.SignatureError:
        return False
    return True


@fast
@given(secret=secrets_, message_id=message_ids, body=bodies, offset=offsets)
def test_what_we_sign_the_library_verifies(secret, message_id, body, offset):
    headers = signing.signed_headers([secret], message_id, int(time.time()) + offset, body)

    assert library_accepts(secret, body, headers)


@fast
@given(secret=secrets_, message_id=message_ids, body=bodies, offset=offsets)
def test_what_the_library_signs_we_verify(secret, message_id, body, offset):
    timestamp = int(time.time()) + offset
    signature = Webhook(secret).sign(message_id, datetime.fromtimestamp(timestamp, tz=timezone.utc), body.decode())
    headers = {"webhook-id": message_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}

    assert ours_accepts(secret, body, headers)
    assert signing.sign(secret, message_id, timestamp, body) == signature


@fast
@given(secret=secrets_, other=secrets_, message_id=message_ids, body=bodies, extra=st.binary(min_size=1, max_size=8))
def test_any_tampering_is_refused_by_both(secret, other, message_id, body, extra):
    assume(other != secret)
    timestamp = int(time.time())
    headers = signing.signed_headers([secret], message_id, timestamp, body)
    tampered_body = body + extra
    assume(_utf8(tampered_body))
    cases = [
        (secret, tampered_body, headers),
        (secret, body, {**headers, "webhook-id": message_id + "x"}),
        (secret, body, {**headers, "webhook-timestamp": str(timestamp - 1)}),
        (other, body, headers),
    ]

    for key, sent_body, sent_headers in cases:
        assert not ours_accepts(key, sent_body, sent_headers)
        assert not library_accepts(key, sent_body, sent_headers)


@settings(max_examples=300, deadline=None)
@given(
    secret=secrets_,
    body=bodies,
    message_id=st.text(max_size=20),
    timestamp=st.one_of(st.integers(min_value=-(10**13), max_value=10**13).map(str), st.text(max_size=14)),
    signature=st.one_of(st.text(max_size=120), st.lists(st.sampled_from(["v1,", "v1a,", "v2,", " ", ",", "=", "AAAA"]), max_size=12).map("".join)),
)
def test_whatever_headers_arrive_ours_raises_only_signature_error_and_accepts_only_what_the_library_accepts(secret, body, message_id, timestamp, signature):
    headers = {"webhook-id": message_id, "webhook-timestamp": timestamp, "webhook-signature": signature}

    accepted = ours_accepts(secret, body, headers)  # never raises anything else

    if accepted:
        assert library_accepts(secret, body, headers)


@fast
@given(old=secrets_, new=secrets_, message_id=message_ids, body=bodies)
def test_during_a_rotation_either_secret_verifies(old, new, message_id, body):
    headers = signing.signed_headers([new, old], message_id, int(time.time()), body)

    assert library_accepts(new, body, headers) and library_accepts(old, body, headers)
    assert ours_accepts(new, body, headers) and ours_accepts(old, body, headers)


@pytest.mark.parametrize("age, accepted", [(0, True), (299, True), (300, True), (301, False), (-300, True), (-301, False), (3600, False)])
def test_timestamps_more_than_five_minutes_off_are_refused(age, accepted):
    secret, now = signing.new_secret(), 1_800_000_000
    headers = signing.signed_headers([secret], "msg_1", now - age, b"{}")

    assert ours_accepts(secret, b"{}", headers, now=now) is accepted


def test_missing_headers_are_refused_with_a_reason():
    with pytest.raises(signing.SignatureError, match="webhook-signature header is missing"):
        signing.verify([signing.new_secret()], b"{}", Headers({"webhook-id": "a", "webhook-timestamp": "1"}), now=1)


def test_new_secrets_are_whsec_with_32_random_bytes():
    secrets = {signing.new_secret() for _ in range(100)}

    assert len(secrets) == 100
    for secret in secrets:
        assert secret.startswith("whsec_") and signing.is_secret(secret)
        assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert not signing.is_secret("whsec_not base64!") and not signing.is_secret("sk_live_abc")


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
