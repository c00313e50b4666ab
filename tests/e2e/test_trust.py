"""Issue 19's attacks, one test each, through the real stack (`make run`'s
scripts/run_stack.sh on free ports): who the assistant believes a customer
is, whose conversation a socket may read, who may call the action server,
what one sender can do to everyone else, the agent console's sign-in, and
the demo shop's sign-in and sign-out in a browser (screenshots in
$E2E_ARTIFACTS_DIR, default var/test-artifacts/).

The stack is this module's own (the last test revokes the bot's CRM key);
the surrogate test restarts it on the same var/ directory.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import yaml
from requests.adapters import HTTPAdapter

from harness import REPO
from harness.identity import sign_identity
from harness.processes import alive, descendants
from harness.stack import Stack
from harness.widget_client import WidgetClient
from tests.e2e.widget_support import push_bot_event, tracker

ADA = ("ada@example.com", "Ada Lovelace")
GRACE = ("grace.hopper@example.com", "Grace Hopper")
# What only Ada (signed in) may see: her name, her open ticket (demo data) and its subject.
ADAS_PRIVATE = ("Ada", "Lovelace", "Where is my order", "#10234")
TICKET_LINE = re.compile(r"TCK-\d{6}: ")  # a line of a ticket list ("• TCK-000001: subject (open, …)")
MAX_MESSAGE_CHARS = 2000  # CHAT_MAX_MESSAGE_CHARS's default
ARTIFACTS = Path(os.environ.get("E2E_ARTIFACTS_DIR") or REPO / "var" / "test-artifacts")


@pytest.fixture(scope="module")
def trust(tmp_path_factory):
    running = Stack(var_dir=tmp_path_factory.mktemp("trust") / "var", extra_env={"BOT_NLU_WORKER": "0"}).start()
    running.sign_in_agent()  # an agent online: handoffs go to a person
    yield running
    running.stop()


def texts(replies: list[dict]) -> str:
    return " ".join(reply.get("text", "") for reply in replies)


def domain_texts(name: str, **values) -> list[str]:
    """The variants of a response in domain.yml (what the customer is shown), filled in with ``values``."""
    domain = yaml.safe_load((REPO / "domain.yml").read_text())
    variants = [variant["text"] for variant in domain["responses"][name]]
    for key, value in values.items():
        variants = [text.replace("{" + key + "}", str(value)) for text in variants]
    return variants


def user_events(stack, sender: str) -> list[dict]:
    return [e for e in tracker(stack, sender)["events"] if e.get("event") == "user"]


def assert_nothing_of_adas(reply: str) -> None:
    for private in ADAS_PRIVATE:
        assert private not in reply, f"{private!r} shown to an unverified visitor: {reply!r}"
    assert not TICKET_LINE.search(reply), f"a ticket list shown to an unverified visitor: {reply!r}"


def ask_for_adas_things(stack, sender: str, **extra) -> str:
    """What a visitor claiming to be Ada hears: a greeting, her tickets, one ticket's status."""
    return " | ".join(
        texts(stack.say(sender, message, **extra))
        for message in ("hi", "show my tickets", "what's happening with TCK-000001?")
    )


# ---- who the customer is ------------------------------------------------------


def test_a_sender_id_that_is_an_email_is_not_an_identity(trust):
    heard = ask_for_adas_things(trust, "ada@example.com")

    assert_nothing_of_adas(heard)


@pytest.mark.parametrize(
    "metadata",
    [
        {"email": "ada@example.com"},
        {"email": "ada@example.com", "name": "Ada Lovelace"},
        # A client claiming the channel's own verdict.
        {"identity": {"email": "ada@example.com", "name": "Ada Lovelace", "verified": True, "via": "token"}},
    ],
    ids=["email", "email-and-name", "forged-identity-key"],
)
def test_unsigned_metadata_is_not_an_identity(trust, metadata):
    sender = f"claims-{uuid.uuid4().hex[:8]}"

    heard = ask_for_adas_things(trust, sender, metadata=metadata)

    assert_nothing_of_adas(heard)
    for event in user_events(trust, sender):
        assert (event.get("metadata") or {}).get("identity", {}).get("verified") is not True


