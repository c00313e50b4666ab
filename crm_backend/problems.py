"""RFC 9457 problem details for every error the API returns."""

import json
from http import HTTPStatus

from apiflask import APIFlask, HTTPError, Schema
from apiflask.fields import Integer, List, Nested, String
from flask import Response
from marshmallow import INCLUDE
from werkzeug.exceptions import HTTPException, InternalServerError

PROBLEM_MIMETYPE = "application/problem+json"
# Problems a client may want to tell apart get a type of their own (RFC 9457
# "type"); the rest are "about:blank", named by their status alone.
PROBLEM_TYPE_BASE = "https://northwind.example/problems/"


def problem_type(name: str) -> str:
    """The URI of one kind of problem, e.g. problem_type("daily-limit")."""
    return PROBLEM_TYPE_BASE + name

# Werkzeug's wording mentions servers and browsers; say what the client can do.
DEFAULT_DETAILS = {
    400: "The request could not be understood.",
    401: "A valid API key is required: send `Authorization: Bearer <key>`.",
    403: "This API key is not allowed to do this.",
    404: "The requested resource does not exist.",
    405: "This method is not allowed on this resource.",
    409: "The request conflicts with the current state of the resource.",
    413: "The request body is too large.",
    422: "The request has invalid fields.",
    429: "Too many requests; wait as long as the Retry-After header says.",
    500: "An unexpected error happened; it has been logged.",
    503: "The service is not ready.",
}


class Problem(Schema):
    class Meta:
        # RFC 9457 extension members (errors, checks, allowed_statuses, ...).
        unknown = INCLUDE

    type = String(required=True, metadata={"example": "about:blank"})
    title = String(required=True)
    status = Integer(required=True)
    detail = String(required=True)


class FieldError(Schema):
    # "in" is a Python keyword, hence data_key.
    in_ = String(data_key="in", required=True, metadata={"description": "query, json, ..."})
    field = String(required=True)
    message = String(required=True)


class ValidationProblem(Problem):
    errors = List(Nested(FieldError), required=True)


def problem(status: int, detail: str | None = None, headers=None, type: str = "about:blank", **extensions) -> Response:
    """A problem+json response; ``extensions`` become extra members."""
    title = HTTPStatus(status).phrase
    body = {
        "type": type,
        "title": title,
        "status": status,
        "detail": detail or DEFAULT_DETAILS.get(status, title),
        **extensions,
    }
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_MIMETYPE)
    for name, value in (headers or {}).items():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


class ApiProblem(Exception):
    """Raised by service functions for errors the client can act on.

    Business rules live outside the views, so they raise this instead of
    building responses; the app turns it into problem+json.
    """

    def __init__(self, status: int, detail: str, headers: dict | None = None, **extensions):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions


def field_problem(field: str, message: str, location: str = "json") -> ApiProblem:
    """A 422 naming one field, shaped like the validation errors."""
    return ApiProblem(
        422, f"Invalid field(s): {field}.", errors=[{"in": location, "field": field, "message": message}]
    )


def _from_api_problem(error: ApiProblem) -> Response:
    return problem(error.status, error.detail, error.headers, **error.extensions)


def field_errors(detail: dict) -> list[dict]:
    """Flatten webargs' ``{location: {field: [messages]}}`` into a list."""
    errors = []

    def walk(location: str, prefix: str, messages) -> None:
        if isinstance(messages, dict):
            for key, value in messages.items():
                walk(location, f"{prefix}.{key}" if prefix else str(key), value)
        else:
            for message in messages if isinstance(messages, list) else [messages]:
                errors.append({"in": location, "field": prefix, "message": str(message)})

    for location, fields in detail.items():
        walk(location, "", fields)
    return errors


def _from_http_error(error: HTTPError) -> Response:
    status = error.status_code
    if status == 422 and isinstance(error.detail, dict) and error.detail:
        errors = field_errors(error.detail)
        names = ", ".join(dict.fromkeys(e["field"] for e in errors))
        return problem(status, f"Invalid field(s): {names}.", error.headers, errors=errors)
    if isinstance(error.detail, str) and error.detail:
        detail = error.detail
    elif error.message and error.message != HTTPStatus(status).phrase:
        detail = error.message
    else:
        detail = None
    return problem(status, detail, error.headers, **(error.extra_data or {}))


def _from_werkzeug(error: HTTPException) -> Response:
    status = error.code or 500
    headers = dict(error.get_headers())
    if isinstance(error, InternalServerError):
        # Flask has already logged the traceback; the client gets none of it.
        return problem(500, headers=headers)
    data = getattr(error, "data", None) or {}
    if status == 400 and "json" in data.get("messages", {}):
        return problem(400, "The request body is not valid JSON.", headers)
    return problem(status, headers=headers)


# Answers any operation of the API may give, whatever it does: malformed
# input (crm_backend/request_guard.py) and the rate limit (rate_limits.py).
COMMON_PROBLEMS = {
    "400": "Malformed request: not JSON, a NUL character or lone surrogate, nesting too deep",
    "429": "Too many requests; wait as long as Retry-After says",
}
BODY_PROBLEMS = {"413": "The body is larger than the server takes (MAX_CONTENT_LENGTH)"}


def _document_problem_media_type(spec: dict) -> dict:
    """Error responses in the OpenAPI document carry problem+json, like the real ones,
    and every API operation lists the problems any of them may answer."""
    for path, path_item in spec.get("paths", {}).items():
        for operation in path_item.values():
            if not isinstance(operation, dict):  # path-level "parameters" list
                continue
            if path.startswith("/api/v1/"):
                responses = operation.setdefault("responses", {})
                common = {**COMMON_PROBLEMS, **(BODY_PROBLEMS if "requestBody" in operation else {})}
                for status, description in common.items():
                    responses.setdefault(
                        status,
                        {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
                    )
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if status[0] in "45" and "application/json" in content:
                    content[PROBLEM_MIMETYPE] = content.pop("application/json")
    return spec


def init_app(app: APIFlask) -> None:
    app.config["HTTP_ERROR_SCHEMA"] = Problem
    app.config["VALIDATION_ERROR_SCHEMA"] = ValidationProblem
    app.spec_processor(_document_problem_media_type)
    app.error_processor(_from_http_error)
    # Replaces APIFlask's own werkzeug handler, which loses why a 400
    # happened (webargs' "invalid JSON") and cannot tell a 500 apart.
    app.register_error_handler(HTTPException, _from_werkzeug)
    app.register_error_handler(ApiProblem, _from_api_problem)
