from apiflask import APIBlueprint, abort
from flask import url_for

from .. import chat_limits
from ..auth import require_scopes
from ..db import get_session
from ..models import Ticket, parse_ticket_reference
from ..schemas import IdempotencyHeaders
from ..transactions import idempotent, transactional
from . import service
from .schemas import CommentIn, CommentOut, CommentPage, CommentQuery, TicketIn, TicketOut, TicketPage, TicketPatch, TicketQuery

bp = APIBlueprint("tickets", __name__, url_prefix="/api/v1/tickets", tag="Tickets")

TICKET_REF_DOC = "The ticket's id (123) or number (TCK-000123)."


def _not_found(ticket_ref: str):
    abort(404, detail=f"There is no ticket {ticket_ref!r}; use an id (123) or a number (TCK-000123).")


def _ticket_or_404(ticket_ref: str) -> Ticket:
    ticket_id = parse_ticket_reference(ticket_ref)
    ticket = get_session().get(Ticket, ticket_id) if ticket_id is not None else None
    if ticket is None:
        _not_found(ticket_ref)
    return ticket


@bp.get("")
@require_scopes("tickets:read")
@bp.input(TicketQuery, location="query", arg_name="query")
@bp.output(TicketPage)
@bp.doc(summary="Find tickets, newest first, a page at a time", responses={403: "Missing scope"})
def list_tickets(query):
    tickets, before_id = service.find_tickets(
        get_session(),
        customer_email=query.get("customer_email"),
        customer_id=query.get("customer_id"),
        status=query.get("status"),
        category=query.get("category"),
        priority=query.get("priority"),
        assignee=query.get("assignee"),
        conversation_id=query.get("conversation_id"),
        q=query.get("q"),
        limit=query["limit"],
        before_id=query.get("cursor"),
    )
    return {"items": tickets, "next_cursor": before_id}


@bp.post("")
@require_scopes("tickets:write")
@bp.input(IdempotencyHeaders, location="headers", arg_name="idempotency")
@idempotent
@bp.input(TicketIn, arg_name="data")
@bp.output(TicketOut, status_code=201)
@bp.doc(
    summary="Open a ticket for a customer given by id or e-mail; its need is classified",
    description="Tickets from chat (`channel: chat`) are capped per customer and conversation a day "
    "(`CHAT_DAILY_TICKETS`): 429 (type `.../daily-limit`) over it.",
    responses={403: "Missing scope", 409: "Conflicting concurrent change", 429: "Today's limit of tickets from chat is reached"},
)
def create_ticket(data):
    chat_limits.check_daily_cap(
        get_session(),
        "tickets",
        channel=data.get("channel"),
        customer_id=data.get("customer_id"),
        customer_email=data.get("customer_email"),
        conversation_id=data.get("conversation_id"),
    )
    ticket = service.create_ticket(get_session(), **data)
    return ticket, 201, {"Location": url_for(".get_ticket", ticket_ref=ticket.number)}


@bp.get("/<ticket_ref>")
@require_scopes("tickets:read")
@bp.output(TicketOut)
@bp.doc(summary="Get one ticket by id or number", description=TICKET_REF_DOC, responses={403: "Missing scope", 404: "No such ticket"})
def get_ticket(ticket_ref: str):
    ticket_id = parse_ticket_reference(ticket_ref)
    ticket = service.ticket_record(get_session(), ticket_id) if ticket_id is not None else None
    if ticket is None:
        _not_found(ticket_ref)
    return ticket


@bp.patch("/<ticket_ref>")
@require_scopes("tickets:write")
@transactional
@bp.input(TicketPatch, arg_name="changes")
@bp.output(TicketOut)
@bp.doc(
    summary="Change a ticket: status (by the lifecycle rules), priority, category, assignee, ...",
    description=TICKET_REF_DOC,
    responses={403: "Missing scope", 404: "No such ticket", 409: "Forbidden status change, or the ticket is closed"},
)
def update_ticket(ticket_ref: str, changes):
    return service.update_ticket(get_session(), _ticket_or_404(ticket_ref), changes)


@bp.get("/<ticket_ref>/comments")
@require_scopes("tickets:read")
@bp.input(CommentQuery, location="query", arg_name="query")
@bp.output(CommentPage)
@bp.doc(summary="A ticket's comments, oldest first", description=TICKET_REF_DOC, responses={403: "Missing scope", 404: "No such ticket"})
def list_comments(ticket_ref: str, query):
    comments, after_id = service.find_comments(
        get_session(),
        _ticket_or_404(ticket_ref),
        include_internal=not query["public_only"],
        limit=query["limit"],
        after_id=query.get("cursor"),
    )
    return {"items": comments, "next_cursor": after_id}


@bp.post("/<ticket_ref>/comments")
@require_scopes("tickets:write")
@bp.input(IdempotencyHeaders, location="headers", arg_name="idempotency")
@idempotent
@bp.input(CommentIn, arg_name="data")
@bp.output(CommentOut, status_code=201)
@bp.doc(
    summary="Add a public comment or an internal note to a ticket",
    description=TICKET_REF_DOC,
    responses={403: "Missing scope", 404: "No such ticket", 409: "The ticket is closed"},
)
def add_comment(ticket_ref: str, data):
    return service.add_comment(get_session(), _ticket_or_404(ticket_ref), **data), 201
