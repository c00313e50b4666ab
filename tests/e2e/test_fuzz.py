"""Property-based fuzzing of the chat channels through the real stack (issue 19).

Whatever an anonymous visitor sends to the REST channel or over socket.io —
any JSON (non-objects, absurd nesting, lone surrogates written as raw
``\\udXXX`` escapes, NUL, wrong types for every field, long strings, unknown
keys, forged identities) or bytes that are no JSON at all — the answer is
never a 5xx, every process of the stack is still the same live process
afterwards, and a normal "hi" is still answered at the end.

One stack for the module, started as `make run` starts it (with its NLU
worker). Hypothesis runs derandomized (the same examples on every run) with a
bounded number of examples, about two minutes in all. A process that dies is
recorded with the payload sent just before it and reported by the last test
(a dead process would make every later example fail, which shrinking would
only blur).
"""

from __future__ import annotations

import json
import queue
import re
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import requests
import socketio
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from harness.processes import alive, descendants
from harness.stack import Stack

REST_JSON_EXAMPLES = 110
REST_BYTES_EXAMPLES = 40
SOCKETIO_EXAMPLES = 100
REQUEST_TIMEOUT = 60
# The size limits' defaults (CHAT_MAX_MESSAGE_CHARS, CHAT_MAX_METADATA_BYTES): fuzz around and far beyond them.
MAX_MESSAGE_CHARS = 2000
MAX_METADATA_BYTES = 4096

FUZZ = dict(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)

# Stand-ins the tests replace with the real values: the REST channel's
# integration token, and the session id the server issued to this socket.
CHANNEL_TOKEN = "<rest channel token>"
BOUND_SESSION = "<bound session id>"


def cmdline(pid: int) -> str:
    """The process's command line, without the secret Rasa's is started with."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""
    return re.sub(r"--auth-token=\S+", "--auth-token=...", command)


class Watch:
    """The stack's processes when fuzzing began; which of them died, and after what."""

    def __init__(self, stack: Stack):
        self.stack = stack
        self.processes = {pid: cmdline(pid) for pid in descendants(stack.process.pid) | {stack.process.pid}}
        self.deaths: dict[int, str] = {}
        self.last_payloads: list[str] = []
        self.statuses: Counter = Counter()  # REST answers by status code
        self.log_start = len(stack.log())

    def sent(self, description: str) -> None:
        self.last_payloads = [*self.last_payloads[-4:], description[:600]]
        for pid, command in self.processes.items():
            if pid not in self.deaths and not alive(pid):
                self.deaths[pid] = f"{command[:160]} died after: " + " | then: ".join(self.last_payloads)

    def logged_since_start(self) -> str:
        return self.stack.log()[self.log_start:]


@pytest.fixture(scope="module")
def watched(tmp_path_factory) -> Watch:
    stack = Stack(var_dir=tmp_path_factory.mktemp("fuzz") / "var", extra_env={"BOT_NLU_WORKER": "1"}).start()
    try:
        stack.nlu_worker_pid()  # every process of `make run` is up, the NLU worker included
        yield Watch(stack)
    finally:
        stack.stop()


# --- what an anonymous visitor can send ------------------------------------