def test_an_unsigned_email_in_socketio_custom_data_is_not_an_identity(trust):
    forged = {"email": "ada@example.com", "identity": {"email": "ada@example.com", "verified": True}}
    client = WidgetClient(trust.rasa_url, custom_data=forged)
    try:
        heard = [client.say("hi")["text"]]
        client.send("show my tickets")
        heard += [m.get("text", "") for m in client.replies_until_quiet()]
    finally:
        client.close()

    assert_nothing_of_adas(" | ".join(heard))


def test_an_email_typed_in_the_chat_is_not_an_identity(trust):
    sender = f"typist-{uuid.uuid4().hex[:8]}"
    heard = []

    for message in (
        "show my tickets",
        "ada@example.com",
        "what's happening with TCK-000001?",
        "ada@example.com",
        "my email is ada@example.com",
        "hi",
    ):
        heard.append(texts(trust.say(sender, message)))

    assert_nothing_of_adas(" | ".join(heard))


def none_token(email: str) -> str:
    """An unsigned JWT ("alg": "none") naming ``email``."""

    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    now = int(time.time())
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part({'email': email, 'name': 'Ada Lovelace', 'iat': now, 'exp': now + 3600})}."


BAD_TOKENS = {
    "expired": lambda stack: stack.identity_token(*ADA, seconds=-3600),
    "wrong-key": lambda stack: sign_identity("a key the shop does not have, long enough", *ADA),
    "alg-none": lambda stack: none_token(ADA[0]),
    "longer-than-a-day": lambda stack: stack.identity_token(*ADA, seconds=7 * 86400),
    "issued-in-the-future": lambda stack: stack.identity_token(*ADA, iat=int(time.time()) + 3600),
    "malformed": lambda stack: "not.a.token",
}


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
def test_a_token_that_does_not_verify_gives_no_identity(trust, kind):
    sender = f"bad-token-{kind}-{uuid.uuid4().hex[:6]}"
    token = BAD_TOKENS[kind](trust)

    heard = ask_for_adas_things(trust, sender, metadata={"identity_token": token})

    assert_nothing_of_adas(heard)
    for event in user_events(trust, sender):
        assert "identity_token" not in (event.get("metadata") or {})
        assert "identity" not in (event.get("metadata") or {})


def test_a_valid_token_is_greeted_by_name_and_shown_its_tickets_and_a_new_one_starts_a_new_session(trust):
    sender = f"signed-{uuid.uuid4().hex[:8]}"
    ada = {"identity_token": trust.identity_token(*ADA)}
    grace = {"identity_token": trust.identity_token(*GRACE)}

    hello = texts(trust.say(sender, "hi", metadata=ada))
    adas_tickets = texts(trust.say(sender, "show my tickets", metadata=ada))
    sessions_before = [e for e in tracker(trust, sender)["events"] if e["event"] == "session_started"]
    # Someone else signs in on the same browser: the conversation starts afresh.
    graces_tickets = texts(trust.say(sender, "show my tickets", metadata=grace))
    events = tracker(trust, sender)["events"]

    assert hello.startswith("Hi Ada")
    assert "TCK-000001: Where is my order #10234? (open" in adas_tickets
    assert "TCK-000002: Kettle arrived with a cracked lid (pending" in graces_tickets
    assert "TCK-000001" not in graces_tickets and "Ada" not in graces_tickets
    assert len([e for e in events if e["event"] == "session_started"]) == len(sessions_before) + 1
    said = [e for e in events if e["event"] == "user" and not e["text"].startswith("/")]
    identities = [e["metadata"]["identity"] for e in said]
    assert [i["email"] for i in identities] == ["ada@example.com", "ada@example.com", "grace.hopper@example.com"]
    assert all(i["verified"] is True and i["via"] == "token" for i in identities)
    # The tokens themselves are never stored.
    assert not any("identity_token" in (e.get("metadata") or {}) for e in events if e["event"] == "user")


