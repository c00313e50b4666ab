"""`POST /api/v1/classify`: the need behind a piece of customer text."""

from apiflask import APIBlueprint, Schema
from apiflask.fields import Boolean, Float, List, Nested, String
from apiflask.validators import Length
from flask import current_app

from ..auth import require_scopes
from ..problems import problem
from ..schemas import QuerySchema
from .prediction import ClassifierUnavailable
from .service import classify, explain

bp = APIBlueprint("classifier", __name__, url_prefix="/api/v1", tag="Classification")

MAX_TEXT_LENGTH = 20_000


class ClassifyIn(Schema):
    text = String(
        required=True,
        validate=Length(1, MAX_TEXT_LENGTH),
        metadata={"description": "Customer text, e.g. a ticket's subject and description.", "example": "where is my parcel??"},
    )


class ClassifyQuery(QuerySchema):
    explain = Boolean(load_default=False, metadata={"description": "Also return the words that drove the prediction."})


class LabelScore(Schema):
    label = String(required=True)
    confidence = Float(required=True, metadata={"description": "Calibrated probability, 0..1."})


class TermWeight(Schema):
    term = String(required=True)
    weight = Float(required=True, metadata={"description": "Contribution to the top label's score."})


class ClassifyOut(Schema):
    label = String(required=True, metadata={"description": 'The need, or "other" below the confidence threshold.'})
    confidence = Float(required=True)
    top = List(Nested(LabelScore), required=True, metadata={"description": "Best labels first, up to 3."})
    terms = List(Nested(TermWeight), metadata={"description": "Only with ?explain=true."})


@bp.post("/classify")
@require_scopes("tickets:read")
@bp.input(ClassifyQuery, location="query", arg_name="query")
@bp.input(ClassifyIn, arg_name="body")
@bp.output(ClassifyOut)
@bp.doc(
    summary="Classify the need behind a customer's text",
    responses={403: "Missing scope", 503: "No need model is loaded"},
)
def classify_text(query, body):
    try:
        prediction = classify(body["text"])
        terms = explain(body["text"]) if query["explain"] else None
    except ClassifierUnavailable as error:
        current_app.logger.warning("classify: %s", error)
        return problem(503, "The need classifier has no model loaded yet; train one with `crm classifier train`.")
    result = {
        "label": prediction.label,
        "confidence": prediction.confidence,
        "top": [{"label": label, "confidence": confidence} for label, confidence in prediction.top],
    }
    if terms is not None:
        result["terms"] = [{"term": term, "weight": weight} for term, weight in terms]
    return result
