"""Settings read from the environment, with the defaults of the design card."""

import os

DEFAULT_DATABASE_URL = "sqlite:///var/crm.db"


def _labels(value: str) -> frozenset[str]:
    return frozenset(label.strip() for label in value.split(",") if label.strip())


def settings_from_env() -> dict:
    """Return the Flask config keys that deployments may override."""
    return {
        "DATABASE_URL": os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL),
        # Every API body is small JSON; a tight cap stops memory abuse early.
        "MAX_CONTENT_LENGTH": int(os.environ.get("MAX_CONTENT_LENGTH", 1024 * 1024)),
        # Rasa's HTTP API, for agents' replies and resuming handed-off conversations.
        "RASA_URL": os.environ.get("RASA_URL", f"http://127.0.0.1:{os.environ.get('RASA_PORT', '5005')}"),
        "RASA_TOKEN": os.environ.get("RASA_TOKEN", ""),
        # Needs the company wants a person on: tickets of these show
        # needs_human, and the assistant offers a person right away.
        # When people answer handoffs (see crm_backend/handoffs/availability.py).
        "SUPPORT_HOURS": os.environ.get("SUPPORT_HOURS", "mon-fri 08:00-18:00; sat 09:00-14:00"),
        "SUPPORT_TIMEZONE": os.environ.get("SUPPORT_TIMEZONE", "Europe/London"),
        "AGENT_ONLINE_SECONDS": float(os.environ.get("AGENT_ONLINE_SECONDS", 120)),
        "HUMAN_ONLY_NEEDS": _labels(os.environ.get("HUMAN_ONLY_NEEDS", "payment_problem,service_complaint")),
        # Where browsers reach Rasa's socket.io (the chat widget's data-server);
        # empty: the scheme and host of the page's request, on RASA_PORT.
        "RASA_PUBLIC_URL": os.environ.get("RASA_PUBLIC_URL", ""),
        "RASA_PORT": int(os.environ.get("RASA_PORT", 5005)),
        # Agent console (crm_backend/console): signs its session cookie and CSRF
        # tokens. `make run` generates one into $VAR_DIR/secret_key; when unset
        # the console makes one per process (sessions then end with a restart).
        "SECRET_KEY": os.environ.get("CRM_SECRET_KEY") or None,
        # 1 behind HTTPS: the console's cookie is then sent over HTTPS only.
        "SESSION_COOKIE_SECURE": os.environ.get("CRM_SECURE_COOKIES", "0") == "1",
        "CONSOLE_SESSION_HOURS": float(os.environ.get("CONSOLE_SESSION_HOURS", 12)),
        # Failed console sign-ins: after CONSOLE_LOGIN_FREE_FAILURES for one
        # e-mail from one client address, each further try waits 1, 2, 4, ...
        # seconds, at most CONSOLE_LOGIN_MAX_DELAY; failures are forgotten
        # CONSOLE_LOGIN_FAILURE_WINDOW seconds after the first one. Nothing
        # locks the right password out: another address, or the wait, lets it in.
        "CONSOLE_LOGIN_FREE_FAILURES": int(os.environ.get("CONSOLE_LOGIN_FREE_FAILURES", 3)),
        "CONSOLE_LOGIN_MAX_DELAY": int(os.environ.get("CONSOLE_LOGIN_MAX_DELAY", 60)),
        "CONSOLE_LOGIN_FAILURE_WINDOW": int(os.environ.get("CONSOLE_LOGIN_FAILURE_WINDOW", 900)),
        # Failed sign-ins allowed from one client address over all e-mails
        # (guessing many accounts; Flask-Limiter syntax).
        "CONSOLE_LOGIN_LIMIT": os.environ.get("CONSOLE_LOGIN_LIMIT", "30 per minute;300 per hour"),
        # The bot's API key, as the action server reads it (CRM_API_KEY, else
        # the file CRM_API_KEY_FILE names): /readyz checks the CRM accepts it
        # with these scopes, and revoking it through the API needs ?confirm=bot-key.
        "BOT_API_KEY": os.environ.get("CRM_API_KEY", "").strip(),
        "BOT_API_KEY_FILE": os.environ.get("CRM_API_KEY_FILE", "").strip(),
        "BOT_API_KEY_SCOPES": _labels(
            os.environ.get(
                "CRM_BOT_KEY_SCOPES",
                "customers:read,customers:write,tickets:read,tickets:write,handoffs:write,feedback:write",
            )
        ),
        # What chat (channel "chat") may create per UTC day, per customer
        # e-mail and per conversation; 0: no cap (crm_backend/chat_limits.py).
        "CHAT_DAILY_TICKETS": int(os.environ.get("CHAT_DAILY_TICKETS", 5)),
        "CHAT_DAILY_HANDOFFS": int(os.environ.get("CHAT_DAILY_HANDOFFS", 5)),
        "CHAT_DAILY_FEEDBACK": int(os.environ.get("CHAT_DAILY_FEEDBACK", 10)),
        "CANNED_REPLIES_PATH": os.environ.get(
            "CANNED_REPLIES_PATH", os.path.join(os.environ.get("VAR_DIR", "var"), "canned_replies.json")
        ),
        # Customer insights (crm_backend/insights, docs/insights.md): money
        # figures count orders in this currency only; lifetime value is
        # discounted at this yearly rate over this many years; a customer
        # churned after CHURN_DAYS without an order; complaints about these
        # needs are escalated for valuable customers at risk.
        "INSIGHTS_CURRENCY": os.environ.get("INSIGHTS_CURRENCY", "GBP").upper(),
        "INSIGHTS_DISCOUNT_RATE": float(os.environ.get("INSIGHTS_DISCOUNT_RATE", 0.10)),
        "INSIGHTS_HORIZON_YEARS": int(os.environ.get("INSIGHTS_HORIZON_YEARS", 3)),
        "CHURN_DAYS": int(os.environ.get("CHURN_DAYS", 180)),
        # When `crm insights nightly` (the `insights` process) recomputes
        # everyone: a time of day in SUPPORT_TIMEZONE, or "HH:MM UTC".
        "INSIGHTS_NIGHTLY_AT": os.environ.get("INSIGHTS_NIGHTLY_AT", "03:00"),
        "INSIGHTS_COMPLAINT_NEEDS": _labels(
            os.environ.get(
                "INSIGHTS_COMPLAINT_NEEDS",
                "damaged_or_defective,wrong_or_missing_item,delivery_problem,payment_problem,refund,service_complaint,billing",
            )
        ),
    }
