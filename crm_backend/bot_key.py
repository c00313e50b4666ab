"""The bot's own API key: /readyz says when the CRM would refuse it, and the
API will not revoke it without an explicit confirmation.

The CRM finds the key as the action server does (actions/crm_client.py):
``CRM_API_KEY``, else the file ``CRM_API_KEY_FILE`` names (scripts/run_stack.sh
sets the file), read again at every check so that a key replaced by
``crm ensure-api-key`` is seen at once. When neither is set the CRM does not
know the bot's key and checks nothing. No output ever holds the key itself.
"""

import hmac
from pathlib import Path

from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from . import api_keys, health
from .db import get_session
from .models import ApiKey

CONFIRMATION = "bot-key"


def is_configured(config) -> bool:
    return bool(config.get("BOT_API_KEY") or config.get("BOT_API_KEY_FILE"))


def configured_key() -> str | None:
    """The bot's key; "" when it is configured but cannot be read; None when not configured."""
    config = current_app.config
    if config.get("BOT_API_KEY"):
        return config["BOT_API_KEY"]
    key_file = config.get("BOT_API_KEY_FILE")
    if not key_file:
        return None
    try:
        return Path(key_file).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return ""


def is_bot_key(api_key: ApiKey) -> bool:
    key = configured_key()
    return bool(key) and hmac.compare_digest(api_key.key_hash, api_keys.hash_key(key))


def refusal(session, key: str | None, needed_scopes) -> str | None:
    """Why the CRM would refuse the bot's key ``key`` (None: it would not)."""
    if key is None:
        return None
    if not key:
        return "the bot's API key (CRM_API_KEY or the file CRM_API_KEY_FILE names) is missing or empty"
    prefix = api_keys.parse_prefix(key)
    if prefix is None:
        return "the bot's API key is not a key of this CRM (crm_<prefix>_<secret>)"
    api_key = session.scalars(select(ApiKey).where(ApiKey.prefix == prefix)).one_or_none()
    if api_key is None or not hmac.compare_digest(api_key.key_hash, api_keys.hash_key(key)):
        return "the bot's API key is unknown to this CRM; create one with `crm ensure-api-key`"
    if api_key.revoked_at is not None:
        return (
            f"the bot's API key (id {api_key.id}) was revoked at {api_key.revoked_at.isoformat(timespec='seconds')}; "
            "create a new one with `crm ensure-api-key` and restart the action server"
        )
    missing = sorted(scope for scope in needed_scopes if not api_keys.grants(api_key.scopes, scope))
    if missing:
        return f"the bot's API key (id {api_key.id}) lacks the scope(s) {', '.join(missing)}"
    return None


def check_bot_api_key() -> str | None:
    """Readiness check: the bot's key is present, not revoked, with the scopes the bot needs."""
    try:
        return refusal(get_session(), configured_key(), current_app.config["BOT_API_KEY_SCOPES"])
    except SQLAlchemyError:
        get_session().rollback()
        return "the bot's API key could not be checked: the database does not answer"


def init_app(app: Flask) -> None:
    if is_configured(app.config):
        health.register_check(app, "bot_api_key", check_bot_api_key)
