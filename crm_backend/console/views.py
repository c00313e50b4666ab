"""The console's pages: sign in and out, the queue, a conversation."""

import hashlib
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from apiflask import APIBlueprint
from flask import abort, current_app, redirect, render_template, request, url_for
from werkzeug.exceptions import NotFound

from ..agents.service import find_agent, verify_password
from ..db import get_session
from ..models import TICKET_PRIORITIES, TICKET_STATUSES, Customer, Handoff, Ticket
from ..tickets.rules import ALLOWED_TRANSITIONS
from . import auth, canned, queries

# An APIBlueprint for its input validation; none of it is public API, so it
# stays out of the OpenAPI document.
bp = APIBlueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder="static",
    enable_openapi=False,
)
bp.before_request(auth.before_request)

STATIC = Path(__file__).parent / "static"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
)


@bp.after_request
def _security_headers(response):
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    if request.endpoint != "console.static":
        # Customer data: never kept by the browser's or a proxy's cache.
        headers["Cache-Control"] = "no-store"
    return response


def _static_version(filename: str) -> str:
    cache = current_app.extensions.setdefault("console_static_versions", {})
    path = STATIC / filename
    key = (filename, path.stat().st_mtime_ns)
    if key not in cache:
        cache[key] = hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    return cache[key]


@bp.app_template_global("console_static")
def console_static(filename: str) -> str:
    return url_for("console.static", filename=filename, v=_static_version(filename))


@bp.context_processor
def _template_globals():
    return {"agent": auth.current_agent(), "csrf_token": auth.csrf_token}


@bp.app_template_filter("console_duration")
def console_duration(seconds: float | None) -> str:
    """3 s, 4 min, 2 h 5 min, 3 d — the way a queue shows waiting times."""
    if seconds is None:
        return "–"
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} d"


@bp.app_template_filter("console_label")
def console_label(value: str | None) -> str:
    """order_status → Order status."""
    return (value or "").replace("_", " ").capitalize()


@bp.app_template_filter("console_priority_line")
def console_priority_line(ticket: Ticket) -> str:
    """Urgent — a complaint about refund from a Gold customer at 62% churn risk (…); or who set it."""
    label = console_label(ticket.priority)
    reason = ticket.priority_reason
    if reason:
        # The stored reason starts with the priority it explains ("Urgent: ...").
        prefix = f"{label}: "
        return f"Priority: {label} — {reason.removeprefix(prefix)}"
    if ticket.priority_source == "automatic":
        return f"Priority: {label} (automatic: not a complaint from a valued customer at risk)"
    return f"Priority: {label} (set by hand)"


@bp.app_template_filter("console_money")
def console_money(amount: Decimal, currency: str) -> str:
    symbols = {"GBP": "£", "EUR": "€", "USD": "$"}
    text = f"{Decimal(amount):,.2f}"
    return f"{symbols[currency]}{text}" if currency in symbols else f"{text} {currency}"


@bp.app_template_filter("console_initials")
def console_initials(name: str) -> str:
    parts = [part for part in (name or "?").replace("@", " ").split() if part[:1].isalnum()]
    return "".join(part[0] for part in parts[:2]).upper() or "?"


@bp.app_template_filter("console_time")
def console_time(moment: datetime | None) -> str:
    return moment.strftime("%d %b %Y, %H:%M UTC") if moment else ""


def _wait_page(seconds: int, email: str):
    unit = "second" if seconds == 1 else "seconds"
    message = f"Too many failed sign-ins. Wait {seconds} {unit}, then try again."
    html = render_template("console/login.html", error=message, email=email, next=request.form.get("next", ""))
    return html, 429, {"Retry-After": str(seconds)}


