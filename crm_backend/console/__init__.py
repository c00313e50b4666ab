"""The agent console at /console (docs/console.md).

Server-rendered pages plus a little JavaScript: sign in, the live handoff
queue, a conversation with its customer, claim, reply, canned replies,
tickets, need corrections and resolve. The JavaScript talks to JSON
endpoints under /console/api and follows changes through Server-Sent Events
at /console/events. How agents use it and the security model: docs/console.md.

``bp`` carries the routes of views.py, api.py, dashboard.py and events.py
(imported here so that the blueprint is whole); ``create_app`` registers it.
Its settings (``CONSOLE_*``, ``CRM_SECRET_KEY``, ``CANNED_REPLIES_PATH``) are
in crm_backend/settings.py.
"""

import secrets
from datetime import timedelta

from flask import Flask

from . import api, auth, dashboard, events  # noqa: F401  (their routes join bp)
from .views import bp

__all__ = ["bp", "init_app"]


def init_app(app: Flask) -> None:
    """Set up the console's session and limits; call after the rate limiter's init_app."""
    if not app.config.get("SECRET_KEY"):
        app.logger.warning(
            "agent console: CRM_SECRET_KEY is not set; using a key of this process only "
            "(sessions end when it restarts and are not shared between workers)"
        )
        app.config["SECRET_KEY"] = secrets.token_urlsafe(48)
    app.config.update(
        SESSION_COOKIE_NAME="crm_console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # Only the console uses the session: the API never sees the cookie.
        SESSION_COOKIE_PATH="/console",
    )
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=float(app.config["CONSOLE_SESSION_HOURS"]))
    auth.limit_logins(app)
    events.init_app(app)
