"""ORM models. Schema changes go through Alembic (crm_backend/migrations)."""

import re
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, Boolean, CheckConstraint, Date, Float, ForeignKey, Index, Numeric, String, Text, UniqueConstraint, false, text
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from .db import MAX_ID, Base, UTCDateTime, utcnow

E164 = re.compile(r"^\+[1-9]\d{1,14}$")


def normalise_email(email: str) -> str:
    # Stored lower-case so that the unique constraint is case-insensitive on
    # every backend without functional indexes.
    return email.strip().lower()


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320), unique=True)
    phone: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    # Customer insights (crm_backend/insights), recomputed when the customer's
    # orders, tickets or feedback change and nightly by `crm insights recompute`.
    # NULL until first computed. Money is in INSIGHTS_CURRENCY.
    lifetime_value: Mapped[Decimal | None] = mapped_column(Numeric(15, 2))
    loyalty_score: Mapped[int | None] = mapped_column()  # 0-100 from recency, frequency, monetary
    loyalty_tier: Mapped[str | None] = mapped_column(String(16), index=True)  # LOYALTY_TIERS
    churn_risk: Mapped[float | None] = mapped_column(Float)  # 0-1, from the latest churn model
    segment: Mapped[str | None] = mapped_column(String(64), index=True)  # a k-means segment's name
    # The inputs and reasons behind the figures above (RFM values, the churn
    # model's strongest factors), for explanations in the API and console.
    insights: Mapped[dict | None] = mapped_column(JSON)
    insights_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @validates("email")
    def _normalise_email(self, key: str, email: str) -> str:
        return normalise_email(email)

    @validates("phone")
    def _check_phone(self, key: str, phone: str | None) -> str | None:
        if phone is not None and not E164.match(phone):
            raise ValueError(f"phone {phone!r} is not in E.164 form (+ and up to 15 digits)")
        return phone

    def __repr__(self) -> str:
        return f"<Customer {self.id} {self.email}>"


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    # The public part of the key, used to find the row without scanning hashes.
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<ApiKey {self.prefix} {self.name}>"


TICKET_STATUSES = ("open", "pending", "on_hold", "solved", "closed")
TICKET_PRIORITIES = ("low", "normal", "high", "urgent")
TICKET_CHANNELS = ("chat", "email", "phone", "web", "api")
COMMENT_AUTHOR_TYPES = ("customer", "agent", "bot", "integration")
CATEGORY_SOURCES = ("classifier", "manual")
# "automatic": decided from the customer's value and churn risk
# (crm_backend/insights), and decided again when the need is corrected;
# "manual": given by a person or a client, and then left alone.
PRIORITY_SOURCES = ("automatic", "manual")
TICKET_NUMBER_PREFIX = "TCK-"
LOYALTY_TIERS = ("gold", "silver", "bronze")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


class Agent(Base):
    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # argon2id hash (argon2-cffi's PasswordHasher); never the password.
    password_hash: Mapped[str] = mapped_column(String(200))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    # When the agent last had the console open (its live stream or a page);
    # "online" is seen within the last few minutes (handoffs/availability.py).
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @validates("email")
    def _normalise_email(self, key: str, email: str) -> str:
        return normalise_email(email)

    def __repr__(self) -> str:
        return f"<Agent {self.id} {self.email}>"


