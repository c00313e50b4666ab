"""The agent console at /console (DESIGN "Pages served by the backend").

Server-rendered pages plus a little JavaScript: sign in, the live handoff
queue, a conversation with its customer, claim, reply, canned replies,
tickets, need corrections and resolve. The JavaScript talks to JSON
endpoints under /console/api and follows changes through Server-Sent Events
at /console/events. How agents use it and the security model: docs/console.md.
"""

import secrets
from datetime import timedelta

from flask import Flask

from . import auth
from .views import bp

__all__ = ["bp", "init_app"]

# Long-lived streams hold a gunicorn thread each (gthread, 8 per worker):
# they are bounded in number, in time, and kept alive by heartbeats.
SSE_DEFAULTS = {
    "CONSOLE_SSE_POLL_SECONDS": 0.5,
    "CONSOLE_SSE_HEARTBEAT_SECONDS": 10.0,
    "CONSOLE_SSE_MAX_SECONDS": 300.0,
    "CONSOLE_SSE_MAX_STREAMS": 6,
}


def init_app(app: Flask) -> None:
    """Register the console; call after the API (it uses the rate limiter)."""
    from . import api, dashboard, events  # noqa: F401  (their routes join bp)

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
    for key, value in SSE_DEFAULTS.items():
        app.config.setdefault(key, value)
    # CONSOLE_SESSION_HOURS, CONSOLE_LOGIN_LIMIT and CANNED_REPLIES_PATH come from config.py.
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=float(app.config["CONSOLE_SESSION_HOURS"]))
    app.register_blueprint(bp)
    auth.limit_logins(app)
    events.init_app(app)
