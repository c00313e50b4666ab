"""Every setting the action server reads from the environment, with its default and meaning.

``from_env()`` reads them all at once; each part reads them when it starts,
not at import: the server when ``python -m actions.server`` runs, the CRM
client when it is made (tests change the environment between the two).

``CRM_URL`` (``http://127.0.0.1:8000``)
    the CRM backend the actions call (actions/crm_client.py).
``CRM_API_KEY`` (unset)
    the bot's API key to the CRM; unset, the key is read from the file that
    ``CRM_API_KEY_FILE`` names (``make run`` writes it into ``$VAR_DIR``).
``ACTIONS_PORT`` (``5055``)
    the port the action server listens on (``--port`` overrides it).
``BIND_HOST`` (``127.0.0.1``)
    the interface it listens on.
``ACTIONS_TOKEN`` (unset: the server refuses to start)
    what Rasa shows as ``Authorization: Bearer`` (endpoints.yml); every other
    caller gets 401, ``/health`` stays open.
``ACTIONS_ALLOW_NO_TOKEN`` (``0``)
    ``1`` starts the server without a token, for a local experiment only.

Sanic reads ``SANIC_KEEP_ALIVE_TIMEOUT`` (and every ``SANIC_*``) itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

DEFAULT_CRM_URL = "http://127.0.0.1:8000"
DEFAULT_PORT = 5055
DEFAULT_BIND_HOST = "127.0.0.1"


@dataclass(frozen=True)
class ActionSettings:
    crm_url: str = DEFAULT_CRM_URL
    crm_api_key: str = ""
    port: int = DEFAULT_PORT
    bind_host: str = DEFAULT_BIND_HOST
    token: str = ""
    allow_no_token: bool = False


def _api_key(environ: Mapping[str, str]) -> str:
    """``CRM_API_KEY``, else the contents of the file ``CRM_API_KEY_FILE`` names."""
    key = environ.get("CRM_API_KEY", "").strip()
    if key:
        return key
    key_file = environ.get("CRM_API_KEY_FILE", "").strip()
    if key_file and Path(key_file).is_file():
        return Path(key_file).read_text(encoding="utf-8").strip()
    return ""


def _port(raw: str) -> int:
    try:
        return int(raw) if raw.strip() else DEFAULT_PORT
    except ValueError:
        raise SystemExit(f"actions: ACTIONS_PORT={raw!r} is not a port number") from None


def from_env(environ: Optional[Mapping[str, str]] = None) -> ActionSettings:
    environ = os.environ if environ is None else environ
    return ActionSettings(
        crm_url=(environ.get("CRM_URL", "").strip() or DEFAULT_CRM_URL).rstrip("/"),
        crm_api_key=_api_key(environ),
        port=_port(environ.get("ACTIONS_PORT", "")),
        bind_host=environ.get("BIND_HOST", "").strip() or DEFAULT_BIND_HOST,
        token=environ.get("ACTIONS_TOKEN", "").strip(),
        allow_no_token=environ.get("ACTIONS_ALLOW_NO_TOKEN", "").strip() == "1",
    )