@bp.errorhandler(NotFound)
def _not_found(error):
    if auth.wants_json():
        from ..problems import problem

        return problem(404, error.description if isinstance(error.description, str) else None)
    return render_template("console/error.html", title="Not found", message="There is nothing here."), 404


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        if auth.current_agent() is not None:
            return redirect(auth.safe_next(request.args.get("next")))
        return render_template("console/login.html", next=request.args.get("next", ""), notice=_notice())
    email = request.form.get("email", "").strip()
    password = request.form.get("password", "")
    delays, address = auth.login_delays(), auth.client_address()
    wait = delays.wait_seconds(email, address)
    if wait:
        return _wait_page(wait, email)
    session = get_session()
    agent = verify_password(session, email, password) if email and password else None
    if agent is None:
        delay = delays.failed(email, address)
        known = find_agent(session, email) if email else None
        who = f"agent {known.id}" if known is not None else "an unknown e-mail"
        current_app.logger.info("console: failed sign-in for %s from %s", who, address)
        error = "That e-mail address and password do not match an agent account."
        if delay:
            error += f" Wait {delay} {'second' if delay == 1 else 'seconds'} before the next try."
        return render_template("console/login.html", error=error, email=email, next=request.form.get("next", "")), 401
    session.commit()  # an upgraded password hash, if any
    delays.succeeded(email, address)
    auth.sign_in(agent)
    current_app.logger.info("console: agent %s signed in", agent.id)
    return redirect(auth.safe_next(request.form.get("next")))


NOTICES = {
    "signed_out": "You are signed out.",
    "signed_out_everywhere": "You are signed out on every device and browser.",
}


def _notice() -> str | None:
    return NOTICES.get(request.args.get("notice", ""))


@bp.post("/logout")
def logout():
    auth.sign_out()
    return redirect(url_for("console.login", notice="signed_out"))


@bp.post("/logout-everywhere")
def logout_everywhere():
    """End every session of the signed-in agent: other browsers, copied cookies, this one."""
    agent = auth.current_agent()
    ended = auth.sign_out_everywhere(agent)
    current_app.logger.info("console: agent %s signed out everywhere (%d session(s))", agent.id, ended)
    return redirect(url_for("console.login", notice="signed_out_everywhere"))


def _queue_context(current: Handoff | None = None) -> dict:
    session = get_session()
    handoffs = queries.active_handoffs(session)
    return {
        "handoffs": handoffs,
        "previews": queries.last_customer_lines(session, handoffs),
        "current_id": current.id if current is not None else None,
    }


@bp.get("")
def queue():
    return render_template("console/queue.html", **_queue_context())


def handoff_or_404(handoff_id: int) -> Handoff:
    handoff = get_session().get(Handoff, handoff_id)
    if handoff is None:
        abort(404, f"There is no handoff {handoff_id}.")
    return handoff


def panel_context(handoff: Handoff) -> dict:
    session = get_session()
    ticket = session.get(Ticket, handoff.ticket_id) if handoff.ticket_id is not None else None
    return {
        "handoff": handoff,
        "ticket": ticket,
        "draft": queries.ticket_draft(handoff) if ticket is None else None,
        "panel": queries.customer_panel(session, handoff),
        "needs": queries.need_labels(handoff.category, ticket.category if ticket else None),
        "ticket_statuses": _reachable_statuses,
        "ticket_priorities": TICKET_PRIORITIES,
    }


def _reachable_statuses(current: str) -> list[str]:
    """The ticket's status and those it may move to (tickets/rules.py), in lifecycle order."""
    return [status for status in TICKET_STATUSES if status == current or status in ALLOWED_TRANSITIONS[current]]


@bp.get("/handoffs/<int:handoff_id>")
def conversation(handoff_id: int):
    handoff = handoff_or_404(handoff_id)
    messages = [queries.message_line(message) for message in handoff.messages]
    return render_template(
        "console/conversation.html",
        **_queue_context(handoff),
        **panel_context(handoff),
        transcript=queries.transcript_lines(handoff),
        messages=messages,
        last_message_id=messages[-1].id if messages else 0,
        canned_replies=canned.load(),
    )


@bp.get("/handoffs/<int:handoff_id>/panel")
def panel(handoff_id: int):
    """The customer panel alone, for the page to refresh after a change."""
    return render_template("console/_panel.html", **panel_context(handoff_or_404(handoff_id)))



@bp.get("/customers/<int:customer_id>")
def customer(customer_id: int):
    """One customer: insights, orders, tickets, conversations with a person, scores."""
    session = get_session()
    record = session.get(Customer, customer_id)
    if record is None:
        abort(404, f"There is no customer {customer_id}.")
    return render_template(
        "console/customer.html",
        customer=record,
        panel=queries.customer_record(session, customer_id),
        currency=current_app.config["INSIGHTS_CURRENCY"],
    )