class AgentSession(Base):
    """A console sign-in (crm_backend/console/auth.py).

    The session cookie holds a random token; only its SHA-256 is stored, so
    the table cannot be replayed as cookies. Signing out ends the row, and a
    copied cookie stops working with it; "sign out everywhere" ends every row
    of the agent.
    """

    __tablename__ = "agent_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<AgentSession {self.id} agent {self.agent_id}>"


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        CheckConstraint(_in("status", TICKET_STATUSES), name="status"),
        CheckConstraint(_in("priority", TICKET_PRIORITIES), name="priority"),
        CheckConstraint(_in("channel", TICKET_CHANNELS), name="channel"),
        CheckConstraint(_in("category_source", CATEGORY_SOURCES), name="category_source"),
        CheckConstraint(_in("priority_source", PRIORITY_SOURCES), name="priority_source"),
    )

    # The human number TCK-000123 is the id formatted: unique by construction,
    # even with concurrent writers, and needs no second write.
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    subject: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    priority: Mapped[str] = mapped_column(String(16), default="normal")
    category: Mapped[str] = mapped_column(String(64), default="other", index=True)
    category_confidence: Mapped[float | None] = mapped_column(Float)
    # "manual" once an agent corrected it: such rows feed the next training run.
    category_source: Mapped[str] = mapped_column(String(16), default="classifier")
    channel: Mapped[str] = mapped_column(String(16), default="api")
    # Why the priority is what it is, when it was set from the customer's
    # value and churn risk (crm_backend/insights); NULL when given by hand.
    priority_reason: Mapped[str | None] = mapped_column(Text)
    priority_source: Mapped[str] = mapped_column(String(16), default="manual", server_default="manual")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"), index=True)
    conversation_id: Mapped[str | None] = mapped_column(String(128), index=True)
    # Whether whoever opened it proved they are the customer (a signed
    # identity in the chat); false for an address a visitor only typed, and
    # for tickets from the console or other channels unless the caller says.
    customer_verified: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    customer: Mapped[Customer] = relationship(lazy="joined", innerjoin=True)
    assignee: Mapped[Agent | None] = relationship(lazy="joined")
    comments: Mapped[list["Comment"]] = relationship(
        back_populates="ticket", order_by="Comment.id", cascade="all, delete-orphan"
    )

    @property
    def number(self) -> str:
        return format_ticket_number(self.id)

    @property
    def customer_email(self) -> str:
        return self.customer.email

    @property
    def assignee_email(self) -> str | None:
        return self.assignee.email if self.assignee is not None else None

    def __repr__(self) -> str:
        return f"<Ticket {self.number} {self.status}>"


def format_ticket_number(ticket_id: int) -> str:
    return f"{TICKET_NUMBER_PREFIX}{ticket_id:06d}"


def parse_ticket_reference(reference: str) -> int | None:
    """The id in ``"123"`` or ``"TCK-000123"`` (any case), or None."""
    text = reference.strip()
    if text.upper().startswith(TICKET_NUMBER_PREFIX):
        text = text[len(TICKET_NUMBER_PREFIX):]
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None


