"""Importing customers from CSV: clean, merge by e-mail, create or update in batches.

The e-mail identifies a customer. Rows are cleaned one by one (see
docs/import.md for the rules), rows sharing an e-mail are merged, then the
customers are written a batch at a time, each batch one transaction with
the audit events and outbox events the API's create and update paths add.
Writes are bulk statements: one look-up of a batch's e-mails, one INSERT,
one UPDATE, one INSERT of audit events.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from .. import audit
from ..customers.service import CUSTOMER_AUDIT_FIELDS
from ..db import utcnow
from ..models import AuditEvent, Customer, WebhookDelivery, WebhookEvent
from ..webhooks import outbox
from .cleaning import BadValue, clean_email, clean_name, clean_phone, clean_text
from .csvfile import Row, Table, decode, read_table
from .parallel import map_rows
from .results import BatchCounts, ImportResult, Issue, progress_bar, write_in_batches

DEFAULT_BATCH_SIZE = 1000
# Header names accepted per field, compared ignoring case, spaces and punctuation.
CUSTOMER_HEADERS = {
    "email": ("email", "e-mail", "email address", "e-mail address", "mail", "customer email"),
    "name": ("name", "full name", "customer name"),
    "first_name": ("first name", "given name", "forename"),
    "last_name": ("last name", "surname", "family name"),
    "phone": ("phone", "phone number", "mobile", "mobile number", "mobile phone", "telephone", "telephone number", "tel", "cell"),
}
# Bound parameters per IN (...) look-up; old SQLite builds allow 999 in all.
LOOKUP_CHUNK = 500
STORED_FIELDS = (Customer.id, Customer.name, Customer.email, Customer.phone)


@dataclass
class CustomerRecord:
    """One customer as the file describes it (several rows once merged)."""

    row: Row  # the first row with this e-mail
    email: str
    name: str  # "" when no row named them
    phone: str | None


def import_customers(
    session: Session,
    data: bytes,
    *,
    default_region: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    progress: Callable | None = None,
    processes: int = 1,
) -> ImportResult:
    """Import the CSV in ``data``; commits each batch (rolls each back if ``dry_run``).

    Raises ``ImportFileError`` when the file as a whole is unusable.
    ``progress`` is tqdm or alike, called as ``progress(total=, desc=, unit=, leave=)``;
    ``processes`` > 1 cleans rows in that many forked processes (command line only).
    """
    table = read_table(decode(data), CUSTOMER_HEADERS, required=("email",))
    result = ImportResult(columns=table.header, dry_run=dry_run, read=len(table.rows))
    records = clean_rows(table, default_region, result, progress, processes)
    bar = progress_bar(progress, len(records), "writing", "customer")
    write_in_batches(session, records, batch_size, partial(write_batch, session, dry_run=dry_run), result, bar)
    return result


def clean_rows(
    table: Table, default_region: str | None, result: ImportResult, progress: Callable | None = None, processes: int = 1
) -> list[CustomerRecord]:
    """The file's customers in order of first appearance, one per e-mail."""
    bar = progress_bar(progress, len(table.rows), "cleaning", "row")
    raw = [_raw_values(table, row) for row in table.rows]
    cleaned = map_rows(partial(clean_values, default_region=default_region), raw, processes, bar)
    bar.close()
    by_email: dict[str, CustomerRecord] = {}
    for row, values in zip(table.rows, cleaned):
        if values.email is None:
            result.reject(row, values.note)
            continue
        if values.note is not None:
            result.note(row, "warning", values.note)
        _merge(by_email, CustomerRecord(row, values.email, values.name, values.phone), result)
    return list(by_email.values())


def _raw_values(table: Table, row: Row) -> tuple[str, ...]:
    return tuple(table.value(row, field) for field in ("name", "first_name", "last_name", "email", "phone"))


class CleanValues(NamedTuple):
    """One row cleaned: a customer, or (email None) the reason it was rejected."""

    email: str | None
    name: str = ""
    phone: str | None = None
    note: str | None = None  # why it was rejected, or a warning about the phone


def clean_values(raw: tuple[str, ...], default_region: str | None) -> CleanValues:
    """Clean a row's (name, first name, last name, email, phone) as read."""
    name_text, first_name, last_name, email_text, phone_text = raw
    if not email_text.strip():
        named = clean_text(name_text or first_name or last_name)
        return CleanValues(None, note="no e-mail address" if named else "no name and no e-mail address")
    try:
        email = clean_email(email_text)
        # Each part on its own: "grace" and "HOPPER" are each in one case.
        name = clean_name(name_text or " ".join(filter(None, (clean_name(first_name), clean_name(last_name)))))
    except BadValue as error:
        return CleanValues(None, note=str(error))
    try:
        return CleanValues(email, name, clean_phone(phone_text, default_region))
    except BadValue as error:
        # The e-mail identifies the customer; a typo in the phone should not
        # keep them out of the CRM.
        return CleanValues(email, name, None, f"{error}; imported without the phone number")


def _merge(by_email: dict[str, CustomerRecord], record: CustomerRecord, result: ImportResult) -> None:
    kept = by_email.get(record.email)
    if kept is None:
        by_email[record.email] = record
        return
    result.merged += 1
    result.note(record.row, "merged", f"same e-mail as line {kept.row.line}; merged into it")
    if len(record.name) > len(kept.name):
        kept.name = record.name
    if kept.phone is None:
        kept.phone = record.phone