SPECIALS = st.sampled_from([
    "\ud800", "\udbff", "\udc00", "\udfff", "\x00", "\u202e", "\ufeff", "\U0001f600", "\uffff",
    "'", '"', "\\", "<script>alert(1)</script>", "%s%n", "{{7*7}}", "${jndi:x}", "\r\n", "' OR 1=1 --",
])
TEXT = st.lists(st.one_of(st.characters(exclude_categories=()), SPECIALS), max_size=30).map("".join)
# Messages Rasa reads as intents with entities, which a visitor can type too.
COMMANDS = st.sampled_from([
    "/restart", "/session_start", "/back", "/handoff", "/greet", '/inform{"feedback_score":"5"}',
    '/inform{"customer_email":"ada@example.com"}', '/inform{"ticket_number":"TCK-000001"}', "/inform{", "/",
    "/action_listen", '/greet{"a":' * 50,
])
LONG_TEXT = st.tuples(
    st.sampled_from([MAX_MESSAGE_CHARS - 1, MAX_MESSAGE_CHARS, MAX_MESSAGE_CHARS + 1, 10_000, 70_000, 300_000]),
    st.sampled_from(["refund ", "a", "\ud83d", "\x00 ", "é", "TCK-000001 "]),
).map(lambda size_piece: (size_piece[1] * size_piece[0])[: size_piece[0]])
NUMBERS = st.one_of(
    st.integers(), st.sampled_from([2**63, -(2**63) - 1, 10**400]), st.floats(allow_nan=True, allow_infinity=True)
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT, COMMANDS)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=5), st.dictionaries(TEXT, children, max_size=5)),
    max_leaves=25,
)
EMAILS = st.one_of(
    st.sampled_from(["ada@example.com", "ADA@EXAMPLE.COM", "ada@example.com\x00", "ada@example.com\ud800", "@", "a@b"]),
    TEXT,
)
FORGED_TOKENS = st.sampled_from([
    "", "x", "a.b.c", "eyJhbGciOiJub25lIn0.eyJlbWFpbCI6ImFkYUBleGFtcGxlLmNvbSJ9.",  # alg none, ada
    "eyJhbGciOiJIUzI1NiJ9.eyJlbWFpbCI6ImFkYUBleGFtcGxlLmNvbSIsImV4cCI6OTk5OTk5OTk5OX0.c2lnbmF0dXJl",  # forged
    "eyJ" + "A" * 10_000 + ".e30.x",
])


def deep(depth: int, opening: str = "[", closing: str = "]", inner: str = "1") -> str:
    return opening * depth + inner + closing * depth


DEPTHS = st.sampled_from([1_000, 10_000, 100_000])
METADATA = st.one_of(
    JSON_VALUES,
    st.fixed_dictionaries(
        {},
        optional={
            "identity_token": st.one_of(FORGED_TOKENS, TEXT, JSON_VALUES),
            "identity": st.one_of(
                JSON_VALUES, st.fixed_dictionaries({"email": EMAILS, "verified": st.just(True), "via": TEXT})
            ),
            "email": st.one_of(EMAILS, JSON_VALUES),
            "name": st.one_of(TEXT, JSON_VALUES),
            "channel": st.one_of(TEXT, JSON_VALUES),
            "padding": st.sampled_from([MAX_METADATA_BYTES - 20, MAX_METADATA_BYTES + 1, 100_000]).map(lambda n: "m" * n),
        },
    ),
)
REST_OBJECTS = st.tuples(
    st.fixed_dictionaries(
        {},
        optional={
            "sender": st.one_of(TEXT, EMAILS, JSON_VALUES, LONG_TEXT),
            "message": st.one_of(TEXT, COMMANDS, LONG_TEXT, JSON_VALUES),
            "metadata": METADATA,
            "input_channel": st.one_of(TEXT, JSON_VALUES),
        },
    ),
    st.dictionaries(TEXT, JSON_VALUES, max_size=3),  # unknown keys
).map(lambda parts: {**parts[1], **parts[0]})


# A well-formed envelope around the rest, so that most bodies get past the
# channel's checks to Rasa, the actions, the CRM and its workers.
ENVELOPES = st.tuples(
    st.fixed_dictionaries(
        {
            "sender": st.from_regex(r"fuzz-[a-z0-9]{1,8}", fullmatch=True),
            "message": st.one_of(TEXT, COMMANDS, LONG_TEXT),
        },
        optional={"metadata": METADATA},
    ),
    st.dictionaries(TEXT, JSON_VALUES, max_size=2),
).map(lambda parts: {**parts[1], **parts[0]})


@st.composite
def rest_bodies(draw) -> tuple[bytes, dict, str]:
    """(body, headers, query) for one POST to the REST channel."""
    shape = draw(st.sampled_from(["envelope"] * 4 + ["object", "object", "value", "deep", "deep-metadata"]))
    if shape == "envelope":
        value = draw(ENVELOPES)
    elif shape == "object":
        value = draw(REST_OBJECTS)
    elif shape == "value":
        value = draw(JSON_VALUES)
    if shape == "deep":
        opening, closing = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        text = deep(draw(DEPTHS), opening, closing)
    elif shape == "deep-metadata":
        text = '{"sender":"fuzz-deep","message":"hi","metadata":' + deep(draw(DEPTHS), '{"a":', "}") + "}"
    else:
        # ASCII with \udXXX escapes, or raw UTF-8 where a lone surrogate becomes bytes no decoder takes.
        text = json.dumps(value, ensure_ascii=draw(st.booleans()))
    headers = {"Content-Type": draw(st.sampled_from(["application/json", "text/plain", "application/json; charset=latin-1"]))}
    authorization = draw(st.sampled_from([None] * 5 + ["Bearer " + CHANNEL_TOKEN] * 2 + ["Bearer wrong", "Basic Og==", "Bearer"]))
    if authorization:
        headers["Authorization"] = authorization
    query = draw(st.sampled_from(["", "", "?stream=true", "?stream=yes&token=x"]))
    return text.encode("utf-8", "surrogatepass"), headers, query