class Comment(Base):
    __tablename__ = "comments"
    __table_args__ = (CheckConstraint(_in("author_type", COMMENT_AUTHOR_TYPES), name="author_type"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    author_type: Mapped[str] = mapped_column(String(16))
    author_name: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    # Internal notes are for agents only; public comments may reach the customer.
    public: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    ticket: Mapped[Ticket] = relationship(back_populates="comments")

    @property
    def ticket_number(self) -> str:
        return format_ticket_number(self.ticket_id)


class AuditEvent(Base):
    """Who changed what, with the entity before and after (JSON snapshots)."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_entity", "entity_type", "entity_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # api_key, agent or cli; actor_id is that row's id (None for cli).
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column()
    actor_name: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[int] = mapped_column()
    before: Mapped[dict | None] = mapped_column(JSON)
    after: Mapped[dict | None] = mapped_column(JSON)


class IdempotencyRecord(Base):
    """The first response to a creating POST, replayed for retries with the same key."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("api_key_id", "key", name="uq_idempotency_records_api_key_id_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"))
    key: Mapped[str] = mapped_column(String(255))
    # sha256 of method, path and canonical JSON body: a reused key with a
    # different request is refused instead of replayed.
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int] = mapped_column()
    response_body: Mapped[str] = mapped_column(Text)
    response_location: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


HANDOFF_STATUSES = ("queued", "claimed", "resolved")
HANDOFF_MESSAGE_SENDERS = ("customer", "agent", "bot")
ACTIVE_HANDOFF = "status IN ('queued', 'claimed')"


class Handoff(Base):
    """A conversation handed from the bot to a person: queued → claimed → resolved."""

    __tablename__ = "handoffs"
    __table_args__ = (
        CheckConstraint(_in("status", HANDOFF_STATUSES), name="status"),
        # At most one open handoff per conversation, enforced by the database
        # so that two concurrent requests cannot both queue one.
        Index(
            "uq_handoffs_active_conversation",
            "conversation_id",
            unique=True,
            sqlite_where=text(ACTIVE_HANDOFF),
            postgresql_where=text(ACTIVE_HANDOFF),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(128), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    reason: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(64), default="other", index=True)
    category_confidence: Mapped[float | None] = mapped_column(Float)
    channel: Mapped[str] = mapped_column(String(32), default="chat")
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"), index=True)
    # The conversation before the handoff, as [{sender, text, timestamp}].
    transcript: Mapped[list[dict]] = mapped_column(JSON, default=list)
    # Whether the visitor proved the customer's address (a signed identity);
    # false when they only typed it: the console warns the agent.
    customer_verified: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    customer: Mapped[Customer] = relationship(lazy="joined", innerjoin=True)
    agent: Mapped[Agent | None] = relationship(lazy="joined")
    messages: Mapped[list["HandoffMessage"]] = relationship(
        back_populates="handoff", order_by="HandoffMessage.id", cascade="all, delete-orphan"
    )

    @property
    def customer_email(self) -> str:
        return self.customer.email

    @property
    def customer_name(self) -> str:
        return self.customer.name

    @property
    def agent_email(self) -> str | None:
        return self.agent.email if self.agent is not None else None

    @property
    def agent_name(self) -> str | None:
        return self.agent.name if self.agent is not None else None

    @property
    def ticket_number(self) -> str | None:
        return format_ticket_number(self.ticket_id) if self.ticket_id is not None else None

    @property
    def wait_seconds(self) -> float | None:
        """Queued until claimed (or until now while still queued)."""
        end = self.claimed_at or (self.resolved_at if self.status == "resolved" else utcnow())
        return round((end - self.created_at).total_seconds(), 3)

    @property
    def handle_seconds(self) -> float | None:
        """Claimed until resolved (or until now while claimed)."""
        if self.claimed_at is None:
            return None
        end = self.resolved_at or utcnow()
        return round((end - self.claimed_at).total_seconds(), 3)

    def __repr__(self) -> str:
        return f"<Handoff {self.id} {self.conversation_id} {self.status}>"


class HandoffMessage(Base):
    """A message of a handed-off conversation, after the handoff."""

    __tablename__ = "handoff_messages"
    __table_args__ = (
        CheckConstraint(_in("sender", HANDOFF_MESSAGE_SENDERS), name="sender"),
        # A message followed from Rasa's event broker is stored once even if
        # the broker delivers it twice.
        UniqueConstraint("handoff_id", "source_event_id", name="uq_handoff_messages_handoff_id_source_event_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    handoff_id: Mapped[int] = mapped_column(ForeignKey("handoffs.id"), index=True)
    sender: Mapped[str] = mapped_column(String(16))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    text: Mapped[str] = mapped_column(Text)
    source_event_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    handoff: Mapped[Handoff] = relationship(back_populates="messages")
    agent: Mapped[Agent | None] = relationship(lazy="joined")

    @property
    def agent_name(self) -> str | None:
        return self.agent.name if self.agent is not None else None


class Feedback(Base):
    """A customer's satisfaction score (CSAT, 1–5) with an optional, classified comment."""

    __tablename__ = "feedback"
    __table_args__ = (CheckConstraint("score BETWEEN 1 AND 5", name="score"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    score: Mapped[int] = mapped_column()
    comment: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(64), index=True)
    category_confidence: Mapped[float | None] = mapped_column(Float)
    conversation_id: Mapped[str | None] = mapped_column(String(128), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    handoff_id: Mapped[int | None] = mapped_column(ForeignKey("handoffs.id"), index=True)
    # The agent who handled the conversation, for CSAT by agent.
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"), index=True)
    channel: Mapped[str] = mapped_column(String(32), default="chat")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    customer: Mapped[Customer | None] = relationship(lazy="joined")
    agent: Mapped[Agent | None] = relationship(lazy="joined")

    @property
    def customer_email(self) -> str | None:
        return self.customer.email if self.customer is not None else None

    @property
    def agent_email(self) -> str | None:
        return self.agent.email if self.agent is not None else None


# --- Webhooks (outbound outbox and deliveries), inbound events, orders -------
# Imported here rather than at the top so that this section stays one block.


# customer.created is not in the original catalogue; integrations that mirror
# customers (a data warehouse, a mailing tool) need it as much as the update.
WEBHOOK_EVENT_TYPES = (
    "ticket.created",
    "ticket.updated",
    "handoff.requested",
    "handoff.resolved",
    "feedback.received",
    "customer.created",
    "customer.updated",
)
DELIVERY_STATUSES = ("pending", "delivered", "failed")
PENDING_DELIVERY = "status = 'pending'"


class WebhookEndpoint(Base):
    """A receiver of outbound events, registered by an integration."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(500), default="")
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Fernet tokens (crm_backend/webhooks/secrets.py). Signing needs the plain
    # secret, so it cannot be hashed like an API key; it is encrypted with a
    # key kept outside the database instead.
    secret_encrypted: Mapped[str] = mapped_column(Text)
    # After a rotation the old secret also signs until it expires, so that
    # receivers can switch without losing a delivery.
    previous_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    secret_rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def status(self) -> str:
        if not self.enabled:
            return "disabled"
        return "failing" if self.failing_since is not None else "active"

    def __repr__(self) -> str:
        return f"<WebhookEndpoint {self.id} {self.url}>"


class WebhookEvent(Base):
    """The outbox: one change, with the exact JSON body every endpoint receives.

    Written in the transaction of the change itself, so an event exists if
    and only if its change was committed.
    """

    __tablename__ = "webhook_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The webhook-id header: the same for every retry and redelivery, so
    # receivers can de-duplicate.
    message_id: Mapped[str] = mapped_column(String(40), unique=True)
    event_type: Mapped[str] = mapped_column(String(64))
    # "ticket:42": deliveries of one resource to one endpoint keep their order.
    resource_key: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class WebhookDelivery(Base):
    """One event on its way to one endpoint: pending → delivered, or failed after the retry window."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint(_in("status", DELIVERY_STATUSES), name="status"),
        UniqueConstraint("event_id", "endpoint_id", name="uq_webhook_deliveries_event_id_endpoint_id"),
        # The worker's two questions, over pending rows only (finished ones
        # pile up until pruned): what is due, and is an older delivery of the
        # same resource to the same endpoint still pending?
        Index("ix_webhook_deliveries_due", "next_attempt_at", sqlite_where=text(PENDING_DELIVERY), postgresql_where=text(PENDING_DELIVERY)),
        Index(
            "ix_webhook_deliveries_pending_resource",
            "endpoint_id",
            "resource_key",
            "id",
            sqlite_where=text(PENDING_DELIVERY),
            postgresql_where=text(PENDING_DELIVERY),
        ),
        # An endpoint's deliveries, newest first; and its foreign key.
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("webhook_events.id", ondelete="CASCADE"), index=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    resource_key: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempt_count: Mapped[int] = mapped_column(default=0)
    # Failed attempts since the delivery was (re)queued: the backoff step.
    retry_count: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Start of the retry window (the first attempt since (re)queueing).
    first_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(String(500))
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The worker sending it right now holds a lease; an expired lease (a
    # crashed worker) lets another worker take the delivery over.
    lease_token: Mapped[str | None] = mapped_column(String(32))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    event: Mapped[WebhookEvent] = relationship(lazy="joined", innerjoin=True)
    # Deleted with the delivery by the database (ON DELETE CASCADE).
    attempts: Mapped[list["WebhookAttempt"]] = relationship(order_by="WebhookAttempt.id", passive_deletes=True)

    @property
    def message_id(self) -> str:
        return self.event.message_id

    @property
    def event_type(self) -> str:
        return self.event.event_type


class WebhookAttempt(Base):
    """One HTTP attempt of a delivery, successful or not."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    duration_ms: Mapped[float] = mapped_column(Float)
    status_code: Mapped[int | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(String(500))
    # The start of the receiver's answer, for debugging.
    response_body: Mapped[str | None] = mapped_column(Text)


INBOUND_SOURCE_KINDS = ("shop", "email")


class InboundSource(Base):
    """A system allowed to send signed events to POST /api/v1/inbound/{name}."""

    __tablename__ = "inbound_sources"
    __table_args__ = (CheckConstraint(_in("kind", INBOUND_SOURCE_KINDS), name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    # Encrypted like the webhook endpoints' secrets (verification needs the plain secret).
    secret_encrypted: Mapped[str] = mapped_column(Text)
    previous_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class InboundReceipt(Base):
    """An inbound event that was processed, by its webhook-id: a repeat is answered from here."""

    __tablename__ = "inbound_receipts"
    __table_args__ = (UniqueConstraint("source", "webhook_id", name="uq_inbound_receipts_source_webhook_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    webhook_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(64))
    # The response body of the first processing, replayed for duplicates.
    result: Mapped[dict] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


# placed -> paid -> fulfilled (order.updated), partially_refunded/refunded
# (order.refunded), cancelled (order.cancelled: never counts as a purchase).
ORDER_STATUSES = ("placed", "paid", "fulfilled", "partially_refunded", "refunded", "cancelled")


class Order(Base):
    """A customer's order on a shop platform, fed by its signed order.* events."""

    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint(_in("status", ORDER_STATUSES), name="status"),
        UniqueConstraint("source", "external_id", name="uq_orders_source_external_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    # The inbound source's name and the order's id there.
    source: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(64))
    # Major units (19.99), exact: Numeric, never a float.
    amount: Mapped[Decimal] = mapped_column(Numeric(15, 3))
    refunded_amount: Mapped[Decimal] = mapped_column(Numeric(15, 3), default=Decimal("0"))
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(24))
    ordered_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    refunded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The number the customer knows the order by, in its one canonical form
    # (NW-100234, crm_backend/orders/numbers.py); None when the shop sent none
    # and its id is not one. Not unique: two sources may know the same order.
    number: Mapped[str | None] = mapped_column(String(32), index=True)
    # Fulfilment, from order.shipped / order.delivered / order.updated and the CSV import.
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    carrier: Mapped[str | None] = mapped_column(String(64))
    tracking_number: Mapped[str | None] = mapped_column(String(64))
    tracking_url: Mapped[str | None] = mapped_column(String(2000))
    estimated_delivery: Mapped[date | None] = mapped_column(Date)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    customer: Mapped[Customer] = relationship(lazy="joined", innerjoin=True)

    @property
    def customer_email(self) -> str:
        return self.customer.email

    @property
    def net_amount(self) -> Decimal:
        """What the customer kept paying: the amount less refunds (for lifetime value)."""
        return self.amount - self.refunded_amount


class InsightModel(Base):
    """A fitted customer-insights model (churn, segments), newest per kind wins.

    Kept in the database rather than a file so that every backend worker and
    machine applies the same model; ``params`` is plain JSON (coefficients,
    scaler means and scales, centroids), ``metrics`` what it scored when fitted.
    """

    __tablename__ = "insight_models"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)  # "churn" or "segments"
    params: Mapped[dict] = mapped_column(JSON)
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    trained_rows: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    def __repr__(self) -> str:
        return f"<InsightModel {self.id} {self.kind}>"


class Conversation(Base):
    """One assistant conversation (a Rasa sender id), for containment figures.

    Written by the event follower (``crm handoffs follow``) from Rasa's event
    broker, and by ``crm seed-demo``. A conversation is contained when the
    customer wrote at least once and it was never handed to a person.
    """

    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(128), unique=True)
    channel: Mapped[str] = mapped_column(String(32), default="chat")
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    last_message_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    user_messages: Mapped[int] = mapped_column(default=0)
    handed_off: Mapped[bool] = mapped_column(Boolean, default=False)

    def __repr__(self) -> str:
        return f"<Conversation {self.conversation_id}>"


class JobLease(Base):
    """Who may run a job now, across processes and machines (crm_backend/leases.py).

    One row per job (``insights.recompute``): a holder takes it with one
    conditional UPDATE when it is free or its lease ran out, renews it while
    working, and gives it back with the time it finished, which is also how
    the nightly scheduler knows whether today's run happened.
    """

    __tablename__ = "job_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(200))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)

    def __repr__(self) -> str:
        return f"<JobLease {self.name} {self.holder or 'free'}>"


class DeadLetter(Base):
    """An event, delivery or row a long-running worker could not handle and set
    aside to carry on (crm_backend/dead_letters.py): the follower's broker
    event, the consumer's RabbitMQ message, a webhook delivery, a customer the
    nightly recompute could not refresh."""

    __tablename__ = "dead_letters"
    __table_args__ = (UniqueConstraint("source", "position", name="uq_dead_letters_source_position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(32))  # follower, consumer, webhooks, insights
    # Where the item is at its source: "event 812" (Rasa's events table),
    # "amqp:<message_id>", "delivery 42", "customer 7".
    position: Mapped[str] = mapped_column(String(128))
    error: Mapped[str] = mapped_column(String(500))
    # The start of the item, escaped, email addresses masked.
    excerpt: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    def __repr__(self) -> str:
        return f"<DeadLetter {self.id} {self.source} {self.position}>"
