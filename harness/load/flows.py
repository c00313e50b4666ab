"""The conversations the benchmarks hold: our assistant's flows and the
stock `rasa init` bot's, each turn with the words its reply should have, and
the bot they are held with (its URL, its server processes, how its customers
sign in). bench.conversations holds them over the REST channel
(harness.load.rest), bench.scale_load and bench.scale_faults over socket.io
(harness.load.widget).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from harness.identity import sign_identity

# A signed identity lasts this long; one per bot and customer serves the whole run.
IDENTITY_SECONDS = 6 * 3600


@dataclass(frozen=True)
class Turn:
    kind: str
    message: str
    # Words the reply should contain for the flow to be on script (one of
    # them, if several); None: any reply.
    expect: str | tuple[str, ...] | None = None

    def on_script(self, reply: str) -> bool:
        if self.expect is None:
            return True
        expected = (self.expect,) if isinstance(self.expect, str) else self.expect
        return any(words in reply for words in expected)


@dataclass(frozen=True)
class Script:
    name: str
    sender: str  # formatted with a unique tag per conversation
    turns: tuple[Turn, ...]
    metadata: dict | None = None
    # (email, name) of a customer signed in on the host site: their messages
    # carry a signed identity (a JWT) made with the bot's identity secret.
    identity: tuple[str, str | None] | None = None


# Our assistant: full flows, every CRM call included (customer look-up,
# ticket creation with classification, feedback, ticket status).
OUR_SCRIPTS = (
    Script(
        "complaint",
        "bench-{tag}@example.com",
        (
            Turn("greet", "hi", "Hi"),
            Turn("faq", "how long does shipping take", "working days"),
            Turn("faq", "do you take paypal", "PayPal"),
            Turn("complaint", "my order NW-482913 arrived with a cracked blender jug", "Shall I open the ticket?"),
            Turn("confirm_ticket", "yes", "TCK-"),
            Turn("thanks", "thanks", "rate"),
            # The score button's payload, then the "No, that's all" button.
            Turn("feedback", '/inform{"feedback_score":"5"}', ("anything you'd like", "Thanks for your feedback")),
            Turn("feedback", "/deny"),
            Turn("goodbye", "bye"),
        ),
    ),
    Script(
        "ticket_status",
        "bench-status-{tag}",
        (
            Turn("greet", "hello", "Hi Ada"),
            Turn("ticket_status", "what's happening with TCK-000001?", "TCK-000001"),
            Turn("faq", "how much does delivery cost?", "£3.95"),
            Turn("thanks", "thank you", "rate"),
            Turn("feedback", "/deny"),
            Turn("goodbye", "bye"),
        ),
        # As the web widget passes it: the shop's backend signed who is logged in.
        identity=("ada@example.com", "Ada Lovelace"),
    ),
)

# The stock `rasa init` bot: its own flows (data/stories.yml of the scaffold).
STOCK_SCRIPTS = (
    Script(
        "happy",
        "stock-{tag}",
        (
            Turn("greet", "hello", "How are you"),
            Turn("mood", "I am great", "carry on"),
            Turn("bot_challenge", "are you a bot?", "bot"),
            Turn("goodbye", "bye", "Bye"),
        ),
    ),
    Script(
        "unhappy_helped",
        "stock-{tag}",
        (
            Turn("greet", "hi", "How are you"),
            Turn("mood", "I am sad", "Did that help"),
            Turn("affirm_deny", "yes", "carry on"),
            Turn("goodbye", "goodbye", "Bye"),
        ),
    ),
    Script(
        "unhappy_not_helped",
        "stock-{tag}",
        (
            Turn("greet", "hey there", "How are you"),
            Turn("mood", "not good", "Did that help"),
            Turn("affirm_deny", "no", "Bye"),
            Turn("bot_challenge", "am I talking to a bot?", "bot"),
        ),
    ),
)



@dataclass
class Bot:
    """A bot under load: where it answers, the flows its customers hold, its
    server processes by role (for CPU figures), and what each driver learns."""

    name: str
    url: str
    scripts: tuple[Script, ...]
    pids: Callable[[], dict[str, list[int]]]  # server processes by role
    note: str = ""
    crm_url: str | None = None  # where the tickets its customers were told of can be looked up
    crm_key: str | None = None
    identity_secret: str | None = None  # what signs customers' identities (the stack's chat_identity_secret)
    tokens: dict = field(default_factory=dict)  # (email, name) -> a signed identity, made once
    reply_counts: dict[tuple[str, int], int] = field(default_factory=dict)  # (script, turn) -> reply messages
    problems: dict = field(default_factory=dict)  # kind -> first error or off-script reply seen

    def metadata(self, script: Script) -> dict | None:
        """What a message of ``script`` carries as metadata: the script's own,
        and its customer's signed identity as `identity_token` (made once)."""
        if script.identity is None or self.identity_secret is None:
            return script.metadata
        token = self.tokens.get(script.identity)
        if token is None:
            email, name = script.identity
            token = self.tokens[script.identity] = sign_identity(self.identity_secret, email, name, IDENTITY_SECONDS)
        return {**(script.metadata or {}), "identity_token": token}

    def custom_data(self, script: Script, sender: str) -> dict:
        """What the shop's page passes with each socket.io message: the
        signed-in customer's identity (signed by the shop's backend), or the
        email a visitor gave (a claim)."""
        data = {"channel": "web_widget"}
        data.update(self.metadata(script) or {})
        if "@" in sender and "email" not in data:
            data["email"] = sender
        return data
