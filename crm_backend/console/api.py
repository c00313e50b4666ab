"""JSON endpoints of the console's JavaScript, under /console/api.

Session auth and an ``X-CSRF-Token`` header (crm_backend/console/auth.py);
each one calls the existing service functions inside one transaction, acts
for the signed-in agent, and answers errors as problem+json.
"""

import threading
import time

from apiflask import Schema
from apiflask.fields import Boolean, List, Nested, String
from apiflask.validators import Length, OneOf
from flask import g, render_template

from .. import audit
from ..db import get_session
from ..handoffs import service as handoffs
from ..handoffs.schemas import HandoffDetail, HandoffMessageOut, HandoffOut
from ..models import TICKET_PRIORITIES, Handoff, Ticket
from ..problems import ApiProblem, field_problem
from ..rasa import client as rasa_client
from ..tickets import service as tickets
from ..tickets.schemas import CATEGORY, TicketOut, TicketPatch
from ..transactions import transactional
from . import canned, queries
from .views import bp, handoff_or_404


class MessageIn(Schema):
    text = String(required=True, validate=Length(1, 5000))


class CategoryIn(Schema):
    category = String(required=True, validate=CATEGORY)


class TicketFromConversation(Schema):
    subject = String(required=True, validate=Length(1, 200))
    description = String(required=True, validate=Length(1, 20000))
    # None (the form's "Automatic"): decided from the customer's value and churn risk.
    priority = String(allow_none=True, load_default=None, validate=OneOf(TICKET_PRIORITIES))
    # Given only when the agent chose the need; otherwise the classifier decides.
    category = String(allow_none=True, load_default=None, validate=CATEGORY)


class NoteIn(Schema):
    body = String(required=True, validate=Length(1, 20000))
    public = Boolean(load_default=False)


class CannedReply(Schema):
    title = String(required=True, validate=Length(1, canned.MAX_TITLE))
    text = String(required=True, validate=Length(1, canned.MAX_TEXT))


class CannedReplies(Schema):
    replies = List(Nested(CannedReply), required=True, validate=Length(max=canned.MAX_REPLIES))


HANDOFF_AUDIT = ("ticket_number", "category", "category_confidence")


def state(handoff: Handoff) -> dict:
    """The handoff as the API shows it, plus what the conversation page needs."""
    return {**HandoffOut().dump(handoff), **queries.handoff_state(handoff, g.console_agent.id)}


def _claimed_by_someone_else(handoff: Handoff) -> ApiProblem:
    return ApiProblem(
        409,
        f"{handoff.agent_name} ({handoff.agent_email}) already claimed this conversation.",
        agent=handoff.agent_email,
        agent_name=handoff.agent_name,
    )


@bp.get("/api/handoffs/<int:handoff_id>")
def get_handoff(handoff_id: int):
    handoff = handoff_or_404(handoff_id)
    return {**HandoffDetail().dump(handoff), "mine": handoff.agent_id == g.console_agent.id}


@bp.post("/api/handoffs/<int:handoff_id>/claim")
@transactional
def claim(handoff_id: int):
    session = get_session()
    handoff = handoff_or_404(handoff_id)
    try:
        handoffs.claim(session, handoff, g.console_agent, rasa_client())
    except ApiProblem as problem:
        if handoff.status != "claimed":
            raise
        if handoff.agent_id != g.console_agent.id:
            raise _claimed_by_someone_else(handoff) from problem
        # The same agent clicked twice (two tabs): the first click won.
    return state(handoff)


@bp.post("/api/handoffs/<int:handoff_id>/messages")
@transactional
@bp.input(MessageIn, arg_name="data")
def reply(handoff_id: int, data):
    handoff = handoff_or_404(handoff_id)
    text = data["text"].strip()
    if not text:
        raise field_problem("text", "The reply is empty.")
    message = handoffs.reply(get_session(), handoff, g.console_agent, text, rasa_client())
    html = render_template("console/_message.html", line=queries.message_line(message))
    return {"message": HandoffMessageOut().dump(message), "html": html}, 201


# Every typing signal is a bot event stored in the conversation's tracker:
# one per handoff every few seconds at most (per process), however fast the
# agent types or however often the script calls.
TYPING_INTERVAL_SECONDS = 3.0
_typing_sent: dict[int, float] = {}
_typing_lock = threading.Lock()


def _typing_due(handoff_id: int) -> bool:
    now = time.monotonic()
    with _typing_lock:
        if now - _typing_sent.get(handoff_id, float("-inf")) < TYPING_INTERVAL_SECONDS:
            return False
        if len(_typing_sent) > 10_000:
            _typing_sent.clear()
        _typing_sent[handoff_id] = now
        return True


