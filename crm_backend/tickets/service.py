"""Ticket business rules, independent of HTTP: create, change, comment, find."""

from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session

from .. import audit
from ..db import keyset_page
from ..customers import service as customers
from ..insights import service as insights
from ..models import Agent, Comment, Customer, Ticket, format_ticket_number, normalise_email
from ..problems import ApiProblem, field_problem
from ..webhooks import outbox
from . import rules

TICKET_AUDIT_FIELDS = (
    "number",
    "customer_id",
    "subject",
    "description",
    "status",
    "priority",
    "priority_reason",
    "priority_source",
    "category",
    "category_confidence",
    "category_source",
    "channel",
    "assignee_email",
    "conversation_id",
    "customer_verified",
)
COMMENT_AUDIT_FIELDS = ("ticket_id", "author_type", "author_name", "body", "public")


def classify_ticket(subject: str, description: str) -> tuple[str, float | None]:
    """The need behind a ticket as (category, confidence).

    The one place tickets meet the need classifier. Without a model the
    ticket is still created, as ``other`` with no confidence.
    """
    from ..needs import classify_or_other

    return classify_or_other(f"{subject}\n{description}")


def _snapshot(ticket: Ticket) -> dict:
    return audit.snapshot(ticket, TICKET_AUDIT_FIELDS)


def resolve_customer(
    session: Session, *, customer_id: int | None, customer_email: str | None, customer_name: str | None
) -> Customer:
    if (customer_id is None) == (customer_email is None):
        raise ApiProblem(
            422,
            "Give the customer either by customer_id or by customer_email, not both and not neither.",
            errors=[{"in": "json", "field": "customer_id", "message": "Give exactly one of customer_id and customer_email."}],
        )
    if customer_id is not None:
        customer = session.get(Customer, customer_id)
        if customer is None:
            raise field_problem("customer_id", f"There is no customer with id {customer_id}.")
        return customer
    return customers.get_or_create_by_email(session, customer_email, customer_name)


def _ticket_record_query():
    tickets, customers, agents = Ticket.__table__, Customer.__table__, Agent.__table__
    return (
        select(tickets, customers.c.email.label("customer_email"), agents.c.email.label("assignee_email"))
        .join_from(tickets, customers, tickets.c.customer_id == customers.c.id)
        .outerjoin(agents, tickets.c.assignee_id == agents.c.id)
        .where(tickets.c.id == bindparam("ticket_id"))
    )


# GET /tickets/{ref} is the bot's most frequent call. A Core query of the
# columns TicketOut shows, built once, costs about a third of an ORM get with
# its joined customer and assignee, and builds no objects only to serialise them.
_TICKET_RECORD = _ticket_record_query()


def ticket_record(session: Session, ticket_id: int) -> dict | None:
    """The ticket as a read-only dict with the fields of TicketOut, or None."""
    row = session.connection().execute(_TICKET_RECORD, {"ticket_id": ticket_id}).mappings().first()
    if row is None:
        return None
    return {**row, "number": format_ticket_number(row["id"])}


def find_agent(session: Session, email: str) -> Agent:
    agent = session.scalars(select(Agent).where(Agent.email == normalise_email(email))).one_or_none()
    if agent is None:
        raise field_problem("assignee", f"There is no agent with the e-mail {email}.")
    return agent


def create_ticket(
    session: Session,
    *,
    subject: str,
    description: str,
    customer_id: int | None = None,
    customer_email: str | None = None,
    customer_name: str | None = None,
    channel: str = "api",
    priority: str | None = None,
    conversation_id: str | None = None,
    assignee: str | None = None,
    category: str | None = None,
    customer_verified: bool = False,
) -> Ticket:
    """Add a ticket (and its customer if new) with audit events; the caller commits.

    ``customer_verified``: whoever opened it proved the customer's address
    (the chat's signed identity); false for a typed address, and for the
    console and other channels unless they say so.

    ``category`` given by the caller (an agent who already knows) wins over
    the classifier and is marked as a manual label. Without a ``priority``
    the customer's value and churn risk decide it, with the reason stored
    (crm_backend/insights).
    """
    customer = resolve_customer(
        session, customer_id=customer_id, customer_email=customer_email, customer_name=customer_name
    )
    if category is None:
        category, confidence = classify_ticket(subject, description)
        source = "classifier"
    else:
        confidence, source = None, "manual"
    ticket = Ticket(
        customer=customer,
        subject=subject,
        description=description,
        status="open",
        priority=priority or "normal",
        priority_source="manual" if priority is not None else "automatic",
        category=category,
        category_confidence=confidence,
        category_source=source,
        channel=channel,
        conversation_id=conversation_id,
        customer_verified=customer_verified,
        assignee=find_agent(session, assignee) if assignee else None,
    )
    session.add(ticket)
    session.flush()  # assigns the id, hence the number
    # After the flush, so that the customer's figures count this ticket.
    insights.refresh_customers(session, [customer.id])
    if priority is None:
        ticket.priority, ticket.priority_reason = insights.ticket_priority(session, customer, category)
    audit.record(session, "ticket.created", "ticket", ticket.id, None, _snapshot(ticket))
    outbox.emit(session, "ticket.created", ticket)
    return ticket


