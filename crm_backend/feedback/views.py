from apiflask import APIBlueprint, abort
from flask import url_for

from .. import chat_limits
from ..auth import require_scopes
from ..db import get_session
from ..models import Feedback
from ..schemas import IdempotencyHeaders
from ..tickets.service import resolve_customer
from ..transactions import idempotent
from . import service
from .schemas import FeedbackIn, FeedbackOut, FeedbackPage, FeedbackQuery

bp = APIBlueprint("feedback", __name__, url_prefix="/api/v1/feedback", tag="Feedback")


@bp.post("")
@require_scopes("feedback:write")
@bp.input(IdempotencyHeaders, location="headers", arg_name="idempotency")
@idempotent
@bp.input(FeedbackIn, arg_name="data")
@bp.output(FeedbackOut, status_code=201)
@bp.doc(
    summary="Record a satisfaction score (1-5) with an optional comment; the comment is classified",
    description="The customer is optional (anonymous feedback); give customer_id or customer_email, not both. "
    "A conversation (and a handoff) is rated once: a second score is 409 (type `.../already-rated`). "
    "Scores from chat are capped per customer and conversation a day (`CHAT_DAILY_FEEDBACK`): 429 "
    "(type `.../daily-limit`) over it.",
    responses={403: "Missing scope", 409: "This conversation or handoff is already rated", 429: "Today's limit of scores from chat is reached"},
)
def create_feedback(data):
    session = get_session()
    customer_id = data.pop("customer_id", None)
    customer_email = data.pop("customer_email", None)
    customer_name = data.pop("customer_name", None)
    chat_limits.check_daily_cap(
        session,
        "feedback",
        channel=data["channel"],
        customer_id=customer_id,
        customer_email=customer_email,
        conversation_id=data["conversation_id"],
    )
    customer = None
    if customer_id is not None or customer_email is not None:
        customer = resolve_customer(
            session, customer_id=customer_id, customer_email=customer_email, customer_name=customer_name
        )
    feedback = service.record_feedback(session, customer=customer, **data)
    return feedback, 201, {"Location": url_for(".get_feedback", feedback_id=feedback.id)}


@bp.get("")
@require_scopes("feedback:read")
@bp.input(FeedbackQuery, location="query", arg_name="query")
@bp.output(FeedbackPage)
@bp.doc(summary="Find feedback, newest first, a page at a time", responses={403: "Missing scope"})
def list_feedback(query):
    items, before_id = service.find_feedback(
        get_session(),
        conversation_id=query.get("conversation_id"),
        customer_email=query.get("customer_email"),
        max_score=query.get("max_score"),
        limit=query["limit"],
        before_id=query.get("cursor"),
    )
    return {"items": items, "next_cursor": before_id}


@bp.get("/<int:feedback_id>")
@require_scopes("feedback:read")
@bp.output(FeedbackOut)
@bp.doc(summary="One feedback entry", responses={403: "Missing scope", 404: "No such feedback"})
def get_feedback(feedback_id: int):
    feedback = get_session().get(Feedback, feedback_id)
    if feedback is None:
        abort(404, detail=f"There is no feedback {feedback_id}.")
    return feedback