def test_only_the_channel_token_lets_a_rest_caller_name_the_customer(trust):
    def hello(sender: str, bearer: str) -> str:
        response = trust.post_message(
            sender, "hello", headers={"Authorization": f"Bearer {bearer}"}, metadata={"email": GRACE[0]}
        )
        return texts(response.json()) if response.status_code == 200 else ""

    forged = hello(f"integration-{uuid.uuid4().hex[:8]}", "not-the-channel-token")
    trusted = hello(f"integration-{uuid.uuid4().hex[:8]}", trust.rest_channel_token)

    assert "Grace" not in forged
    assert trusted.startswith("Hi Grace")


# ---- private conversations -------------------------------------------------


def test_naming_another_conversations_id_over_socketio_reads_and_writes_nothing_of_it(trust):
    victim = WidgetClient(trust.rasa_url, custom_data={"identity_token": trust.identity_token(*ADA)})
    intruders = []
    try:
        assert victim.say("hi")["text"].startswith("Hi Ada")
        stranger = WidgetClient(trust.rasa_url)
        intruders = [
            WidgetClient(trust.rasa_url, victim.session_id),  # no token
            WidgetClient(trust.rasa_url, victim.session_id, "forged-token"),
            WidgetClient(trust.rasa_url, victim.session_id, stranger.session_token),  # another session's token
            stranger,
        ]
        # An agent's reply and the bot's next answer go to the victim's conversation...
        push_bot_event(
            trust,
            victim.session_id,
            {"event": "bot", "data": {"custom": {"data": {"text": "Ada, your refund is on its way.", "agent_name": "Sam"}}}},
        )
        agent_reply = victim.replies.get(timeout=15)
        victims_answer = victim.say("how much is delivery")
        # ...and what the intruders write as that conversation never reaches it.
        for intruder in intruders:
            intruder.sio.emit("user_uttered", {"message": "intruder was here", "session_id": victim.session_id})
        time.sleep(3)
        overheard = [m for intruder in intruders for m in intruder.replies_until_quiet(first_timeout=1, quiet=1)]
    finally:
        for client in [victim, *intruders]:
            client.close()

    assert [intruder.session_id != victim.session_id for intruder in intruders] == [True] * 4
    assert agent_reply["text"] == "Ada, your refund is on its way."
    assert "£" in victims_answer["text"]
    assert overheard == []
    assert "intruder was here" not in [e["text"] for e in user_events(trust, victim.session_id)]


# ---- the action server -------------------------------------------------------


def forged_action_call(action: str = "action_list_my_tickets") -> dict:
    """What Rasa sends the action server, with a tracker that claims Ada."""
    return {
        "next_action": action,
        "sender_id": "forged",
        "version": "3.6.21",
        "domain": {},
        "tracker": {
            "sender_id": "forged",
            "slots": {"customer_email": "ada@example.com", "customer_known": True},
            "latest_message": {"text": "show my tickets", "intent": {"name": "my_tickets"}, "entities": []},
            "latest_event_time": time.time(),
            "followup_action": None,
            "paused": False,
            "events": [],
            "latest_input_channel": "rest",
            "active_loop": {},
            "latest_action": {"action_name": "action_listen"},
            "latest_action_name": "action_listen",
        },
    }


def listening_addresses(port: int) -> list[str]:
    """The local addresses of the sockets listening on ``port`` (/proc/net/tcp and tcp6)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, _, state = line.split()[1:4]
            address, local_port = local.split(":")
            if state == "0A" and int(local_port, 16) == port:
                found.append(address)
    return found


def loopback(address_hex: str) -> bool:
    if len(address_hex) == 8:  # IPv4, little-endian
        return address_hex.endswith("7F")  # 127.x.x.x
    return address_hex == "00000000000000000000000001000000"  # ::1


def non_loopback_address() -> str | None:
    """One of this machine's own non-loopback IPv4 addresses, if it has one (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_the_action_server_answers_only_rasa_and_listens_on_loopback(trust):
    url = f"http://127.0.0.1:{trust.actions_port}"

    without = requests.post(f"{url}/webhook", json=forged_action_call(), timeout=10)
    wrong = requests.post(
        f"{url}/webhook", json=forged_action_call(), headers={"Authorization": "Bearer not-the-token"}, timeout=10
    )
    rasas = requests.post(
        f"{url}/webhook",
        json=forged_action_call("action_identify_customer"),
        headers={"Authorization": f"Bearer {trust.actions_token}"},
        timeout=10,
    )
    health = requests.get(f"{url}/health", timeout=10)

    assert (without.status_code, wrong.status_code) == (401, 401)
    assert "Ada" not in without.text + wrong.text and "TCK-" not in without.text + wrong.text
    assert rasas.status_code == 200, rasas.text
    assert health.status_code == 200
    addresses = listening_addresses(trust.actions_port)
    assert addresses and all(loopback(address) for address in addresses), addresses
    outside = non_loopback_address()
    if outside is not None:
        with socket.socket() as sock:
            sock.settimeout(2)
            assert sock.connect_ex((outside, trust.actions_port)) != 0, f"the action server answers on {outside}"


