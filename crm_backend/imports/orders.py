"""Importing orders from CSV (a shop's export): upsert by (source, order id).

Each order belongs to a customer known by e-mail; an unknown e-mail rejects
the row unless ``create_customers`` is set. A batch is one transaction:
its orders, their audit events and the refreshed insights of the
customers whose orders changed.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import partial

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from .. import audit
from ..db import utcnow
from ..insights import service as insights
from ..models import Order
from ..orders import fulfilment
from ..orders.numbers import normalise_order_number
from .cleaning import BadValue, clean_amount, clean_currency, clean_date, clean_email, clean_name, clean_status, clean_text, clean_timestamp
from .csvfile import Row, Table, decode, read_table
from .customers import DEFAULT_BATCH_SIZE, LOOKUP_CHUNK, audit_many, create_customers, existing_customers
from .results import BatchCounts, ImportResult, Issue, progress_bar, write_in_batches

DEFAULT_SOURCE = "import"
MAX_EXTERNAL_ID_LENGTH = 64
ORDER_HEADERS = {
    "order_id": ("order id", "order_id", "external id", "id", "order number", "order no", "order"),
    "customer_email": ("customer email", "customer e-mail", "email", "e-mail", "email address"),
    "customer_name": ("customer name", "name", "full name"),
    "amount": ("amount", "total", "order total", "total amount"),
    "currency": ("currency", "currency code"),
    "ordered_at": ("ordered at", "order date", "ordered", "date", "created at", "placed at"),
    "status": ("status", "order status"),
    "refunded_amount": ("refunded amount", "amount refunded", "refunded", "refund"),
    # Optional: the number the customer knows when the order id is not it, and fulfilment.
    "number": ("number", "customer order number", "order reference", "display number"),
    "shipped_at": ("shipped at", "shipped", "ship date", "shipped on", "shipping date", "dispatched at", "dispatched"),
    "carrier": ("carrier", "courier", "shipping carrier", "shipping company"),
    "tracking_number": ("tracking number", "tracking no", "tracking", "tracking code", "tracking id"),
    "tracking_url": ("tracking url", "tracking link", "tracking page"),
    "estimated_delivery": ("estimated delivery", "expected delivery", "delivery estimate", "estimated delivery date", "eta"),
    "delivered_at": ("delivered at", "delivered", "delivered on", "delivery date"),
}
REQUIRED_HEADERS = ("order_id", "customer_email", "amount", "currency", "ordered_at")
# What a row sets on its order, compared with the stored order to tell an update.
# Fulfilment columns absent from the file leave the stored values alone; a
# blank cell in one that is there clears the value.
SHIPPING_COLUMNS = ("shipped_at", "carrier", "tracking_number", "tracking_url", "estimated_delivery", "delivered_at")
ORDER_FIELDS = ("customer_id", "amount", "refunded_amount", "currency", "status", "ordered_at", "number", *SHIPPING_COLUMNS)
# As the inbound order events audit them (crm_backend/inbound/handlers.py), and the date.
ORDER_AUDIT_FIELDS = (
    "customer_id", "source", "external_id", "amount", "refunded_amount", "currency", "status", "ordered_at", "number", *SHIPPING_COLUMNS,
)


@dataclass
class OrderRecord:
    row: Row
    external_id: str
    email: str
    customer_name: str
    amount: Decimal
    refunded_amount: Decimal
    currency: str
    status: str
    ordered_at: datetime
    number: str | None
    shipping: dict  # only the fulfilment columns the file has


def import_orders(
    session: Session,
    data: bytes,
    *,
    source: str = DEFAULT_SOURCE,
    batch_size: int = DEFAULT_BATCH_SIZE,
    create_missing_customers: bool = False,
    dry_run: bool = False,
    progress: Callable | None = None,
) -> ImportResult:
    """Import the CSV in ``data`` as orders of ``source``; commits each batch.

    Raises ``ImportFileError`` when the file as a whole is unusable.
    """
    table = read_table(decode(data), ORDER_HEADERS, required=REQUIRED_HEADERS)
    result = ImportResult(columns=table.header, dry_run=dry_run, read=len(table.rows))
    result.extra["customers_created"] = 0
    records = clean_rows(table, result, progress)
    bar = progress_bar(progress, len(records), "writing", "order")
    write = partial(write_batch, session, source=source, create_missing_customers=create_missing_customers, dry_run=dry_run)
    write_in_batches(session, records, batch_size, write, result, bar)
    return result


def clean_rows(table: Table, result: ImportResult, progress: Callable | None = None) -> list[OrderRecord]:
    """One record per order id, in order of first appearance; a later row of
    the same order replaces the earlier one (a newer state of the order)."""
    by_id: dict[str, OrderRecord] = {}
    bar = progress_bar(progress, len(table.rows), "cleaning", "row")
    for row in table.rows:
        record = clean_row(table, row, result)
        if record is not None:
            earlier = by_id.get(record.external_id)
            if earlier is not None:
                result.merged += 1
                result.note(earlier.row, "merged", f"order {record.external_id!r} appears again on line {row.line}, which wins")
            by_id[record.external_id] = record
        bar.update(1)
    bar.close()
    return list(by_id.values())


def clean_row(table: Table, row: Row, result: ImportResult) -> OrderRecord | None:
    """The row's order, or None after recording why it was rejected."""
    try:
        return _clean(table, row)
    except BadValue as error:
        result.reject(row, str(error))
        return None