def update_ticket(session: Session, ticket: Ticket, changes: dict) -> Ticket:
    """Apply a PATCH: status rules first, then fields; audit what changed."""
    rules.check_editable(ticket.status)
    if "status" in changes:
        rules.check_transition(ticket.status, changes["status"])
    before = _snapshot(ticket)
    if "priority" in changes and changes["priority"] != ticket.priority:
        ticket.priority_reason = None  # set by hand now, and left alone from now on
        ticket.priority_source = "manual"
    for field in ("subject", "description", "status", "priority", "channel", "conversation_id"):
        if field in changes:
            setattr(ticket, field, changes[field])
    if "category" in changes and changes["category"] != ticket.category:
        # An agent's correction: it joins the next training run.
        ticket.category = changes["category"]
        ticket.category_confidence = None
        ticket.category_source = "manual"
        if ticket.priority_source == "automatic" and "priority" not in changes:
            _decide_priority_again(session, ticket)
    if "assignee" in changes:
        email = changes["assignee"]
        ticket.assignee = find_agent(session, email) if email else None
    old, new = audit.changed(before, _snapshot(ticket))
    if new:
        session.flush()
        audit.record(session, "ticket.updated", "ticket", ticket.id, old, new)
        outbox.emit(session, "ticket.updated", ticket)
    return ticket


def _decide_priority_again(session: Session, ticket: Ticket) -> None:
    """The automatic priority for the corrected need, by the rule that set it
    (the customer's figures refreshed first: complaints are a churn feature)."""
    session.flush()
    insights.refresh_customers(session, [ticket.customer_id])
    ticket.priority, ticket.priority_reason = insights.ticket_priority(session, ticket.customer, ticket.category)


def add_comment(
    session: Session,
    ticket: Ticket,
    *,
    body: str,
    author_type: str = "integration",
    author_name: str | None = None,
    public: bool = True,
) -> Comment:
    rules.check_editable(ticket.status)
    comment = Comment(ticket=ticket, body=body, author_type=author_type, author_name=author_name, public=public)
    session.add(comment)
    session.flush()
    audit.record(session, "comment.created", "comment", comment.id, None, audit.snapshot(comment, COMMENT_AUDIT_FIELDS))
    outbox.emit(session, "ticket.updated", ticket, comment=comment)
    return comment


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def find_tickets(
    session: Session,
    *,
    customer_email: str | None = None,
    customer_id: int | None = None,
    status: list[str] | None = None,
    category: str | None = None,
    priority: str | None = None,
    assignee: str | None = None,
    conversation_id: str | None = None,
    q: str | None = None,
    limit: int = 20,
    before_id: int | None = None,
) -> tuple[list[Ticket], int | None]:
    """Newest first; the page and the id to continue before (or None)."""
    query = select(Ticket)
    if customer_email is not None:
        query = query.join(Ticket.customer).where(Customer.email == normalise_email(customer_email))
    if customer_id is not None:
        query = query.where(Ticket.customer_id == customer_id)
    if status:
        query = query.where(Ticket.status.in_(status))
    if category is not None:
        query = query.where(Ticket.category == category)
    if priority is not None:
        query = query.where(Ticket.priority == priority)
    if assignee is not None:
        query = query.where(Ticket.assignee_id.in_(select(Agent.id).where(Agent.email == normalise_email(assignee))))
    if conversation_id is not None:
        query = query.where(Ticket.conversation_id == conversation_id)
    if q:
        pattern = _like_pattern(q)
        query = query.where(
            or_(Ticket.subject.ilike(pattern, escape="\\"), Ticket.description.ilike(pattern, escape="\\"))
        )
    return keyset_page(session, query, Ticket.id, limit=limit, cursor=before_id, newest_first=True)


def find_comments(
    session: Session, ticket: Ticket, *, include_internal: bool = True, limit: int = 50, after_id: int | None = None
) -> tuple[list[Comment], int | None]:
    query = select(Comment).where(Comment.ticket_id == ticket.id)
    if not include_internal:
        query = query.where(Comment.public.is_(True))
    return keyset_page(session, query, Comment.id, limit=limit, cursor=after_id, newest_first=False)
