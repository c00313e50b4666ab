"""Canned replies: a short list of ready-made texts that agents pick from and edit.

The defaults ship in canned_replies.json beside this module; the edited list
is stored at CANNED_REPLIES_PATH (default $VAR_DIR/canned_replies.json),
replaced atomically so that every worker reads a whole file.
``{first_name}``, ``{customer_name}`` and ``{agent_name}`` are filled in by
the console when a reply is picked.
"""

import json
import os
import tempfile
from pathlib import Path

from flask import current_app

DEFAULTS_PATH = Path(__file__).with_name("canned_replies.json")
MAX_REPLIES = 50
MAX_TITLE = 60
MAX_TEXT = 2000


def _stored_path() -> Path:
    return Path(current_app.config["CANNED_REPLIES_PATH"])


def load() -> list[dict]:
    path = _stored_path()
    for candidate in (path, DEFAULTS_PATH):
        try:
            return json.loads(candidate.read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as error:
            current_app.logger.error("canned replies: %s is unreadable (%s); using the defaults", candidate, error)
    return json.loads(DEFAULTS_PATH.read_text(encoding="utf-8"))


def save(replies: list[dict]) -> None:
    path = _stored_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, delete=False, suffix=".tmp") as file:
        json.dump(replies, file, ensure_ascii=False, indent=2)
        temporary = file.name
    os.replace(temporary, path)
