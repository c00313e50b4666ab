"""Who is signed in to the console, CSRF checks, and slowing down password guessing.

The session is Flask's signed cookie (HttpOnly, SameSite=Lax, path
/console) holding the agent's id, the time of sign-in and a stamp of their
password hash: changing the password ends every session of that agent.
Every request that changes something must carry the CSRF token of the
session (Flask-WTF's signed tokens) in the form field ``csrf_token`` or the
``X-CSRF-Token`` header.
"""

import hashlib
import hmac
import time
from urllib.parse import urlsplit

from flask import Flask, current_app, g, redirect, render_template, request, session, url_for
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import generate_csrf, validate_csrf
from wtforms import ValidationError

from ..db import get_session
from ..handoffs import availability
from ..models import Agent
from ..problems import problem

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC_ENDPOINTS = frozenset({"console.login", "console.static"})
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"


def _password_stamp(agent: Agent) -> str:
    return hashlib.sha256(agent.password_hash.encode()).hexdigest()[:16]


def _session_seconds() -> float:
    return float(current_app.config["CONSOLE_SESSION_HOURS"]) * 3600


def current_agent() -> Agent | None:
    return g.get("console_agent")


def sign_in(agent: Agent) -> None:
    # A new session (and CSRF token) at sign-in: nothing set before it,
    # e.g. by someone who planted a cookie, survives.
    session.clear()
    session.permanent = True
    session.update(agent_id=agent.id, signed_in_at=int(time.time()), stamp=_password_stamp(agent))


def sign_out() -> None:
    session.clear()


def _load_agent() -> None:
    agent_id = session.get("agent_id")
    if agent_id is None:
        return
    expired = time.time() - session.get("signed_in_at", 0) > _session_seconds()
    agent = None if expired else get_session().get(Agent, agent_id)
    if agent is None or not hmac.compare_digest(session.get("stamp", ""), _password_stamp(agent)):
        session.clear()
        return
    g.console_agent = agent
    # An agent with the console open is "online" for handoffs.
    availability.mark_seen_soon(current_app.extensions["crm_db"].sessionmaker, agent.id)
    # audit.current_actor() names the agent in every change of this request.
    g.audit_actor = ("agent", agent.id, agent.email)


def wants_json() -> bool:
    return request.path.startswith("/console/api/") or request.endpoint == "console.events"


def _csrf_problem(reason: str):
    detail = f"{reason} Reload the page and try again."
    if wants_json():
        return problem(403, detail)
    if request.endpoint == "console.login":
        error = "The sign-in form had expired; please sign in again."
        return render_template("console/login.html", error=error, email=request.form.get("email", "")), 403
    return render_template("console/error.html", title="This form has expired", message=detail), 403


def before_request():
    """Runs before every console view: the agent, the sign-in requirement, CSRF."""
    g.console_agent = None
    if request.endpoint == "console.static":
        return None
    _load_agent()
    if request.endpoint not in PUBLIC_ENDPOINTS and g.console_agent is None:
        if wants_json():
            return problem(401, "Sign in to the agent console first.")
        return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
    if request.method not in SAFE_METHODS:
        token = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
        try:
            validate_csrf(token, time_limit=int(_session_seconds()))
        except ValidationError as error:
            return _csrf_problem(str(error))
    return None


def csrf_token() -> str:
    return generate_csrf()


def safe_next(target: str | None) -> str:
    """Where to go after signing in: only a path inside the console (no open redirect)."""
    default = url_for("console.queue")
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/console") or target.startswith("//"):
        return default
    if parts.path.startswith("/console/login") or parts.path.startswith("/console/api/"):
        return default
    return target


def _failed_login(response) -> bool:
    return response.status_code == 401


def _login_email() -> str:
    return "console-login-email:" + request.form.get("email", "").strip().lower()[:320]


def _login_address() -> str:
    return "console-login-address:" + get_remote_address()


def limit_logins(app: Flask) -> None:
    """Count failed sign-ins per client address and per e-mail; past the limit, 429.

    Flask-Limiter's counters (per worker unless RATELIMIT_STORAGE_URI is
    shared) with the app's limiter from crm_backend/rate_limits.py.
    """
    limiter = app.extensions.get("crm_limiter")
    if limiter is None:
        raise RuntimeError("the agent console needs the rate limiter: call console.init_app after api.init_app")
    rule = app.config["CONSOLE_LOGIN_LIMIT"]
    view = app.view_functions["console.login"]
    for key_func in (_login_address, _login_email):
        view = limiter.limit(rule, key_func=key_func, methods=["POST"], deduct_when=_failed_login)(view)
    app.view_functions["console.login"] = view
