"""Delivering outbox events: claim, send, record, back off. Plain functions over a session.

Several workers may run at once (processes or threads). A delivery is
*claimed* by one conditional UPDATE that sets a lease; only the worker whose
token is on the row may record its outcome. On PostgreSQL the UPDATE picks
its rows with ``FOR UPDATE SKIP LOCKED``, so workers skip each other's rows
instead of queueing; on SQLite the UPDATE takes the database's write lock,
which makes the condition-and-set atomic as well.

Order: a delivery is only claimed when no older delivery of the same
resource to the same endpoint is still pending, so one endpoint receives
the events of one ticket (customer, handoff, ...) in the order they happened.

A claimed delivery that cannot be sent costs that delivery, never the
worker: one whose stored body is not UTF-8 text fails at once and is set
aside as a dead letter (crm_backend/dead_letters.py); one whose endpoint's
secret cannot be decrypted (the key changed) counts as a failed attempt and
is retried, so that fixing the key delivers it. Text from receivers is
cleaned before it is stored (PostgreSQL refuses NUL).
"""

import logging
import random
import secrets as token_source
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import LargeBinary, and_, bindparam, case, cast, delete, exists, insert, literal_column, not_, or_, select, update
from sqlalchemy.orm import Session, aliased

from .. import dead_letters
from ..models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from . import signing, ssrf
from .secrets import SecretBox, SecretsKeyError
from .transport import Outcome, post

log = logging.getLogger("crm_backend.webhooks.delivery")

Delivery = WebhookDelivery
# Written out, not bound: only then can SQLite (and PostgreSQL's generic
# plans) use the partial indexes "WHERE status = 'pending'".
PENDING = literal_column("'pending'")


@dataclass(frozen=True)
class Policy:
    """How hard to try (Flask config WEBHOOK_* keys, see webhooks/__init__.py)."""

    timeout: float = 10.0
    # Backoff: retry n (n = 1, 2, ...) waits a random time between half and
    # all of min(first * 2**(n-1), cap).
    first_retry_seconds: float = 30.0
    max_retry_seconds: float = 4 * 3600.0
    # Keep retrying until this long after the first attempt; the last retry
    # happens at or after it.
    retry_window_seconds: float = 24 * 3600.0
    failing_after: int = 5
    allow_private: bool = False

    @property
    def lease_seconds(self) -> float:
        # Longer than the slowest possible attempt (connect + answer).
        return self.timeout + 5.0 + 30.0


def backoff_seconds(retry: int, policy: Policy, rng: random.Random) -> float:
    """Seconds before retry number ``retry`` (1-based), with equal jitter."""
    ceiling = min(policy.first_retry_seconds * 2 ** min(retry - 1, 32), policy.max_retry_seconds)
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    lease_token: str
    endpoint_id: int
    url: str
    secrets: tuple[str, ...]
    message_id: str
    payload: bytes
    retry_count: int
    first_attempt_at: datetime | None


def _claimable(row):
    """Conditions for ``row`` (the table or an alias) to be claimed at ``:now``."""
    older = aliased(Delivery)
    blocked_by_older = exists().where(
        older.endpoint_id == row.endpoint_id,
        older.resource_key == row.resource_key,
        older.id < row.id,
        older.status == PENDING,
    )
    # EXISTS rather than IN: the planner then walks the due index instead of
    # every delivery of the enabled endpoints.
    endpoint_enabled = exists().where(WebhookEndpoint.id == row.endpoint_id, WebhookEndpoint.enabled.is_(True))
    now = bindparam("now", type_=Delivery.next_attempt_at.type)
    return and_(
        row.status == PENDING,
        row.next_attempt_at <= now,
        or_(row.lease_expires_at.is_(None), row.lease_expires_at <= now),
        endpoint_enabled,
        not_(blocked_by_older),
    )


