from apiflask import APIBlueprint, abort

from ..auth import require_scopes
from ..db import get_session
from . import service
from .schemas import OrderLookupQuery, OrderOut, OrderPage, OrderQuery

bp = APIBlueprint("orders", __name__, url_prefix="/api/v1/orders", tag="Orders")

NUMBER_DOC = (
    "The order's number as the customer writes it: `NW-100234`, `nw100234`, `NW 100234`, `#100234` or `100234` "
    "(3-12 digits) are the same order."
)


@bp.get("")
@require_scopes("orders:read")
@bp.input(OrderQuery, location="query", arg_name="query")
@bp.output(OrderPage)
@bp.doc(
    summary="Find orders, most recently ordered first, a page at a time",
    description="Each order carries its fulfilment (shipped, carrier, tracking, estimated delivery, delivered) and "
    "`delivery_state`, where it is in words a reply can be built from.",
    responses={403: "Missing scope"},
)
def list_orders(query):
    orders, after = service.find_orders(
        get_session(),
        customer_email=query.get("customer_email"),
        customer_id=query.get("customer_id"),
        status=query.get("status"),
        limit=query["limit"],
        after=query.get("cursor"),
    )
    return {"items": orders, "next_cursor": after}


@bp.get("/<number>")
@require_scopes("orders:read")
@bp.input(OrderLookupQuery, location="query", arg_name="query")
@bp.output(OrderOut)
@bp.doc(
    summary="Get one order by its number",
    description=NUMBER_DOC + " With `customer_email`, only that customer's order is found.",
    responses={403: "Missing scope", 404: "No such order (or not the given customer's)"},
)
def get_order(number: str, query):
    order = service.find_by_number(get_session(), number, customer_email=query.get("customer_email"))
    if order is None:
        # The same answer whether the number is unknown, malformed or another
        # customer's: nothing to learn from it but "not found".
        abort(404, detail="There is no such order; an order number looks like NW-100234 (it is in the order confirmation e-mail).")
    return order