# ---- one sender cannot slow down, flood or break the service ------------------


def test_a_maximum_size_message_is_answered_and_a_longer_one_politely_refused_while_a_bystander_is_answered(trust):
    too_long = domain_texts("utter_message_too_long", max_message_chars=MAX_MESSAGE_CHARS)
    biggest = ("my kettle arrived broken and I would like a refund please. " * 50)[:MAX_MESSAGE_CHARS]
    huge = "x" * 63_000
    bystander_latencies = []

    def bystander() -> str:
        started = time.monotonic()
        reply = texts(trust.say(f"bystander-{uuid.uuid4().hex[:8]}", "hi"))
        bystander_latencies.append(time.monotonic() - started)
        return reply

    with ThreadPoolExecutor(4) as pool:
        at_limit = pool.submit(trust.post_message, "big-sender", biggest)
        over_limit = pool.submit(trust.post_message, "huge-sender", huge)
        greeting = pool.submit(bystander)
        answers = at_limit.result(), over_limit.result(), greeting.result()
    print(f"bystander's reply took {bystander_latencies[0]:.2f} s beside the big messages")

    at_limit, over_limit, greeting = answers
    assert at_limit.status_code == 200 and at_limit.json()
    assert texts(at_limit.json()) not in too_long
    assert over_limit.status_code == 200
    [polite] = over_limit.json()
    assert polite["recipient_id"] == "huge-sender" and polite["text"] in too_long
    assert greeting.startswith("Hi")
    # The refused message went no further than the channel.
    assert all(len(e.get("text") or "") <= MAX_MESSAGE_CHARS for e in user_events(trust, "huge-sender"))


def test_an_over_size_message_over_socketio_gets_the_polite_reply_the_widget_can_tell(trust):
    client = WidgetClient(trust.rasa_url)
    try:
        client.send("y" * (MAX_MESSAGE_CHARS + 1))
        reply = client.replies.get(timeout=30)
        after = client.say("hi")
    finally:
        client.close()

    assert reply["text"] in domain_texts("utter_message_too_long", max_message_chars=MAX_MESSAGE_CHARS)
    assert reply["error"] == "message_too_long"
    assert after["text"].startswith("Hi")


def test_a_flood_from_one_sender_is_throttled_and_another_sender_is_answered(trust):
    slow_down = domain_texts("utter_slow_down")

    def flood(n: int) -> requests.Response:
        return trust.post_message("flooder", "how much is delivery" if n % 2 else "hi", timeout=120)

    with ThreadPoolExecutor(20) as pool:
        burst = [pool.submit(flood, n) for n in range(40)]
        time.sleep(0.5)
        bystander = pool.submit(trust.say, f"bystander-{uuid.uuid4().hex[:8]}", "hi")
        responses = [future.result() for future in burst]
        bystanders_reply = texts(bystander.result())

    throttled = [
        r for r in responses if r.status_code == 429 or (r.status_code == 200 and texts(r.json()) in slow_down)
    ]
    refused = [r for r in responses if r.status_code == 429]
    assert len(throttled) >= 10, [r.status_code for r in responses]
    assert all(r.status_code in (200, 429) for r in responses), [r.status_code for r in responses]
    for response in refused:
        assert response.headers["Content-Type"].startswith("application/problem+json")
        assert int(response.headers["Retry-After"]) >= 1
    assert bystanders_reply.startswith("Hi")


