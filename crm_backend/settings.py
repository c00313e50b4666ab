"""Every setting of the CRM backend, read once from the environment.

Each setting is a field of the frozen ``Settings``: its environment variable,
its default (written as one would write it in the environment; ``$VAR_DIR``
and ``$RASA_PORT`` stand for those settings), what it means, and the Flask
config key the code reads it under when that key differs from the variable
(Flask and Flask-Limiter want their own names: ``CRM_RATE_LIMIT`` is
``RATELIMIT_DEFAULT``). ``create_app`` calls ``Settings.from_env()`` once and
copies ``flask_config()`` into ``app.config``; a test config given to
``create_app`` overrides keys after that.

README's "CRM backend" settings table is this module's ``markdown_table()``
(print it with ``python -m crm_backend.settings``);
tests/backend/test_settings.py keeps the two equal.
"""

import os
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from string import Template
from typing import Any

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class SettingsError(ValueError):
    """An environment variable holds a value its setting cannot take."""


def setting(env: str, default: str | None, meaning: str, *, key: str | None = None, clean: Callable | None = None):
    """A field read from ``env`` (``default`` when unset); ``key``: its Flask config key if not ``env``."""
    return field(metadata={"env": env, "default": default, "meaning": meaning, "key": key or env, "clean": clean})


def _labels(value: str) -> frozenset[str]:
    return frozenset(label.strip() for label in value.split(",") if label.strip())


def _parse(kind: Any, env: str, raw: str) -> Any:
    if kind is bool:
        if raw.strip().lower() in _TRUE:
            return True
        if raw.strip().lower() in _FALSE:
            return False
        raise SettingsError(f"{env}={raw!r}: expected 1 or 0")
    if kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            raise SettingsError(f"{env}={raw!r}: expected a {'whole ' if kind is int else ''}number") from None
    if kind == frozenset[str]:
        return _labels(raw)
    if isinstance(kind, types.UnionType):  # str | None: unset or empty is None
        return raw or None
    return raw


