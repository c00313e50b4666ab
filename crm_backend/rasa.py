"""The one module through which the CRM talks to the Rasa server (its HTTP API).

Agents' replies and the end of a handoff reach the customer this way
(docs/architecture.md, "Human handoff"): a ``bot`` event appended to the conversation's
tracker with ``output_channel=socketio&execute_side_effects=true`` is pushed
to the customer's open socket, and ``trigger_intent`` makes the assistant
speak again after a handoff is resolved.

**Presence.** That a person joined, is typing or left the conversation
reaches the widget the same way: a ``bot`` event whose custom data is
``{"presence": "joined" | "typing" | "left", "agent_name": ...}`` and no text
(docs/widget.md, "A person in the chat"). Joining pauses the assistant, as the
first reply does.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import requests
from flask import current_app

# Short: an agent is waiting for the answer in the console.
TIMEOUT_SECONDS = 5.0
OUTPUT_CHANNEL = "socketio"
# The assistant's "ask for a score" intent; triggered by the CRM, its message
# text starts with "EXTERNAL: ", which tells the assistant a person finished.
HANDOFF_RESOLVED_INTENT = "give_feedback"
PRESENCE_STATES = ("joined", "typing", "left")


CONVERSATION_ID_SAFE = "@:+!$&'()*,;=~"


class RasaUnavailable(Exception):
    """The Rasa server could not be reached or refused the request."""


@dataclass
class RasaClient:
    url: str
    token: str | None
    timeout: float = TIMEOUT_SECONDS

    def _post(self, path: str, payload, params: dict | None = None) -> dict:
        params = dict(params or {})
        if self.token:
            params["token"] = self.token
        try:
            response = requests.post(f"{self.url}{path}", json=payload, params=params, timeout=self.timeout)
        except requests.RequestException as error:
            raise RasaUnavailable(f"the assistant at {self.url} could not be reached ({type(error).__name__})") from error
        if response.status_code >= 400:
            raise RasaUnavailable(f"the assistant at {self.url} answered {response.status_code} to {path}")
        try:
            return response.json()
        except ValueError:
            return {}

    @staticmethod
    def _conversation(conversation_id: str) -> str:
        # Rasa's server (Sanic) does not percent-decode the conversation id
        # in the path: "a%40b.co" would be another conversation than
        # "a@b.co". So only what cannot appear raw in a path is encoded.
        return f"/conversations/{quote(conversation_id, safe=CONVERSATION_ID_SAFE)}"

    def send_agent_message(self, conversation_id: str, text: str, agent_name: str) -> None:
        """Append the agent's reply to the conversation and push it to the customer's widget.

        The socket receives ``bot_uttered`` ``{"text": ..., "agent_name": ...}``:
        Rasa's socket.io output emits a bot event's ``custom`` data as the
        message itself, and the event's ``text`` keeps the reply in the
        transcript (and is what clients without custom support show).
        """
        event = {
            "event": "bot",
            "text": None,
            "data": {"custom": {"data": {"text": text, "agent_name": agent_name}}},
            # Rasa merges metadata into the outgoing message: a "text" here
            # would be sent a second time, as a plain bot message.
            "metadata": {"handoff_agent": agent_name},
        }
        # The pause keeps the assistant quiet from the person's first reply
        # on, also when the handoff was queued while nobody was online and
        # the assistant went on helping meanwhile; pausing twice is harmless.
        self._post(
            f"{self._conversation(conversation_id)}/tracker/events",
            [{"event": "pause"}, event],
            {"output_channel": OUTPUT_CHANNEL, "execute_side_effects": "true"},
        )

    def send_presence(self, conversation_id: str, presence: str, agent_name: str) -> None:
        """Tell the customer's widget that ``agent_name`` joined, is typing, or left.

        No ``text`` and no ``metadata.handoff_agent``: the event follower and
        the widget tell it from a reply by ``custom.data.presence``.
        """
        if presence not in PRESENCE_STATES:
            raise ValueError(f"unknown presence {presence!r}")
        event = {"event": "bot", "text": None, "data": {"custom": {"data": {"presence": presence, "agent_name": agent_name}}}}
        # A person who joined has the conversation: the assistant stays quiet.
        events = [{"event": "pause"}, event] if presence == "joined" else [event]
        self._post(
            f"{self._conversation(conversation_id)}/tracker/events",
            events,
            {"output_channel": OUTPUT_CHANNEL, "execute_side_effects": "true"},
        )

    def resume(self, conversation_id: str, agent_name: str | None, person_left: bool = False) -> None:
        """Un-pause the conversation and let the assistant thank the customer and ask for a score.

        ``person_left``: the agent who had the chat leaves it first (a
        ``left`` presence the widget shows as "you're back with the assistant"),
        in the same call as the resume, so the customer never hears the
        assistant while the header still shows the person.
        """
        # A paused conversation stops before the assistant's usual
        # action_listen; without it the rules (intent after listen) would not
        # match the triggered intent.
        events = [{"event": "resume"}, {"event": "action", "name": "action_listen"}]
        params = None
        if person_left and agent_name:
            left = {"presence": "left", "agent_name": agent_name}
            events.insert(0, {"event": "bot", "text": None, "data": {"custom": {"data": left}}})
            params = {"output_channel": OUTPUT_CHANNEL, "execute_side_effects": "true"}
        self._post(f"{self._conversation(conversation_id)}/tracker/events", events, params)
        self._post(
            f"{self._conversation(conversation_id)}/trigger_intent",
            {"name": HANDOFF_RESOLVED_INTENT, "entities": {"agent_name": agent_name} if agent_name else {}},
            {"output_channel": OUTPUT_CHANNEL},
        )


def client() -> RasaClient:
    config = current_app.config
    return RasaClient(url=config["RASA_URL"].rstrip("/"), token=config.get("RASA_TOKEN") or None)