def test_a_flood_over_socketio_gets_one_slow_down_and_another_socket_is_answered(trust):
    flooder = WidgetClient(trust.rasa_url)
    bystander = WidgetClient(trust.rasa_url)
    try:
        for n in range(40):
            flooder.send(f"hi number {n}")
        bystanders_reply = bystander.say("hi")
        flooders_replies = flooder.replies_until_quiet(first_timeout=30, quiet=5)
    finally:
        flooder.close()
        bystander.close()

    slowed = [m for m in flooders_replies if m.get("error") == "rate_limited"]
    assert len(slowed) == 1 and slowed[0]["text"] in domain_texts("utter_slow_down")
    assert len(user_events(trust, flooder.session_id)) < 40
    assert bystanders_reply["text"].startswith("Hi")


# ---- the agent console's sign-in ------------------------------------------------


class FromAddress(HTTPAdapter):
    """Connections from a given local address (127.0.0.2: another client on this machine)."""

    def __init__(self, address: str):
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def browser_from(address: str) -> requests.Session:
    browser = requests.Session()
    adapter = FromAddress(address)
    browser.mount("http://", adapter)
    return browser


def sign_in(stack, browser: requests.Session, email: str, password: str) -> requests.Response:
    page = browser.get(f"{stack.crm_url}/console/login", timeout=10)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return browser.post(
        f"{stack.crm_url}/console/login",
        data={"csrf_token": csrf, "email": email, "password": password, "next": ""},
        allow_redirects=False,
        timeout=90,
    )


def create_agent(stack, email: str, password: str) -> None:
    subprocess.run(
        [str(REPO / ".venv/backend/bin/crm"), "create-agent", email, "--password", password, "--name", "Trust Agent"],
        cwd=REPO,
        env={**os.environ, "DATABASE_URL": f"sqlite:///{stack.var_dir / 'crm.db'}"},
        capture_output=True,
        text=True,
        check=True,
    )


def signed_in(stack, browser: requests.Session) -> bool:
    response = browser.get(f"{stack.crm_url}/console", allow_redirects=False, timeout=10)
    return response.status_code == 200 and 'name="csrf-token"' in response.text


def test_five_wrong_passwords_do_not_lock_the_agent_out_of_their_right_one(trust):
    email, password = f"agent-{uuid.uuid4().hex[:6]}@example.com", "the-right-password-1"
    create_agent(trust, email, password)
    attacker = browser_from("127.0.0.1")
    for attempt in range(5):
        assert sign_in(trust, attacker, email, f"guess-{attempt}").status_code in (401, 429)

    agent = browser_from("127.0.0.2")
    response = sign_in(trust, agent, email, password)

    assert response.status_code in (302, 303), response.status_code
    assert signed_in(trust, agent)
    assert not signed_in(trust, attacker)


def test_a_session_cookie_replayed_after_sign_out_is_refused(trust):
    email, password = f"agent-{uuid.uuid4().hex[:6]}@example.com", "the-right-password-2"
    create_agent(trust, email, password)
    agent = browser_from("127.0.0.1")
    assert sign_in(trust, agent, email, password).status_code in (302, 303)
    assert signed_in(trust, agent)
    copied = agent.cookies.copy()
    console = agent.get(f"{trust.crm_url}/console", timeout=10).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', console).group(1)

    agent.post(f"{trust.crm_url}/console/logout", data={"csrf_token": csrf}, timeout=10)
    replay = requests.Session()
    replay.cookies.update(copied)
    response = replay.get(f"{trust.crm_url}/console", allow_redirects=False, timeout=10)

    assert response.status_code in (302, 303, 401), response.status_code
    if response.status_code != 401:
        assert "/console/login" in response.headers["Location"]


# ---- the demo shop in a browser ------------------------------------------------


def storage_of(page) -> str:
    return page.evaluate(
        """() => JSON.stringify([localStorage, sessionStorage].map(
             (store) => Object.fromEntries(Object.keys(store).map((key) => [key, store.getItem(key)]))))"""
    )