# The statements are built once: the worker runs them several times a
# second, and building and hashing them anew each time cost more than
# running them.
_candidate = aliased(Delivery, name="candidate")
_CANDIDATES = (
    select(_candidate.id)
    .where(_claimable(_candidate))
    .order_by(_candidate.next_attempt_at, _candidate.id)
    .limit(bindparam("limit"))
)
_LEASE = dict(lease_token=bindparam("token"), lease_expires_at=bindparam("lease_until", type_=Delivery.lease_expires_at.type))
_CLAIM_DUE = update(Delivery).where(Delivery.id.in_(_CANDIDATES.scalar_subquery()), _claimable(Delivery)).values(**_LEASE)
# PostgreSQL: rows another worker is leasing right now are skipped, not waited for.
_CLAIM_DUE_SKIP_LOCKED = (
    update(Delivery)
    .where(Delivery.id.in_(_CANDIDATES.with_for_update(skip_locked=True, of=_candidate).scalar_subquery()), _claimable(Delivery))
    .values(**_LEASE)
)
_endpoint = WebhookEndpoint.__table__.c


def _claimed_statement(payload):
    return (
        select(
            Delivery.id,
            Delivery.retry_count,
            Delivery.first_attempt_at,
            WebhookEvent.message_id,
            payload.label("payload"),
            _endpoint.id.label("endpoint_id"),
            _endpoint.url,
            _endpoint.secret_encrypted,
            _endpoint.previous_secret_encrypted,
            _endpoint.previous_secret_expires_at,
        )
        .join_from(Delivery, WebhookEvent, Delivery.event_id == WebhookEvent.id)
        .join(WebhookEndpoint, Delivery.endpoint_id == _endpoint.id)
        .where(Delivery.lease_token == bindparam("token"))
        .order_by(Delivery.id)
    )


_CLAIMED = _claimed_statement(WebhookEvent.payload)
# SQLite keeps whatever bytes it is given as TEXT, and the driver refuses a
# value that is not UTF-8 with an error for the whole query: read the bytes,
# so that such a body costs only its own delivery. (PostgreSQL's text is UTF-8.)
_CLAIMED_BYTES = _claimed_statement(cast(WebhookEvent.payload, LargeBinary))


class Unsendable(Exception):
    """A claimed delivery that cannot be sent; ``retry`` if fixing a setting may let it go out."""

    def __init__(self, reason: str, *, retry: bool):
        super().__init__(reason)
        self.retry = retry


def _payload_bytes(payload: str | bytes) -> bytes:
    if isinstance(payload, str):
        return payload.encode()
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Unsendable(f"the stored body is not UTF-8 text ({error.reason} at byte {error.start})", retry=False) from None
    return bytes(payload)


def _claimed(row, box: SecretBox, token: str, now: datetime) -> Claimed:
    keys = [row.secret_encrypted]
    if row.previous_secret_encrypted and row.previous_secret_expires_at and row.previous_secret_expires_at > now:
        keys.append(row.previous_secret_encrypted)
    try:
        secrets = tuple(box.decrypt(key) for key in keys)
    except SecretsKeyError as error:
        raise Unsendable(f"cannot sign: {error}", retry=True) from None
    return Claimed(
        delivery_id=row.id,
        lease_token=token,
        endpoint_id=row.endpoint_id,
        url=row.url,
        secrets=secrets,
        message_id=row.message_id,
        payload=_payload_bytes(row.payload),
        retry_count=row.retry_count,
        first_attempt_at=row.first_attempt_at,
    )