@bp.post("/api/handoffs/<int:handoff_id>/typing")
def typing(handoff_id: int):
    """The agent is typing a reply: the customer's chat shows "Sam is typing…" for a few seconds."""
    handoff = handoff_or_404(handoff_id)
    if handoff.status != "claimed" or handoff.agent_id != g.console_agent.id:
        raise ApiProblem(409, "Only the agent who claimed this conversation can be shown typing.")
    sent = _typing_due(handoff.id) and handoffs.typing(handoff, g.console_agent, rasa_client())
    return {"sent": bool(sent)}


@bp.post("/api/handoffs/<int:handoff_id>/resolve")
@transactional
def resolve(handoff_id: int):
    handoff = handoff_or_404(handoff_id)
    handoffs.resolve(get_session(), handoff, g.console_agent, rasa_client())
    return state(handoff)


def _linked_ticket(session, handoff: Handoff) -> Ticket | None:
    return session.get(Ticket, handoff.ticket_id) if handoff.ticket_id is not None else None


@bp.post("/api/handoffs/<int:handoff_id>/category")
@transactional
@bp.input(CategoryIn, arg_name="data")
def correct_category(handoff_id: int, data):
    """The agent's reading of the need: on the handoff, and on its ticket,
    where the correction joins the classifier's next training run."""
    session = get_session()
    handoff = handoff_or_404(handoff_id)
    ticket = _linked_ticket(session, handoff)
    if ticket is not None:
        tickets.update_ticket(session, ticket, {"category": data["category"]})
    if handoff.category != data["category"]:
        before = audit.snapshot(handoff, HANDOFF_AUDIT)
        handoff.category, handoff.category_confidence = data["category"], None
        session.flush()
        old, new = audit.changed(before, audit.snapshot(handoff, HANDOFF_AUDIT))
        audit.record(session, "handoff.updated", "handoff", handoff.id, old, new)
    return {**state(handoff), "ticket": TicketOut().dump(ticket) if ticket is not None else None}


@bp.post("/api/handoffs/<int:handoff_id>/ticket")
@transactional
@bp.input(TicketFromConversation, arg_name="data")
def create_ticket(handoff_id: int, data):
    """Open a ticket for the conversation's customer and link it to the handoff."""
    session = get_session()
    handoff = handoff_or_404(handoff_id)
    if handoff.ticket_id is not None:
        raise ApiProblem(409, f"This conversation already has ticket {handoff.ticket_number}; update that one.")
    ticket = tickets.create_ticket(
        session,
        customer_id=handoff.customer_id,
        subject=data["subject"],
        description=data["description"],
        priority=data["priority"],
        category=data["category"],
        channel="chat",
        conversation_id=handoff.conversation_id,
        assignee=g.console_agent.email,
    )
    before = audit.snapshot(handoff, HANDOFF_AUDIT)
    handoff.ticket_id = ticket.id
    session.flush()
    old, new = audit.changed(before, audit.snapshot(handoff, HANDOFF_AUDIT))
    audit.record(session, "handoff.updated", "handoff", handoff.id, old, new)
    return TicketOut().dump(ticket), 201


def _ticket_or_404(ticket_id: int) -> Ticket:
    ticket = get_session().get(Ticket, ticket_id)
    if ticket is None:
        raise ApiProblem(404, f"There is no ticket {ticket_id}.")
    return ticket


@bp.patch("/api/tickets/<int:ticket_id>")
@transactional
@bp.input(TicketPatch, arg_name="changes")
def update_ticket(ticket_id: int, changes):
    """The same rules as PATCH /api/v1/tickets/{id}: status transitions, and a
    category change marks it a manual label."""
    ticket = tickets.update_ticket(get_session(), _ticket_or_404(ticket_id), changes)
    return TicketOut().dump(ticket)


@bp.post("/api/tickets/<int:ticket_id>/notes")
@transactional
@bp.input(NoteIn, arg_name="data")
def add_note(ticket_id: int, data):
    comment = tickets.add_comment(
        get_session(),
        _ticket_or_404(ticket_id),
        body=data["body"],
        author_type="agent",
        author_name=g.console_agent.name,
        public=data["public"],
    )
    return {"id": comment.id, "ticket": comment.ticket_number}, 201


@bp.get("/api/canned-replies")
def list_canned_replies():
    return {"replies": canned.load()}


@bp.put("/api/canned-replies")
@transactional
@bp.input(CannedReplies, arg_name="data")
def save_canned_replies(data):
    before = canned.load()
    replies = [{"title": reply["title"].strip(), "text": reply["text"].strip()} for reply in data["replies"]]
    session = get_session()
    audit.record(session, "canned_replies.updated", "canned_replies", 0, {"replies": before}, {"replies": replies})
    session.flush()  # a database that refuses the audit event stops the save
    canned.save(replies)
    return {"replies": replies}
