"""The audit log over HTTP (scope ``admin``)."""

from apiflask import APIBlueprint, Schema
from apiflask.fields import DateTime, Dict, Integer, List, Nested, String
from apiflask.validators import Length, Range

from . import audit
from .auth import require_scopes
from .db import MAX_ID, get_session
from .schemas import Cursor, QuerySchema, cursor_field

bp = APIBlueprint("audit", __name__, url_prefix="/api/v1/audit-events", tag="Audit")


class AuditQuery(QuerySchema):
    entity_type = String(validate=Length(1, 32), metadata={"description": "ticket, customer, comment, agent or api_key"})
    entity_id = Integer(validate=Range(1, MAX_ID))
    action = String(validate=Length(1, 64), metadata={"example": "ticket.updated"})
    limit = Integer(load_default=50, validate=Range(1, 200))
    cursor = cursor_field()


class AuditEventOut(Schema):
    id = Integer(required=True)
    occurred_at = DateTime(required=True)
    actor_type = String(required=True, metadata={"description": "api_key, agent or cli"})
    actor_id = Integer(allow_none=True, required=True)
    actor_name = String(required=True)
    action = String(required=True)
    entity_type = String(required=True)
    entity_id = Integer(required=True)
    before = Dict(allow_none=True, required=True, metadata={"description": "Changed fields before; null on creation."})
    after = Dict(allow_none=True, required=True, metadata={"description": "Changed fields after."})


class AuditPage(Schema):
    items = List(Nested(AuditEventOut), required=True)
    next_cursor = Cursor(allow_none=True, metadata={"type": "string"})


@bp.get("")
@require_scopes("admin")
@bp.input(AuditQuery, location="query", arg_name="query")
@bp.output(AuditPage)
@bp.doc(summary="Who changed what and when, newest first", responses={403: "Missing scope"})
def list_audit_events(query):
    events, before_id = audit.find_events(
        get_session(),
        entity_type=query.get("entity_type"),
        entity_id=query.get("entity_id"),
        action=query.get("action"),
        limit=query["limit"],
        before_id=query.get("cursor"),
    )
    return {"items": events, "next_cursor": before_id}
