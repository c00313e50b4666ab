from apiflask import APIBlueprint, abort
from flask import url_for

from ..auth import require_scopes
from ..db import get_session
from ..models import Customer
from ..schemas import IdempotencyHeaders
from ..transactions import idempotent, transactional
from . import service
from .schemas import CustomerIn, CustomerOut, CustomerPage, CustomerPatch, CustomerQuery

bp = APIBlueprint("customers", __name__, url_prefix="/api/v1/customers", tag="Customers")


@bp.get("")
@require_scopes("customers:read")
@bp.input(CustomerQuery, location="query", arg_name="query")
@bp.output(CustomerPage)
@bp.doc(
    summary="Find customers by e-mail, text, loyalty tier, segment or churn risk, a page at a time",
    responses={403: "Missing scope"},
)
def list_customers(query):
    customers, after_id = service.find_customers(
        get_session(),
        email=query.get("email"),
        q=query.get("q"),
        loyalty_tier=query.get("loyalty_tier"),
        segment=query.get("segment"),
        min_churn_risk=query.get("min_churn_risk"),
        limit=query["limit"],
        after_id=query.get("cursor"),
    )
    return {"items": customers, "next_cursor": after_id}


@bp.post("")
@require_scopes("customers:write")
@bp.input(IdempotencyHeaders, location="headers", arg_name="idempotency")
@idempotent
@bp.input(CustomerIn, arg_name="data")
@bp.output(CustomerOut, status_code=201)
@bp.doc(
    summary="Create a customer",
    responses={403: "Missing scope", 409: "E-mail already used, or Idempotency-Key conflict"},
)
def create_customer(data):
    customer = service.create_customer(get_session(), **data)
    return customer, 201, {"Location": url_for(".get_customer", customer_id=customer.id)}


def _customer_or_404(customer_id: int) -> Customer:
    customer = get_session().get(Customer, customer_id)
    if customer is None:
        abort(404, detail=f"There is no customer with id {customer_id}.")
    return customer


@bp.get("/<int:customer_id>")
@require_scopes("customers:read")
@bp.output(CustomerOut)
@bp.doc(summary="Get one customer", responses={403: "Missing scope", 404: "No such customer"})
def get_customer(customer_id: int):
    return _customer_or_404(customer_id)


@bp.patch("/<int:customer_id>")
@require_scopes("customers:write")
@transactional
@bp.input(CustomerPatch, arg_name="changes")
@bp.output(CustomerOut)
@bp.doc(
    summary="Change a customer's name, e-mail or phone (null clears the phone)",
    responses={403: "Missing scope", 404: "No such customer", 409: "E-mail already used"},
)
def update_customer(customer_id: int, changes):
    return service.update_customer(get_session(), _customer_or_404(customer_id), changes)