def post_rest(watched: Watch, body: bytes, headers: dict, query: str = "") -> requests.Response:
    stack = watched.stack
    headers = {k: v.replace(CHANNEL_TOKEN, stack.rest_channel_token) for k, v in headers.items()}
    try:
        response = requests.post(f"{stack.rasa_url}/webhooks/rest/webhook{query}", data=body, headers=headers,
                                 timeout=REQUEST_TIMEOUT)
        response.content  # a streamed answer must end too
    finally:
        watched.sent(f"REST {query} {headers} {body[:400]!r} ({len(body)} bytes)")
    watched.statuses[response.status_code] += 1
    return response


# --- REST --------------------------------------------------------------------


@settings(max_examples=REST_JSON_EXAMPLES, **FUZZ)
@given(sent=rest_bodies())
@example(sent=(b"[1,2,3]", {"Content-Type": "application/json"}, ""))
@example(sent=(b'{"sender":"fuzz","message":"hi","metadata":{"email":"\\ud800"}}', {}, ""))
@example(sent=(b'{"sender":"\\udfff","message":"\\ud800 hi \\u0000"}', {}, ""))
@example(sent=(b'{"sender":"fuzz-nul","message":"hi\\u0000","metadata":{"\\u0000":"\\udc00"}}', {}, ""))
@example(sent=(deep(100_000).encode(), {"Content-Type": "application/json"}, ""))
@example(sent=(b'{"sender":1,"message":2,"metadata":3}', {}, ""))
@example(sent=(b'{"sender":null,"message":null,"metadata":null}', {}, "?stream=true"))
@example(sent=(json.dumps({"sender": "fuzz-long", "message": "a" * 63_000}).encode(), {}, ""))
def test_the_rest_channel_never_answers_5xx_to_any_json(watched, sent):
    body, headers, query = sent

    response = post_rest(watched, body, headers, query)

    assert response.status_code < 500, (response.status_code, response.text[:300])


@settings(max_examples=REST_BYTES_EXAMPLES, **FUZZ)
@given(
    body=st.one_of(st.binary(max_size=2000), st.binary(min_size=1, max_size=8).map(lambda b: b * 20_000)),
    content_type=st.sampled_from([None, "application/json", "application/octet-stream", "multipart/form-data"]),
)
@example(body=b"\xff\xfe{\x00", content_type="application/json")
@example(body=b'{"sender": "fuzz", "message": "\xed\xa0\x80"}', content_type="application/json")
@example(body=b"", content_type="application/json")
def test_the_rest_channel_never_answers_5xx_to_bytes(watched, body, content_type):
    headers = {"Content-Type": content_type} if content_type else {}

    response = post_rest(watched, body, headers)

    assert response.status_code < 500, (response.status_code, response.text[:300])


# --- socket.io ---------------------------------------------------------------

SESSION_REQUESTS = st.one_of(
    st.none(),
    JSON_VALUES,
    st.binary(max_size=64),
    st.fixed_dictionaries(
        {},
        optional={
            "session_id": st.one_of(TEXT, JSON_VALUES, st.just(BOUND_SESSION), LONG_TEXT),
            "session_token": st.one_of(TEXT, FORGED_TOKENS, JSON_VALUES),
        },
    ),
)
USER_UTTERANCES = st.one_of(
    st.none(),
    JSON_VALUES,
    st.binary(max_size=64),
    st.tuples(
        st.fixed_dictionaries(
            {"session_id": st.one_of(st.just(BOUND_SESSION), st.just(BOUND_SESSION), TEXT, JSON_VALUES)},
            optional={
                "message": st.one_of(TEXT, COMMANDS, LONG_TEXT, JSON_VALUES),
                "customData": METADATA,
                "message_id": st.one_of(TEXT, JSON_VALUES),
                "resend": st.one_of(st.booleans(), JSON_VALUES),
            },
        ),
        st.dictionaries(TEXT, JSON_VALUES, max_size=3),
    ).map(lambda parts: {**parts[1], **parts[0]}),
)