def _required(table: Table, row: Row, field: str, what: str) -> str:
    value = table.value(row, field)
    if not value.strip():
        raise BadValue(f"no {what}")
    return value


def _clean(table: Table, row: Row) -> OrderRecord:
    external_id = clean_text(_required(table, row, "order_id", "order id"))
    if len(external_id) > MAX_EXTERNAL_ID_LENGTH:
        raise BadValue(f"order id longer than {MAX_EXTERNAL_ID_LENGTH} characters")
    email = clean_email(_required(table, row, "customer_email", "customer e-mail address"))
    amount = clean_amount(_required(table, row, "amount", "amount"))
    currency = clean_currency(_required(table, row, "currency", "currency"))
    ordered_at = clean_timestamp(_required(table, row, "ordered_at", "order date"))
    status = clean_status(table.value(row, "status"))
    refunded_text = table.value(row, "refunded_amount")
    if refunded_text.strip():
        refunded = clean_amount(refunded_text, "refunded amount")
    else:
        refunded = amount if status == "refunded" else Decimal("0")
    if refunded > amount:
        raise BadValue(f"refunded amount {refunded} is more than the amount {amount}")
    number_text = table.value(row, "number")
    number = normalise_order_number(number_text if number_text.strip() else external_id)
    if number_text.strip() and number is None:
        raise BadValue(f"order number {number_text.strip()!r} is not like NW-100234 (or 100234, #100234)")
    shipping = _clean_shipping(table, row)
    if (shipping.get("shipped_at") or shipping.get("delivered_at")) and status in ("placed", "paid"):
        status = "fulfilled"  # as order.shipped and order.delivered do
    name = clean_name(table.value(row, "customer_name"))
    return OrderRecord(row, external_id, email, name, amount, refunded, currency, status, ordered_at, number, shipping)


def _clean_shipping(table: Table, row: Row) -> dict:
    """The fulfilment columns the file has (None for a blank cell), cleaned."""
    shipping: dict = {}
    for field in SHIPPING_COLUMNS:
        if field not in table.columns:
            continue
        text = table.value(row, field)
        what = field.replace("_", " ")
        if not text.strip():
            shipping[field] = None
        elif field in ("shipped_at", "delivered_at"):
            shipping[field] = clean_timestamp(text, what)
        elif field == "estimated_delivery":
            shipping[field] = clean_date(text, what)
        else:
            try:
                shipping[field] = fulfilment.check_tracking_url(text) if field == "tracking_url" else fulfilment.check_label(text, what)
            except ValueError as error:
                raise BadValue(str(error)) from None
    return shipping


def existing_orders(session: Session, source: str, external_ids: list[str]) -> dict[str, dict]:
    found: dict[str, dict] = {}
    columns = (Order.id, Order.external_id, *(getattr(Order, name) for name in ORDER_FIELDS))
    for start in range(0, len(external_ids), LOOKUP_CHUNK):
        query = select(*columns).where(Order.source == source, Order.external_id.in_(external_ids[start:start + LOOKUP_CHUNK]))
        found.update((row.external_id, dict(row._mapping)) for row in session.execute(query))
    return found


