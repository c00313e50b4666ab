"""The size, shape and rate of chat messages (bot/chat_limits.py): cleaning,
the token buckets in the process and in Redis, the client's address."""

import asyncio
import json
import logging
import shutil
import subprocess
import time

import pytest

from bot.chat_limits import ChatLimits, LocalBuckets, RateLimiter, clean_metadata, clean_text, client_ip
from bot.sessions import SessionSigner
from harness.ports import free_port


def nested(depth):
    value = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


# --- text and metadata ---------------------------------------------------


def test_nul_bytes_are_removed_and_lone_surrogates_replaced():
    assert clean_text("hi\x00 there\ud800!") == "hi there\ufffd!"
    assert clean_text("an emoji 🙂 stays").encode("utf-8")


def test_metadata_that_is_not_an_object_is_empty():
    for raw in ([1, 2, 3], "[1, 2, 3]", 42, "not json {", True, b"\x00bytes"):
        assert clean_metadata(raw, 4096) == {}


def test_a_json_string_holding_an_object_is_parsed():
    assert clean_metadata('{"email": "ada@example.com"}', 4096) == {"email": "ada@example.com"}


def test_lone_surrogates_and_nul_bytes_in_keys_and_values_are_cleaned():
    raw = {"na\ud800me": ["x\x00y", {"deep": "\udfff"}], "n": 1.5, "ok": None}

    cleaned = clean_metadata(raw, 4096)

    assert cleaned == {"na\ufffdme": ["xy", {"deep": "\ufffd"}], "n": 1.5, "ok": None}
    json.dumps(cleaned).encode("utf-8")  # encodable now


def test_metadata_nested_deeper_than_eight_levels_is_dropped(caplog):
    assert clean_metadata(nested(8), 4096) == nested(8)
    with caplog.at_level(logging.INFO, logger="bot.chat_limits"):
        assert clean_metadata(nested(9), 4096) == {}
        assert clean_metadata(nested(5_000), 4096) == {}  # deeper than recursion could go: no RecursionError
    assert "too deep" in caplog.text


def test_metadata_larger_than_the_limit_is_dropped():
    assert clean_metadata({"note": "x" * 4000}, 4096) == {"note": "x" * 4000}
    assert clean_metadata({"note": "x" * 4100}, 4096) == {}
    assert clean_metadata({"note": "é" * 2100}, 4096) == {}  # bytes of UTF-8, not characters
    assert clean_metadata(json.dumps({"note": "x" * 5000}), 4096) == {}


def test_values_json_cannot_hold_make_the_metadata_unfit():
    assert clean_metadata({"x": float("nan")}, 4096) == {}
    assert clean_metadata({"x": b"bytes"}, 4096) == {}
    assert clean_metadata({1: "x"}, 4096) == {}


# --- client address ------------------------------------------------------


def test_the_address_is_the_peers_unless_a_local_proxy_forwarded_it():
    assert client_ip("203.0.113.9", None) == "203.0.113.9"
    # A remote peer's header is the client's to forge: ignored.
    assert client_ip("203.0.113.9", "198.51.100.1") == "203.0.113.9"
    # Behind the local nginx: the hop nginx appended, not what the client sent before it.
    assert client_ip("127.0.0.1", "10.9.9.9, 198.51.100.7") == "198.51.100.7"
    assert client_ip("127.0.0.1", None) == "127.0.0.1"
    assert client_ip("", None) == "unknown"


# --- rates ---------------------------------------------------------------


def test_a_bucket_lets_its_burst_through_then_one_message_per_refill():
    buckets = LocalBuckets()
    bucket = [("sender:s", 20, 1.0)]

    allowed = [buckets.take(bucket, now=100.0) == 0 for _ in range(40)]

    assert allowed.count(True) == 20 and allowed[:20] == [True] * 20
    assert buckets.take(bucket, now=100.0) == pytest.approx(1.0)
    assert buckets.take(bucket, now=101.0) == 0  # a second later: one more