def test_the_demo_shops_sign_in_greets_ada_and_sign_out_leaves_nothing_of_hers(trust):
    from playwright.sync_api import expect

    from harness.browser import BOT_BUBBLES, LAUNCHER, chromium_browser
    from tests.e2e.widget_support import BUNDLE

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with chromium_browser(BUNDLE) as chromium:
        context = chromium.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{trust.crm_url}/")
        page.wait_for_function("() => window.HelpdeskChat !== undefined")

        sign_in_control = re.compile(r"Sign in.*demo: Ada")
        page.get_by_role("button", name=sign_in_control).or_(page.get_by_role("link", name=sign_in_control)).click()
        sign_out = page.get_by_role("button", name="Sign out").or_(page.get_by_role("link", name=re.compile("Sign out")))
        expect(sign_out).to_be_visible(timeout=15_000)  # the shop has signed Ada in
        page.wait_for_function("() => window.HelpdeskChat !== undefined")
        page.locator(LAUNCHER).click()
        expect(page.locator(BOT_BUBBLES).first).to_contain_text("Hi Ada", timeout=30_000)
        adas_session = page.evaluate("window.HelpdeskChat.sessionId")
        page.screenshot(path=ARTIFACTS / "trust-signed-in.png")

        sign_out.click()
        page.wait_for_function("() => window.HelpdeskChat !== undefined")
        if page.locator(LAUNCHER).get_attribute("aria-expanded") != "true":
            page.locator(LAUNCHER).click()
        # A new conversation: a new session and the anonymous greeting.
        page.wait_for_function(
            "(old) => window.HelpdeskChat.sessionId && window.HelpdeskChat.sessionId !== old", arg=adas_session,
            timeout=30_000,
        )
        expect(page.locator(BOT_BUBBLES).first).to_be_visible(timeout=30_000)
        page.wait_for_timeout(1000)
        page.screenshot(path=ARTIFACTS / "trust-signed-out.png")
        on_screen = page.locator("[data-helpdesk-chat]").inner_text()
        widget_text = page.evaluate("document.querySelector('[data-helpdesk-chat]').shadowRoot.textContent")
        stored = storage_of(page)
        new_session = page.evaluate("window.HelpdeskChat.sessionId")
        context.close()

    assert errors == []
    assert new_session and new_session != adas_session
    for text in (on_screen, widget_text):
        assert "Ada" not in text and "TCK-" not in text, text
    assert "ada@example.com" not in stored and adas_session not in stored and "Ada" not in stored, stored
    assert "eyJ" not in stored  # no identity token left behind


# ---- malformed input, then a restart ----------------------------------------------


def follower_pids(stack) -> list[int]:
    pids = []
    for pid in descendants(stack.process.pid):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"handoffs" in command and b"follow" in command and not any(b"respawn" in part for part in command):
            pids.append(pid)
    return pids