def bind(value, session_id: str | None):
    """``value`` with the BOUND_SESSION stand-in replaced by the session id the server issued."""
    if value == BOUND_SESSION:
        return session_id
    if isinstance(value, dict):
        return {key: bind(item, session_id) for key, item in value.items()}
    return value


class Socket:
    """One socket.io client, as a widget (or anything else) holds it."""

    def __init__(self, url: str):
        self.confirmations: queue.Queue = queue.Queue()
        self.replies: queue.Queue = queue.Queue()
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("session_confirm", self.confirmations.put)
        self.sio.on("bot_uttered", self.replies.put)
        self.sio.connect(url, transports=["websocket"], socketio_path="socket.io", wait_timeout=10)

    def request_session(self, payload=..., timeout: float = 0.5) -> str | None:
        """Emits session_request (with ``payload``, or with no data); the id confirmed, if any."""
        if payload is ...:
            self.sio.emit("session_request")
        else:
            self.sio.emit("session_request", payload)
        try:
            confirmed = self.confirmations.get(timeout=timeout)
        except queue.Empty:
            return None
        return confirmed.get("session_id") if isinstance(confirmed, dict) else confirmed

    def close(self) -> None:
        try:
            self.sio.disconnect()
        except Exception:  # noqa: BLE001 - the server may have closed it already
            pass


@settings(max_examples=SOCKETIO_EXAMPLES, **FUZZ)
@given(session_request=SESSION_REQUESTS, utterance=USER_UTTERANCES, no_data=st.booleans())
@example(session_request={"session_id": "\ud800", "session_token": "\x00"}, utterance=None, no_data=False)
@example(session_request={}, utterance={"session_id": BOUND_SESSION, "message": "hi", "customData": {"email": "\ud800"}},
         no_data=False)
@example(session_request=[1, 2, 3], utterance=[1, 2, 3], no_data=True)
@example(session_request={}, utterance={"session_id": BOUND_SESSION, "message": "a" * 63_000}, no_data=False)
def test_socketio_survives_any_session_request_and_message(watched, session_request, utterance, no_data):
    client = Socket(watched.stack.rasa_url)
    try:
        # The session the server issues (or confirms) for what was sent.
        issued = client.request_session(... if no_data else bind(session_request, None))
        payload = bind(utterance, issued)
        if payload is None:
            client.sio.emit("user_uttered")
        else:
            client.sio.emit("user_uttered", payload)
        try:
            client.replies.get(timeout=0.3)  # a reply, if the message was taken; nothing is asserted about it
        except queue.Empty:
            pass
    finally:
        client.close()
        watched.sent(f"socket.io session_request {session_request!r:.300} then user_uttered {utterance!r:.300}")


# --- afterwards ----------------------------------------------------------------


def test_every_process_survived_and_hi_is_still_answered(watched):
    time.sleep(5)  # the follower and the other workers read what the fuzzing left in the event log
    watched.sent("(5 s after the last payload)")

    rest_reply = watched.stack.say(f"fuzz-after-{uuid.uuid4().hex[:8]}", "hi")
    client = Socket(watched.stack.rasa_url)
    try:
        session_id = client.request_session({}, timeout=10)
        client.sio.emit("user_uttered", {"message": "hi", "session_id": session_id, "customData": {}})
        socket_reply = client.replies.get(timeout=30)
    finally:
        client.close()
    print(f"REST answers by status: {dict(sorted(watched.statuses.items()))}")
    print("processes watched:\n  " + "\n  ".join(sorted(watched.processes.values())))

    assert watched.deaths == {}
    assert rest_reply and rest_reply[0]["text"].startswith("Hi")
    assert socket_reply["text"].startswith("Hi")


def test_no_socketio_payload_raised_in_a_handler(watched):
    """An exception in a socket.io handler is logged with its traceback by
    python-socketio ("Task exception was never retrieved"): every anonymous
    emit could then write a screenful into the log."""
    logged = watched.logged_since_start()

    raised = sorted(set(re.findall(r"exception=(\w+\(.{0,160})", logged)))

    assert raised == []