def existing_customers(session: Session, emails: list[str]) -> dict[str, dict]:
    """The stored customers with these (normalised) e-mails, as dicts by e-mail."""
    found: dict[str, dict] = {}
    for start in range(0, len(emails), LOOKUP_CHUNK):
        query = select(*STORED_FIELDS).where(Customer.email.in_(emails[start:start + LOOKUP_CHUNK]))
        found.update((row.email, dict(row._mapping)) for row in session.execute(query))
    return found


def write_batch(session: Session, records: list[CustomerRecord], *, dry_run: bool = False) -> BatchCounts:
    """Create the new customers and update the changed ones (nothing stored if ``dry_run``)."""
    existing = existing_customers(session, [record.email for record in records])
    counts = BatchCounts()
    new: list[dict] = []
    changed: list[tuple[dict, dict]] = []
    for record in records:
        current = existing.get(record.email)
        if current is None:
            new.append(_new_customer(record, counts))
            continue
        changes = {name: value for name, value in (("name", record.name), ("phone", record.phone)) if value and value != current[name]}
        if changes:
            changed.append((current, changes))
        else:
            counts.unchanged += 1
    counts.created, counts.updated = len(new), len(changed)
    if not dry_run:
        create_customers(session, new)
        update_customers(session, changed)
    return counts


def _new_customer(record: CustomerRecord, counts: BatchCounts) -> dict:
    name = record.name
    if not name:
        # What the API's get-or-create does for a customer known only by address.
        name = record.email.split("@", 1)[0]
        counts.issues.append(Issue(record.row.line, "warning", f"no name; named {name!r} after the e-mail address", record.row.values))
    return {"name": name, "email": record.email, "phone": record.phone}


def create_customers(session: Session, customers: list[dict]) -> list[dict]:
    """Insert ``customers`` (name, email, phone), audit and announce them; returns them with ids."""
    if not customers:
        return []
    now = utcnow()
    rows = [{**customer, "created_at": now, "updated_at": now} for customer in customers]
    # Core inserts of the table, not the ORM's bulk path: that splits rows into
    # a statement per run of equal None-ness. RETURNING rows come back in any
    # order (asking SQLAlchemy to sort them costs a statement per row on SQLite).
    table = Customer.__table__
    ids = dict(session.execute(insert(table).returning(table.c.email, table.c.id), rows).tuples().all())
    for row in rows:
        row["id"] = ids[row["email"]]
    audit_many(session, "customer.created", "customer", [(row["id"], None, {name: row[name] for name in CUSTOMER_AUDIT_FIELDS}) for row in rows])
    emit_many(session, "customer.created", list(ids.values()))
    return rows


def update_customers(session: Session, changed: list[tuple[dict, dict]]) -> None:
    """Apply each ``(current, changes)``; audit and announce what changed."""
    if not changed:
        return
    now = utcnow()
    # Every row sets the same columns: one executemany for the batch.
    rows = [{"id": current["id"], "name": current["name"], "phone": current["phone"], **changes, "updated_at": now} for current, changes in changed]
    session.execute(update(Customer), rows)
    audit_many(
        session,
        "customer.updated",
        "customer",
        [(current["id"], {name: current[name] for name in changes}, changes) for current, changes in changed],
    )
    emit_many(session, "customer.updated", [current["id"] for current, _ in changed])


def audit_many(session: Session, action: str, entity_type: str, entries: list[tuple[int, dict | None, dict]]) -> None:
    """What ``audit.record`` does for each ``(entity_id, before, after)``, in one statement."""
    actor_type, actor_id, actor_name = audit.current_actor()
    now = utcnow()
    session.execute(
        insert(AuditEvent.__table__),
        [
            {
                "occurred_at": now,
                "actor_type": actor_type,
                "actor_id": actor_id,
                "actor_name": actor_name,
                "action": action,
                "entity_type": entity_type,
                "entity_id": entity_id,
                "before": before,
                "after": after,
            }
            for entity_id, before, after in entries
        ],
    )


def emit_many(session: Session, event_type: str, customer_ids: list[int]) -> None:
    """What ``outbox.emit`` does for each customer, in a few statements.

    Nothing is written when no enabled endpoint subscribes to the type
    (the usual case, and then an import pays one query per batch for it).
    """
    endpoint_ids = outbox.subscribed_endpoints(session, event_type)
    if not endpoint_ids or not customer_ids:
        return
    now = utcnow()
    # Loaded whole, so that the payload is what GET /customers/{id} returns.
    query = select(Customer).where(Customer.id.in_(customer_ids)).order_by(Customer.id).execution_options(populate_existing=True)
    events = [
        {
            "message_id": outbox.new_message_id(),
            "event_type": event_type,
            "resource_key": f"customer:{customer.id}",
            "payload": json.dumps(outbox.payload_for(event_type, customer, now), separators=(",", ":")),
            "created_at": now,
        }
        for customer in session.scalars(query)
    ]
    table = WebhookEvent.__table__
    event_ids = dict(session.execute(insert(table).returning(table.c.message_id, table.c.id), events).tuples().all())
    session.execute(
        insert(WebhookDelivery.__table__),
        [
            {"event_id": event_ids[event["message_id"]], "endpoint_id": endpoint_id, "resource_key": event["resource_key"], "status": "pending", "next_attempt_at": now}
            for event in events
            for endpoint_id in endpoint_ids
        ],
    )
