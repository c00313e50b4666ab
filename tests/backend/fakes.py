"""Test doubles shared by the backend tests."""

from crm_backend import rasa


class FakeRasa:
    """Records what the CRM asks of the Rasa server; can be made unreachable."""

    def __init__(self):
        self.sent: list[tuple[str, str, str]] = []
        self.resumed: list[tuple[str, str | None]] = []
        self.presence: list[tuple[str, str, str]] = []  # (conversation, joined/typing/left, agent name)
        self.down = False

    def send_agent_message(self, conversation_id, text, agent_name):
        if self.down:
            raise rasa.RasaUnavailable("the assistant at http://rasa could not be reached (ConnectionError)")
        self.sent.append((conversation_id, text, agent_name))

    def send_presence(self, conversation_id, presence, agent_name):
        if self.down:
            raise rasa.RasaUnavailable("the assistant at http://rasa could not be reached (ConnectionError)")
        self.presence.append((conversation_id, presence, agent_name))

    def resume(self, conversation_id, agent_name, person_left=False):
        if self.down:
            raise rasa.RasaUnavailable("the assistant at http://rasa could not be reached (ConnectionError)")
        if person_left:
            self.presence.append((conversation_id, "left", agent_name))
        self.resumed.append((conversation_id, agent_name))
