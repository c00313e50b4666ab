from apiflask import APIBlueprint, abort
from sqlalchemy import select

from ..auth import require_scopes
from ..db import get_session
from ..models import Agent
from ..schemas import IdempotencyHeaders
from ..transactions import idempotent, transactional
from . import service, sessions
from .schemas import AgentIn, AgentList, AgentOut, SessionsEnded

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


@bp.delete("/<int:agent_id>/sessions")
@require_scopes("admin")
@transactional
@bp.output(SessionsEnded)
@bp.doc(
    summary="Sign an agent out everywhere: end all their console sessions",
    description="Every browser (and every copy of a session cookie) of the agent is signed out at once; "
    "the agent signs in again with their password. Audited as agent.signed_out_everywhere.",
    responses={403: "Missing scope", 404: "No such agent"},
)
def end_agent_sessions(agent_id: int):
    session = get_session()
    if session.get(Agent, agent_id) is None:
        abort(404, detail=f"There is no agent with id {agent_id}.")
    return {"ended": sessions.end_all(session, agent_id)}
