"""socket.io session ids issued by the server and bound to a signed session token.

Rasa's stock channel lets a client name any session id in
``session_request``, joins its socket to that id's room and takes its
messages for that conversation: naming another customer's id was enough to
read their conversation and write into it. Here the server issues the id
(``uuid4().hex``) with a token, ``base64url(HMAC-SHA256(session_key,
session_id))`` without padding, where ``session_key = HMAC-SHA256(key=
CHAT_IDENTITY_SECRET, msg=b"helpdesk socket.io session")``. A client keeps
both and presents them again on reconnect; an id without its token gets a new
session. Every Rasa instance with the same secret accepts the others' tokens.

Without ``CHAT_IDENTITY_SECRET`` a random key of this process signs the
tokens (bot/identity.py warns that the secret is missing): sessions then last
only as long as the process.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from typing import Any, Optional, Text, Tuple

SESSION_KEY_MESSAGE = b"helpdesk socket.io session"
# Anything longer than this is not an id we issued.
MAX_SESSION_ID_CHARS = 64


def session_key(secret: Optional[Text]) -> bytes:
    if not secret:
        return secrets.token_bytes(32)
    return hmac.new(secret.encode("utf-8"), SESSION_KEY_MESSAGE, hashlib.sha256).digest()


class SessionSigner:
    """Issues session ids with their tokens and checks the pairs clients present."""

    def __init__(self, secret: Optional[Text]) -> None:
        self._key = session_key(secret)

    def token_for(self, session_id: Text) -> Text:
        digest = hmac.new(self._key, session_id.encode("utf-8"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def is_valid(self, session_id: Any, session_token: Any) -> bool:
        if not isinstance(session_id, str) or not isinstance(session_token, str):
            return False
        if not session_id or len(session_id) > MAX_SESSION_ID_CHARS or not session_id.isascii():
            return False
        return hmac.compare_digest(self.token_for(session_id), session_token.encode("ascii", "replace").decode("ascii"))

    def new_session(self) -> Tuple[Text, Text]:
        session_id = uuid.uuid4().hex
        return session_id, self.token_for(session_id)

    def session_for(self, session_id: Any, session_token: Any) -> Tuple[Text, Text, bool]:
        """The session a client asked for if its token is right, else a new one; and whether it was kept."""
        if self.is_valid(session_id, session_token):
            return session_id, session_token, True
        return (*self.new_session(), False)