def test_a_message_refused_by_one_bucket_takes_nothing_from_the_other():
    buckets = LocalBuckets()
    sender, address = ("sender:s", 1, 1.0), ("ip:a", 5, 1.0)

    assert buckets.take([sender, address], now=0.0) == 0
    assert buckets.take([sender, address], now=0.0) > 0
    # The address's bucket still holds 4 of its 5.
    assert [buckets.take([(f"sender:{n}", 1, 1.0), address], now=0.0) for n in range(5)].count(0) == 4


def test_rate_limits_set_to_zero_are_off():
    limiter = RateLimiter(ChatLimits(sender_burst=0, ip_burst=0))

    assert all(asyncio.run(limiter.take("s", "127.0.0.1")) == 0 for _ in range(100))


@pytest.fixture
def redis_url():
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout.strip() != b"PONG":
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/4"
    finally:
        process.terminate()
        process.wait(10)


def test_instances_count_together_in_redis(redis_url):
    limits = ChatLimits(sender_burst=20, sender_per_minute=60, redis_url=redis_url)
    first, second = RateLimiter(limits), RateLimiter(limits)  # two Rasa instances

    async def burst():
        results = []
        for number in range(40):
            limiter = first if number % 2 else second
            results.append(await limiter.take("conversation-1", "127.0.0.1"))
        return results

    waits = asyncio.run(burst())

    assert [wait == 0 for wait in waits].count(True) == 20
    assert first.local._buckets == {} and second.local._buckets == {}  # nothing counted in the processes


def test_without_redis_counting_goes_on_in_the_process_and_is_logged_once(caplog):
    limiter = RateLimiter(ChatLimits(sender_burst=20, redis_url=f"redis://127.0.0.1:{free_port()}/4"))

    async def burst():
        return [await limiter.take("conversation-1", "127.0.0.1") for _ in range(40)]

    with caplog.at_level(logging.WARNING, logger="bot.chat_limits"):
        waits = asyncio.run(burst())

    assert [wait == 0 for wait in waits].count(True) == 20
    assert caplog.text.count("Redis failed") == 1


# --- socket.io session tokens ----------------------------------------------


def test_a_session_token_is_the_contracts_hmac_of_the_session_id():
    import base64
    import hashlib
    import hmac

    secret = "s3cret-0123456789abcdef0123456789"
    session_id = "0123456789abcdef0123456789abcdef"
    key = hmac.new(secret.encode(), b"helpdesk socket.io session", hashlib.sha256).digest()
    expected = base64.urlsafe_b64encode(hmac.new(key, session_id.encode(), hashlib.sha256).digest()).rstrip(b"=").decode()

    signer = SessionSigner(secret)

    assert signer.token_for(session_id) == expected
    assert signer.session_for(session_id, expected) == (session_id, expected, True)


def test_a_session_id_without_its_token_gets_a_new_session():
    signer = SessionSigner("s3cret-0123456789abcdef0123456789")
    for token in (None, "", "x" * 43, SessionSigner("another-secret-0123456789abcdef").token_for("victim"), "é"):
        session_id, new_token, kept = signer.session_for("victim", token)
        assert not kept and session_id != "victim" and len(session_id) == 32
        assert signer.session_for(session_id, new_token)[2]


def test_the_process_forgets_buckets_that_are_full_again(monkeypatch):
    monkeypatch.setattr("bot.chat_limits.MAX_LOCAL_BUCKETS", 10)
    buckets = LocalBuckets()
    for n in range(10):
        buckets.take([(f"sender:{n}", 20, 1.0)], now=0.0)
    buckets.take([("sender:busy", 2, 0.01)], now=0.0)  # 100 s to refill its one token

    buckets.take([("sender:late", 20, 1.0)], now=5.0)

    assert set(buckets._buckets) == {"sender:busy", "sender:late"}
