from apiflask import APIBlueprint
from sqlalchemy import select

from ..auth import require_scopes
from ..db import get_session
from ..models import Agent
from ..schemas import IdempotencyHeaders
from ..transactions import idempotent
from . import service
from .schemas import AgentIn, AgentList, AgentOut

bp = APIBlueprint("agents", __name__, url_prefix="/api/v1/agents", tag="Agents")


@bp.get("")
@require_scopes("tickets:read")
@bp.output(AgentList)
@bp.doc(summary="All agents (to pick a ticket's assignee)", responses={403: "Missing scope"})
def list_agents():
    return {"items": get_session().scalars(select(Agent).order_by(Agent.id)).all()}


@bp.post("")
@require_scopes("admin")
@bp.input(IdempotencyHeaders, location="headers", arg_name="idempotency")
@idempotent
@bp.input(AgentIn, arg_name="data")
@bp.output(AgentOut, status_code=201)
@bp.doc(summary="Create an agent account", responses={403: "Missing scope", 409: "E-mail already used"})
def create_agent(data):
    return service.create_agent(get_session(), **data), 201