def write_batch(
    session: Session,
    records: list[OrderRecord],
    *,
    source: str,
    create_missing_customers: bool = False,
    dry_run: bool = False,
) -> BatchCounts:
    """Create or update the batch's orders (nothing stored if ``dry_run``)."""
    counts = BatchCounts()
    customer_ids = _customer_ids(session, records, create_missing_customers, dry_run, counts)
    existing = existing_orders(session, source, [record.external_id for record in records])
    new: list[dict] = []
    changed: list[tuple[dict, dict]] = []
    for record in records:
        if record.email not in customer_ids:
            counts.rejected += 1
            counts.issues.append(_unknown_customer(record))
            continue
        values = _values(record, customer_ids[record.email])
        current = existing.get(record.external_id)
        if current is None:
            new.append({"source": source, "external_id": record.external_id, **values})
            continue
        changes = {name: value for name, value in values.items() if value != current[name]}
        if changes:
            changed.append((current, changes))
        else:
            counts.unchanged += 1
    counts.created, counts.updated = len(new), len(changed)
    if not dry_run:
        _create_orders(session, new)
        _update_orders(session, changed)
        touched = {order["customer_id"] for order in new} | {current["customer_id"] for current, _ in changed}
        touched |= {changes["customer_id"] for _, changes in changed if "customer_id" in changes}
        if touched:
            insights.refresh_customers(session, touched)
    return counts


def _unknown_customer(record: OrderRecord) -> Issue:
    reason = f"no customer with the e-mail {record.email} (import the customers first, or use --create-customers)"
    return Issue(record.row.line, "rejected", reason, record.row.values)


def _customer_ids(session: Session, records: list[OrderRecord], create: bool, dry_run: bool, counts: BatchCounts) -> dict[str, int | None]:
    """Customer id by e-mail; customers not stored yet are created if ``create``
    (their id is None in a dry run)."""
    emails = list(dict.fromkeys(record.email for record in records))
    ids: dict[str, int | None] = {email: customer["id"] for email, customer in existing_customers(session, emails).items()}
    missing = [email for email in emails if email not in ids]
    if not create or not missing:
        return ids
    names = {record.email: record.customer_name for record in reversed(records) if record.customer_name}
    new = [{"name": names.get(email) or email.split("@", 1)[0], "email": email, "phone": None} for email in missing]
    counts.extra["customers_created"] = len(new)
    if dry_run:
        return {**ids, **dict.fromkeys(missing)}
    return {**ids, **{customer["email"]: customer["id"] for customer in create_customers(session, new)}}


def _values(record: OrderRecord, customer_id: int | None) -> dict:
    return {
        "customer_id": customer_id,
        "amount": record.amount,
        "refunded_amount": record.refunded_amount,
        "currency": record.currency,
        "status": record.status,
        "ordered_at": record.ordered_at,
        "number": record.number,
        **record.shipping,
    }


def _snapshot(order: dict) -> dict:
    """JSON-able audit values: amounts as exact strings, dates in ISO 8601."""
    return {name: str(order[name]) if isinstance(order[name], Decimal) else audit.jsonable(order[name]) for name in ORDER_AUDIT_FIELDS if name in order}


def _create_orders(session: Session, orders: list[dict]) -> None:
    if not orders:
        return
    # A Core insert with unordered RETURNING (see customers.create_customers); the order id says which row.
    table = Order.__table__
    ids = dict(session.execute(insert(table).returning(table.c.external_id, table.c.id), orders).tuples().all())
    audit_many(session, "order.created", "order", [(ids[order["external_id"]], None, _snapshot(order)) for order in orders])


def _update_orders(session: Session, changed: list[tuple[dict, dict]]) -> None:
    if not changed:
        return
    # Every row sets the same columns: one executemany for the batch.
    now = utcnow()
    rows = [{"id": current["id"], **{name: current[name] for name in ORDER_FIELDS}, **changes, "updated_at": now} for current, changes in changed]
    session.execute(update(Order), rows)
    audit_many(
        session,
        "order.updated",
        "order",
        [(current["id"], _snapshot({name: current[name] for name in changes}), _snapshot(changes)) for current, changes in changed],
    )