def claim(
    session: Session, box: SecretBox, *, now: datetime, limit: int, policy: Policy, rng: random.Random | None = None
) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries to this caller and commit the lease.

    A leased delivery that cannot be sent is recorded here (see the module's
    docstring) and not returned.
    """
    connection = session.connection()
    params = {
        "now": now,
        "limit": limit,
        "token": token_source.token_hex(16),
        "lease_until": now + timedelta(seconds=policy.lease_seconds),
    }
    if connection.dialect.name == "postgresql":
        if not connection.execute(_CLAIM_DUE_SKIP_LOCKED, params).rowcount:
            session.rollback()
            return []
    else:
        # A read first: idle polling then never takes SQLite's write lock,
        # which the API's requests need.
        if connection.execute(_CANDIDATES, {**params, "limit": 1}).first() is None:
            session.rollback()
            return []
        session.rollback()
        # One statement: SQLite takes its write lock before evaluating it, so
        # choosing and leasing are atomic against other workers.
        session.connection().execute(_CLAIM_DUE, params)
    session.commit()
    statement = _CLAIMED if session.connection().dialect.name == "postgresql" else _CLAIMED_BYTES
    rows = session.connection().execute(statement, params).all()
    session.rollback()  # end the read; nothing to keep
    claimed, unsendable = [], []
    for row in rows:
        try:
            claimed.append(_claimed(row, box, params["token"], now))
        except Exception as error:  # noqa: BLE001  (one delivery must not stop the worker)
            problem = error if isinstance(error, Unsendable) else Unsendable(dead_letters.describe(error), retry=False)
            unsendable.append((row, problem))
    if unsendable:
        _record_unsendable(session, unsendable, params["token"], now=now, policy=policy, rng=rng or random.Random())
    return claimed


def _record_unsendable(session: Session, unsendable, token: str, *, now: datetime, policy: Policy, rng: random.Random) -> None:
    for row, problem in unsendable:
        stand_in = Claimed(row.id, token, row.endpoint_id, row.url, (), row.message_id, b"", row.retry_count, row.first_attempt_at)
        status = record(session, stand_in, Outcome(None, 0.0, str(problem)), now=now, policy=policy, rng=rng, give_up=not problem.retry)
        log.error("delivery %s of %s to endpoint %s cannot be sent: %s; now %s", row.id, row.message_id, row.endpoint_id, problem, status)
    session.commit()
    for row, problem in unsendable:
        if not problem.retry:
            dead_letters.set_aside(session, source="webhooks", position=f"delivery {row.id}", error=str(problem), raw=row.payload)


def send(claimed: Claimed, *, signed_at: int, policy: Policy, resolver=ssrf.system_resolver) -> Outcome:
    """One attempt: check the target again, sign with the current time, POST."""
    try:
        target = ssrf.check(claimed.url, allow_private=policy.allow_private, resolver=resolver)
    except ssrf.UnsafeURL as refused:
        return Outcome(None, 0.0, f"refused: {refused}")
    headers = signing.signed_headers(claimed.secrets, claimed.message_id, signed_at, claimed.payload)
    return post(target, claimed.payload, headers, timeout=policy.timeout)


_delivery = Delivery.__table__.c
_RECORD = (
    update(Delivery.__table__)
    .where(_delivery.id == bindparam("delivery_id"), _delivery.lease_token == bindparam("lease"))
    .values(
        lease_token=None,
        lease_expires_at=None,
        attempt_count=_delivery.attempt_count + 1,
        status=bindparam("new_status"),
        retry_count=bindparam("new_retry_count"),
        next_attempt_at=bindparam("next_at", type_=_delivery.next_attempt_at.type),
        first_attempt_at=bindparam("first_at", type_=_delivery.first_attempt_at.type),
        last_attempt_at=bindparam("at", type_=_delivery.last_attempt_at.type),
        last_status_code=bindparam("code"),
        last_error=bindparam("error"),
        delivered_at=bindparam("delivered_at", type_=_delivery.delivered_at.type),
    )
)
_ADD_ATTEMPT = insert(WebhookAttempt.__table__)
_at = bindparam("at", type_=_endpoint.last_success_at.type)
# updated_at says when the settings changed, not the health: it is kept.
_ENDPOINT_SUCCEEDED = (
    update(WebhookEndpoint.__table__)
    .where(_endpoint.id == bindparam("endpoint_id"))
    .values(consecutive_failures=0, failing_since=None, last_success_at=_at, updated_at=_endpoint.updated_at)
)
_ENDPOINT_FAILED = (
    update(WebhookEndpoint.__table__)
    .where(_endpoint.id == bindparam("endpoint_id"))
    .values(
        consecutive_failures=_endpoint.consecutive_failures + 1,
        last_failure_at=_at,
        last_error=bindparam("error"),
        # Failing from the attempt that reaches the threshold on.
        failing_since=case(
            (and_(_endpoint.failing_since.is_(None), _endpoint.consecutive_failures + 1 >= bindparam("failing_after")), _at),
            else_=_endpoint.failing_since,
        ),
        updated_at=_endpoint.updated_at,
    )
)


def record(
    session: Session, claimed: Claimed, outcome: Outcome, *, now: datetime, policy: Policy, rng: random.Random, give_up: bool = False
) -> str | None:
    """Add the attempt and what happens next to the session's transaction
    (the caller commits, possibly with other outcomes); returns the
    delivery's new status. ``give_up``: a failed attempt that no retry can
    mend fails the delivery at once.

    None if the lease was lost meanwhile (expired and taken over, or the
    endpoint deleted): then another worker owns the delivery and nothing is
    written.
    """
    connection = session.connection()
    first_attempt_at = claimed.first_attempt_at or now
    error = (outcome.error or None) and dead_letters.clean_text(outcome.error)[:500]
    # The receiver's answer: PostgreSQL's text cannot hold a NUL it may contain.
    response_body = outcome.response_body and dead_letters.clean_text(outcome.response_body)
    params = dict(
        delivery_id=claimed.delivery_id, lease=claimed.lease_token, at=now, first_at=first_attempt_at,
        code=outcome.status_code, error=error, delivered_at=None, next_at=None, new_retry_count=claimed.retry_count,
    )
    if outcome.succeeded:
        status = "delivered"
        params["delivered_at"] = now
    else:
        params["new_retry_count"] = claimed.retry_count + 1
        if give_up or (now - first_attempt_at).total_seconds() >= policy.retry_window_seconds:
            status = "failed"
        else:
            status = "pending"
            params["next_at"] = now + timedelta(seconds=backoff_seconds(claimed.retry_count + 1, policy, rng))
    if not connection.execute(_RECORD, {**params, "new_status": status}).rowcount:
        return None
    connection.execute(
        _ADD_ATTEMPT,
        dict(delivery_id=claimed.delivery_id, attempted_at=now, duration_ms=outcome.duration_ms,
             status_code=outcome.status_code, error=error, response_body=response_body),
    )
    if outcome.succeeded:
        connection.execute(_ENDPOINT_SUCCEEDED, {"endpoint_id": claimed.endpoint_id, "at": now})
    else:
        connection.execute(
            _ENDPOINT_FAILED,
            {"endpoint_id": claimed.endpoint_id, "at": now, "error": error or "failed", "failing_after": policy.failing_after},
        )
    return status


def requeue(session: Session, delivery: WebhookDelivery, *, now: datetime) -> None:
    """Send again as soon as possible, with a fresh retry window (redeliver)."""
    delivery.status = "pending"
    delivery.next_attempt_at = now
    delivery.retry_count = 0
    delivery.first_attempt_at = None
    delivery.delivered_at = None


def prune(session: Session, *, older_than: datetime) -> int:
    """Forget finished deliveries (and their attempts and events) older than ``older_than``."""
    finished = delete(Delivery).where(Delivery.status.in_(("delivered", "failed")), Delivery.created_at < older_than)
    removed = session.execute(finished.execution_options(synchronize_session=False)).rowcount
    orphaned = ~exists().where(Delivery.event_id == WebhookEvent.id)
    session.execute(
        delete(WebhookEvent).where(WebhookEvent.created_at < older_than, orphaned).execution_options(synchronize_session=False)
    )
    session.commit()
    return removed
