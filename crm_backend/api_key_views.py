"""API-key management over HTTP (scope ``admin``)."""

from apiflask import APIBlueprint, Schema, abort
from apiflask.fields import DateTime, Integer, List, Nested, String
from apiflask.validators import Length, OneOf

from . import api_keys, bot_key
from .auth import require_scopes
from .db import get_session
from .models import ApiKey
from .problems import ApiProblem, problem_type
from .schemas import QuerySchema
from .transactions import transactional

BOT_KEY_REVOCATION = problem_type("bot-key-revocation")

bp = APIBlueprint("api_keys", __name__, url_prefix="/api/v1/api-keys", tag="API keys")


class ApiKeyIn(Schema):
    name = String(required=True, validate=Length(1, 100))
    scopes = List(String(validate=OneOf(sorted(api_keys.KNOWN_SCOPES))), required=True, validate=Length(min=1))


class ApiKeyOut(Schema):
    id = Integer(required=True)
    name = String(required=True)
    prefix = String(required=True, metadata={"description": "The public part: crm_<prefix>_..."})
    scopes = List(String(), required=True)
    created_at = DateTime(required=True)
    last_used_at = DateTime(allow_none=True, required=True)
    revoked_at = DateTime(allow_none=True, required=True)


class NewApiKeyOut(ApiKeyOut):
    key = String(required=True, metadata={"description": "The key itself; shown only in this response."})


class ApiKeyList(Schema):
    items = List(Nested(ApiKeyOut), required=True)


class RevokeQuery(QuerySchema):
    confirm = String(
        validate=OneOf([bot_key.CONFIRMATION]),
        metadata={"description": "`bot-key` to revoke the key the assistant itself uses (CRM_API_KEY)."},
    )


@bp.get("")
@require_scopes("admin")
@bp.output(ApiKeyList)
@bp.doc(summary="All API keys, revoked ones included (never the keys themselves)", responses={403: "Missing scope"})
def list_api_keys():
    return {"items": get_session().query(ApiKey).order_by(ApiKey.id).all()}


# No Idempotency-Key here on purpose: replaying would mean storing the plain
# key, which exists only in this one response.
@bp.post("")
@require_scopes("admin")
@transactional
@bp.input(ApiKeyIn, arg_name="data")
@bp.output(NewApiKeyOut, status_code=201)
@bp.doc(summary="Create an API key; the response is the only time the key is shown", responses={403: "Missing scope"})
def create_api_key(data):
    api_key, plain_key = api_keys.create_api_key(get_session(), data["name"], data["scopes"], commit=False)
    fields = ("id", "name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at")
    return {**{field: getattr(api_key, field) for field in fields}, "key": plain_key}, 201


@bp.delete("/<int:api_key_id>")
@require_scopes("admin")
@transactional
@bp.input(RevokeQuery, location="query", arg_name="query")
@bp.output({}, status_code=204)
@bp.doc(
    summary="Revoke an API key; revoking twice is harmless",
    description="The key stops working at once in the server process that handles this request and within "
    "`CRM_API_KEY_CACHE_SECONDS` (default 5) in the others, which trust a key they verified for that long. "
    "The key the assistant itself uses (CRM_API_KEY) is revoked only with `?confirm=bot-key`: without it the "
    "answer is 409 (type `.../bot-key-revocation`), since the assistant then stops opening tickets and handoffs.",
    responses={403: "Missing scope", 404: "No such key", 409: "The bot's own key, without ?confirm=bot-key"},
)
def revoke_api_key(api_key_id: int, query):
    api_key = get_session().get(ApiKey, api_key_id)
    if api_key is None:
        abort(404, detail=f"There is no API key with id {api_key_id}.")
    if api_key.revoked_at is not None:
        return ""
    note = None
    if bot_key.is_bot_key(api_key):
        if query.get("confirm") != bot_key.CONFIRMATION:
            raise ApiProblem(
                409,
                f"API key {api_key.id} is the key the assistant uses to reach the CRM (CRM_API_KEY): revoked, the "
                "assistant can no longer open tickets or hand conversations to a person, and /readyz says so. "
                f"To revoke it anyway, repeat the request with ?confirm={bot_key.CONFIRMATION}.",
                type=BOT_KEY_REVOCATION,
            )
        note = {"bot_key": True, "confirmed": bot_key.CONFIRMATION}
    api_keys.revoke(get_session(), api_key, commit=False, note=note)
    return ""