@dataclass(frozen=True)
class Settings:
    # Read first: later defaults are written in terms of them.
    var_dir: str = setting("VAR_DIR", "var", "runtime state: databases, tokens, keys")
    rasa_port: int = setting("RASA_PORT", "5005", "Rasa server port (the widget's socket.io and `RASA_URL`'s default)")

    database_url: str = setting("DATABASE_URL", "sqlite:///$VAR_DIR/crm.db", "CRM database (SQLAlchemy URL)")
    max_content_length: int = setting(
        "MAX_CONTENT_LENGTH", "1048576", "largest request body (bytes); every API body is small JSON"
    )
    crm_proxy_hops: int = setting(
        "CRM_PROXY_HOPS", "1", "proxies trusted for the client's address (`crm_backend.behind_proxy`, scaled profile)"
    )

    rasa_url: str = setting(
        "RASA_URL", "http://127.0.0.1:$RASA_PORT", "where the CRM reaches Rasa's HTTP API (agent replies, resuming)"
    )
    rasa_token: str = setting("RASA_TOKEN", "", "token of Rasa's HTTP API (`make run` generates it into `$VAR_DIR/rasa_token`)")
    rasa_public_url: str = setting(
        "RASA_PUBLIC_URL",
        "",
        "where browsers reach Rasa's socket.io (the widget's `data-server`); empty: the page's scheme and host on `RASA_PORT`",
    )
    rasa_events_db: str = setting(
        "RASA_EVENTS_DB", "$VAR_DIR/rasa_events.db", "Rasa's SQL event broker (SQLite), read by `crm handoffs follow`"
    )
    rasa_events_url: str = setting(
        "RASA_EVENTS_URL", "sqlite:///$RASA_EVENTS_DB", "the event broker's database as any SQLAlchemy URL"
    )

    crm_api_key: str = setting(
        "CRM_API_KEY",
        "",
        "the bot's key to the CRM (`make run` creates it into `$VAR_DIR/crm_api_key`); `/readyz` fails (`bot_api_key`) "
        "while the CRM would refuse it, and revoking it through the API needs `?confirm=bot-key`",
        key="BOT_API_KEY",
        clean=str.strip,
    )
    crm_api_key_file: str = setting(
        "CRM_API_KEY_FILE", "", "file holding the bot's key when `CRM_API_KEY` is empty", key="BOT_API_KEY_FILE", clean=str.strip
    )
    crm_bot_key_scopes: frozenset[str] = setting(
        "CRM_BOT_KEY_SCOPES",
        "customers:read,customers:write,tickets:read,tickets:write,handoffs:write,feedback:write,orders:read",
        "the scopes `/readyz` checks the bot's key has",
        key="BOT_API_KEY_SCOPES",
    )
    crm_api_key_cache_seconds: float = setting(
        "CRM_API_KEY_CACHE_SECONDS",
        "5",
        "how long a worker trusts an API key it verified; bounds how long a revoked key works in other workers (`0`: off)",
        key="API_KEY_CACHE_SECONDS",
    )
    crm_rate_limit: str = setting(
        "CRM_RATE_LIMIT", "6000 per minute", "requests one API key (or address) may make to `/api/v1`", key="RATELIMIT_DEFAULT"
    )
    crm_rate_limit_enabled: bool = setting(
        "CRM_RATE_LIMIT_ENABLED", "1", "`0` turns the API's rate limits off", key="RATELIMIT_ENABLED"
    )
    ratelimit_storage_uri: str = setting(
        "RATELIMIT_STORAGE_URI",
        "memory://",
        "where rate limits count: `memory://` per worker process, `redis://host:port/db` shared (the scaled profile)",
    )

    crm_secret_key: str | None = setting(
        "CRM_SECRET_KEY",
        None,
        "signs the agent console's session cookies and CSRF tokens (`make run` generates it into `$VAR_DIR/secret_key`; "
        "unset: one key per process, sessions end with a restart)",
        key="SECRET_KEY",
    )
    crm_secure_cookies: bool = setting(
        "CRM_SECURE_COOKIES", "0", "`1` behind HTTPS: the console's cookie is sent over HTTPS only", key="SESSION_COOKIE_SECURE"
    )
    console_session_hours: float = setting("CONSOLE_SESSION_HOURS", "12", "how long a console sign-in lasts")
    console_login_free_failures: int = setting(
        "CONSOLE_LOGIN_FREE_FAILURES",
        "3",
        "failed sign-ins for one e-mail from one address before each next try there waits 1, 2, 4, ... seconds; "
        "nothing locks the right password out",
    )
    console_login_max_delay: int = setting("CONSOLE_LOGIN_MAX_DELAY", "60", "the longest of those waits (seconds)")
    console_login_failure_window: int = setting(
        "CONSOLE_LOGIN_FAILURE_WINDOW", "900", "failures are forgotten this many seconds after the first one, or on a success"
    )
    console_login_limit: str = setting(
        "CONSOLE_LOGIN_LIMIT", "30 per minute;300 per hour", "failed sign-ins one address may make over all e-mails"
    )
    # Live console streams hold a gunicorn thread each (gthread, 8 per worker):
    # they are bounded in number and in time, and kept alive by heartbeats.
    console_sse_poll_seconds: float = setting(
        "CONSOLE_SSE_POLL_SECONDS", "0.5", "how often the console's live stream looks for changes"
    )
    console_sse_heartbeat_seconds: float = setting(
        "CONSOLE_SSE_HEARTBEAT_SECONDS", "10", "a live stream's keep-alive when nothing changed"
    )
    console_sse_max_seconds: float = setting(
        "CONSOLE_SSE_MAX_SECONDS", "300", "a live stream ends after this; the browser reconnects"
    )
    console_sse_max_streams: int = setting("CONSOLE_SSE_MAX_STREAMS", "6", "live streams one worker process serves at once")
    canned_replies_path: str = setting(
        "CANNED_REPLIES_PATH", "$VAR_DIR/canned_replies.json", "the agents' canned replies (edited in the console)"
    )

    support_hours: str = setting(
        "SUPPORT_HOURS", "mon-fri 08:00-18:00; sat 09:00-14:00", "when people answer handoffs (empty: always)"
    )
    support_timezone: str = setting("SUPPORT_TIMEZONE", "Europe/London", "the zone of `SUPPORT_HOURS`")
    agent_online_seconds: float = setting(
        "AGENT_ONLINE_SECONDS", "120", "an agent whose console was open this recently counts as online"
    )
    human_only_needs: frozenset[str] = setting(
        "HUMAN_ONLY_NEEDS",
        "payment_problem,service_complaint",
        "needs the company wants a person on: such tickets say `needs_human` and the assistant offers a person at once",
    )
    need_model_path: str = setting("NEED_MODEL_PATH", "models/needs.skops", "the trained need classifier")
    need_model_check_seconds: float = setting(
        "NEED_MODEL_CHECK_SECONDS", "5", "how often each worker looks for a retrained need classifier"
    )

    chat_identity_secret: str = setting(
        "CHAT_IDENTITY_SECRET",
        "",
        "the key host sites sign customers' identities with (JWT HS256, docs/security.md; `make run` generates it into "
        "`$VAR_DIR/chat_identity_secret`); the demo page signs Ada with it",
    )
    seed_demo: bool = setting("SEED_DEMO", "1", "`0`: no demo customers, and the demo page signs no one in")
    chat_daily_tickets: int = setting(
        "CHAT_DAILY_TICKETS",
        "5",
        "tickets chat (`channel: chat`) may create per UTC day, per customer e-mail and per conversation; "
        "over it the CRM answers 429 (`.../daily-limit`); `0`: no cap",
    )
    chat_daily_handoffs: int = setting("CHAT_DAILY_HANDOFFS", "5", "the same for handoffs")
    chat_daily_feedback: int = setting(
        "CHAT_DAILY_FEEDBACK", "10", "the same for scores; a conversation or handoff is rated once (409 `.../already-rated`)"
    )

    webhook_allow_private: bool = setting(
        "WEBHOOK_ALLOW_PRIVATE",
        "0",
        "`1` lets webhooks go to private, loopback and link-local addresses: local testing only (the CRM logs a warning)",
    )
    webhook_timeout: float = setting("WEBHOOK_TIMEOUT", "10", "seconds a delivery attempt may take, answer included")
    webhook_retry_hours: float = setting("WEBHOOK_RETRY_HOURS", "24", "failed deliveries are retried this long")
    webhook_first_retry_seconds: float = setting(
        "WEBHOOK_FIRST_RETRY_SECONDS", "30", "first backoff step (doubles up to the cap)"
    )
    webhook_max_retry_seconds: float = setting("WEBHOOK_MAX_RETRY_SECONDS", "14400", "backoff cap")
    webhook_failing_after: int = setting(
        "WEBHOOK_FAILING_AFTER", "5", "failed attempts in a row that mark an endpoint failing"
    )
    webhook_retention_days: float = setting("WEBHOOK_RETENTION_DAYS", "30", "finished deliveries are pruned after this")
    webhook_secrets_key: str | None = setting(
        "WEBHOOK_SECRETS_KEY",
        None,
        "Fernet key(s), comma-separated, that encrypt webhook secrets at rest; the first encrypts (webhooks/secrets.py)",
    )
    webhook_secrets_key_file: str | None = setting(
        "WEBHOOK_SECRETS_KEY_FILE",
        None,
        "when `WEBHOOK_SECRETS_KEY` is unset, the key file; unset: `webhook_secrets.key` beside the SQLite database, "
        "else in `$VAR_DIR`",
    )

    crm_import_max_bytes: int = setting(
        "CRM_IMPORT_MAX_BYTES",
        "10485760",
        "largest CSV `POST /api/v1/customers/import` accepts (10 MiB; docs/import.md)",
        key="IMPORT_MAX_BYTES",
    )
    crm_import_batch_size: int = setting(
        "CRM_IMPORT_BATCH_SIZE", "1000", "customers per transaction in that endpoint", key="IMPORT_BATCH_SIZE"
    )

    insights_currency: str = setting(
        "INSIGHTS_CURRENCY", "GBP", "customer insights count orders in this currency only (docs/insights.md)", clean=str.upper
    )
    insights_discount_rate: float = setting("INSIGHTS_DISCOUNT_RATE", "0.10", "lifetime value's yearly discount rate")
    insights_horizon_years: int = setting("INSIGHTS_HORIZON_YEARS", "3", "lifetime value's horizon")
    churn_days: int = setting("CHURN_DAYS", "180", "days without an order that make a churned customer")
    insights_complaint_needs: frozenset[str] = setting(
        "INSIGHTS_COMPLAINT_NEEDS",
        "damaged_or_defective,wrong_or_missing_item,delivery_problem,payment_problem,refund,service_complaint,billing",
        "needs counted as complaints: a churn feature, and the only needs whose tickets get a raised automatic priority",
    )
    insights_nightly_at: str = setting(
        "INSIGHTS_NIGHTLY_AT",
        "03:00",
        "when the `insights` process recomputes everyone: a time of day in `SUPPORT_TIMEZONE`, or `HH:MM UTC`",
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """Every setting from ``environ`` (default ``os.environ``), or its default."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        raw_by_env: dict[str, str] = {}  # what $NAME in a later default stands for
        for spec in fields(cls):
            env, default = spec.metadata["env"], spec.metadata["default"]
            raw = environ.get(env)
            if raw is None and default is not None:
                raw = Template(default).substitute(raw_by_env)
            if raw is not None:
                raw_by_env[env] = raw
            value = _parse(spec.type, env, raw) if raw is not None else None
            clean = spec.metadata["clean"]
            values[spec.name] = clean(value) if clean and value is not None else value
        return cls(**values)

    def flask_config(self) -> dict[str, Any]:
        """The settings under their Flask config keys (the one place names are mapped)."""
        return {spec.metadata["key"]: getattr(self, spec.name) for spec in fields(self)}


def markdown_table() -> str:
    """README's table of the backend's settings: variable, default, meaning."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for spec in fields(Settings):
        default = spec.metadata["default"]
        shown = "unset" if default is None else "empty" if default == "" else f"`{default}`"
        rows.append(f"| `{spec.metadata['env']}` | {shown} | {spec.metadata['meaning']} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