def steady_follower(stack, seconds: float = 6) -> int:
    """The follower's pid, once it has stayed the same, alive, for ``seconds``."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        first = follower_pids(stack)
        time.sleep(seconds)
        if len(first) == 1 and follower_pids(stack) == first and alive(first[0]):
            return first[0]
    raise AssertionError("the handoff follower keeps restarting or is not running:\n" + stack.log()[-4000:])


POISON = [
    # Raw JSON text: the escapes are what a client sends.
    '{"sender": "poison-1", "message": "hi", "metadata": {"x": "\\ud800"}}',
    '{"sender": "poison-2", "message": "hi \\udfff there"}',
    '{"sender": "poison-3", "message": "hi", "metadata": {"y": "nul \\u0000 byte"}}',
    '{"sender": "poison-4", "message": "hi", "metadata": [1, 2, 3]}',
    '{"sender": "poison-5", "message": "hi", "metadata": ' + "[" * 500 + "]" * 500 + "}",
]


def test_a_lone_surrogate_breaks_nothing_not_even_after_a_restart(trust):
    follower = steady_follower(trust)

    statuses = [
        requests.post(
            f"{trust.rasa_url}/webhooks/rest/webhook",
            data=body.encode(),
            headers={"Content-Type": "application/json"},
            timeout=30,
        ).status_code
        for body in POISON
    ]
    time.sleep(5)  # the follower has read the events by now
    still_running = trust.process.poll() is None
    same_follower = steady_follower(trust) == follower if still_running else False
    before_restart = texts(trust.say("after-poison", "hi")) if still_running else ""

    trust.stop()
    trust.start()
    after_restart_follower = steady_follower(trust)
    after_restart = texts(trust.say("after-restart", "hi"))
    # The follower still reads new events: a message written while a person has the conversation reaches them.
    trust.sign_in_agent()
    sender = f"after-restart-handoff-{uuid.uuid4().hex[:6]}"
    trust.say(sender, "can I speak to a human")
    trust.say(sender, f"{sender}@example.com")
    assert "A person will reply" in texts(trust.say(sender, "my parcel never arrived"))
    trust.say(sender, "still there?")
    key = trust.api_key("e2e-trust-handoffs", "handoffs:read")
    api = {"Authorization": f"Bearer {key}"}
    [handoff] = requests.get(
        f"{trust.crm_url}/api/v1/handoffs", params={"conversation_id": sender}, headers=api, timeout=10
    ).json()["items"]
    deadline, messages = time.monotonic() + 15, []
    while not any(m["sender"] == "customer" for m in messages) and time.monotonic() < deadline:
        messages = requests.get(f"{trust.crm_url}/api/v1/handoffs/{handoff['id']}", headers=api, timeout=10).json()["messages"]
        time.sleep(0.5)

    assert all(status < 500 for status in statuses), statuses
    assert still_running, "the stack stopped after the malformed messages:\n" + trust.log()[-4000:]
    assert same_follower
    assert before_restart.startswith("Hi")
    assert alive(after_restart_follower)
    assert after_restart.startswith("Hi")
    # The customer's message after the handoff (the assistant's own words are in the transcript too).
    assert [m["text"] for m in messages if m["sender"] == "customer"] == ["still there?"]


# ---- operators see trouble, customers get the truth (last: it revokes the bot's key) ----


def test_a_revoked_bot_key_makes_readyz_not_ready_and_the_bot_tells_the_truth(trust):
    assert requests.get(f"{trust.crm_url}/readyz", timeout=10).status_code == 200
    admin = {"Authorization": f"Bearer {trust.api_key('e2e-trust-admin', 'admin')}"}
    keys = requests.get(f"{trust.crm_url}/api/v1/api-keys", headers=admin, timeout=10).json()["items"]
    bot_prefix = (trust.var_dir / "crm_api_key").read_text().strip().split("_")[1]  # crm_<prefix>_<secret>
    [bot_key] = [key for key in keys if key["prefix"] == bot_prefix]
    url = f"{trust.crm_url}/api/v1/api-keys/{bot_key['id']}"

    unconfirmed = requests.delete(url, headers=admin, timeout=10)
    still_ready = requests.get(f"{trust.crm_url}/readyz", timeout=10)
    confirmed = requests.delete(url, params={"confirm": "bot-key"}, headers=admin, timeout=10)
    deadline = time.monotonic() + 20
    while (ready := requests.get(f"{trust.crm_url}/readyz", timeout=10)).status_code == 200:
        assert time.monotonic() < deadline, "readyz still says ready with the bot's key revoked"
        time.sleep(1)
    tickets = texts(trust.say_signed_in(f"after-revoke-{uuid.uuid4().hex[:6]}", "show my tickets", *ADA))
    sender = f"after-revoke-ticket-{uuid.uuid4().hex[:6]}"
    complaint = [
        texts(trust.say(sender, message))
        for message in ("I want to make a complaint", "pat.doe@example.com", "/deny", "the toaster lever snapped off", "yes")
    ]

    assert unconfirmed.status_code == 409, unconfirmed.text
    assert still_ready.status_code == 200
    assert confirmed.status_code == 204, confirmed.text
    assert ready.status_code == 503 and "bot" in ready.text.lower()
    assert "technical" in tickets.lower()
    assert "technical" in complaint[-1].lower()
    for reply in [tickets, *complaint]:
        assert "check your email address" not in reply.lower()
