"""Who is signed in to the console, CSRF checks, and slowing down password guessing.

The session is Flask's signed cookie (HttpOnly, SameSite=Lax, path
/console) holding the agent's id, a random session token and a stamp of
their password hash. The token's session is kept on the server
(crm_backend/agents/sessions.py): signing out ends it there, so a copied
cookie is refused afterwards, and "sign out everywhere" ends all of an
agent's sessions; changing the password ends them too (the stamp).
Every request that changes something must carry the CSRF token of the
session (Flask-WTF's signed tokens) in the form field ``csrf_token`` or the
``X-CSRF-Token`` header. Failed sign-ins slow down per (e-mail, address)
and are capped per address (login_delays.py).
"""

import hashlib
import hmac
from datetime import timedelta
from urllib.parse import urlsplit

from flask import Flask, current_app, g, redirect, render_template, request, session, url_for
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import generate_csrf, validate_csrf
from wtforms import ValidationError

from ..agents import sessions as agent_sessions
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
    """Start a server-side session for ``agent`` (committed) and put its token in the cookie."""
    # A new session (and CSRF token) at sign-in: nothing set before it,
    # e.g. by someone who planted a cookie, survives.
    session.clear()
    session.permanent = True
    database = get_session()
    _, token = agent_sessions.start(database, agent.id, timedelta(seconds=_session_seconds()))
    database.commit()
    session.update(agent_id=agent.id, session_token=token, stamp=_password_stamp(agent))


def sign_out() -> None:
    """End this browser's session on the server too: a copy of the cookie stops working."""
    token = session.get("session_token")
    if token:
        database = get_session()
        agent_sessions.end(database, token)
        database.commit()
    session.clear()


def sign_out_everywhere(agent: Agent) -> int:
    """End every session of ``agent``, this one included; how many there were."""
    database = get_session()
    ended = agent_sessions.end_all(database, agent.id)
    database.commit()
    session.clear()
    return ended


def _load_agent() -> None:
    agent_id, token = session.get("agent_id"), session.get("session_token")
    if agent_id is None:
        return
    database = get_session()
    record = agent_sessions.find_active(database, token) if isinstance(token, str) else None
    agent = database.get(Agent, agent_id) if record is not None and record.agent_id == agent_id else None
    if agent is None or not hmac.compare_digest(session.get("stamp", ""), _password_stamp(agent)):
        session.clear()
        return
    g.console_agent = agent
    g.console_session_id = record.id
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


def limit_logins(app: Flask) -> None:
    """Slow down failed sign-ins per (e-mail, address) and cap them per address
    (login_delays.py), counted in the storage of the app's rate limiter."""
    from . import login_delays

    if app.extensions.get("crm_limiter") is None:
        raise RuntimeError("the agent console needs the rate limiter: call console.init_app after rate_limits.init_app")
    login_delays.init_app(app)


def login_delays():
    return current_app.extensions["console_login_delays"]


def client_address() -> str:
    return get_remote_address()
