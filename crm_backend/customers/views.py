from apiflask import APIBlueprint, abort

from ..auth import require_scopes
from ..db import get_session
from ..models import Customer
from . import service
from .schemas import CustomerOut, CustomerPage, CustomerQuery

bp = APIBlueprint("customers", __name__, url_prefix="/api/v1/customers", tag="Customers")


@bp.get("")
@require_scopes("customers:read")
@bp.input(CustomerQuery, location="query", arg_name="query")
@bp.output(CustomerPage)
@bp.doc(summary="Find customers by e-mail or text, a page at a time", responses={403: "Missing scope"})
def list_customers(query):
    customers, after_id = service.find_customers(
        get_session(),
        email=query.get("email"),
        q=query.get("q"),
        limit=query["limit"],
        after_id=query.get("cursor"),
    )
    return {"items": customers, "next_cursor": after_id}


@bp.get("/<int:customer_id>")
@require_scopes("customers:read")
@bp.output(CustomerOut)
@bp.doc(summary="Get one customer", responses={403: "Missing scope", 404: "No such customer"})
def get_customer(customer_id: int):
    customer = get_session().get(Customer, customer_id)
    if customer is None:
        abort(404, detail=f"There is no customer with id {customer_id}.")
    return customer
