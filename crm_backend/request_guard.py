"""Malformed input stops at the door: a 4xx problem before any view runs.

One check for every route (the API, the inbound webhooks, the console's JSON
endpoints and forms), so that no view has to remember it:

- a JSON body must be an object at the top level (no endpoint takes
  anything else: 422), nested at most ``MAX_JSON_DEPTH`` levels
  (Python's parser raises RecursionError, a 500, on thousands of ``[``),
  with no lone UTF-16 surrogate (``"\\ud800"`` decodes to a string that
  cannot be written as UTF-8: the database, a log or a webhook would fail
  on it later) and no NUL character (PostgreSQL text cannot hold one);
- query parameters, form fields and path parts must not hold NUL either.

These are 400s; a body that is not JSON at all is left to the view's own
parser, which has always answered it (400, or 422 for inbound events).

A body that passes is parsed again by the view (webargs); bodies are at most
``MAX_CONTENT_LENGTH`` and parsing twice costs far less than the request.
"""

import json
import re

from flask import Flask, request

from .problems import problem

MAX_JSON_DEPTH = 32
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Lone surrogates, and NUL, anywhere in a decoded string.
_FORBIDDEN = re.compile("[\x00\ud800-\udfff]")


class MalformedInput(ValueError):
    """Input no endpoint accepts; the message says what is wrong, for the client."""


class NotJSON(MalformedInput):
    """Not JSON at all: the view's own parser answers it (400, or 422 for inbound events), as ever."""


class NotAnObject(MalformedInput):
    """Valid JSON, but not an object: 422, like any body of the wrong shape."""


def is_json_request() -> bool:
    mimetype = request.mimetype
    return mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))


def _describe(text: str) -> str:
    return "a NUL character" if "\x00" in text else "a lone UTF-16 surrogate (not valid Unicode)"


def check_json_value(document, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Raise MalformedInput if ``document`` (parsed JSON) is too deep or holds a forbidden character."""
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if _FORBIDDEN.search(value):
                raise MalformedInput(f"A string in the body holds {_describe(value)}.")
        elif isinstance(value, (dict, list)):
            if depth > max_depth:
                raise MalformedInput(f"The body is nested more than {max_depth} levels deep.")
            if isinstance(value, dict):
                for key, item in value.items():
                    if _FORBIDDEN.search(key):
                        raise MalformedInput(f"A key in the body holds {_describe(key)}.")
                    stack.append((item, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in value)


def parse_json_object(body: bytes, max_depth: int = MAX_JSON_DEPTH, **loads_options) -> dict:
    """The body as a JSON object, or MalformedInput saying why not."""
    try:
        document = json.loads(body, **loads_options)
    except RecursionError:
        raise MalformedInput(f"The body is nested more than {max_depth} levels deep.") from None
    except ValueError as error:  # UnicodeDecodeError and JSONDecodeError included
        raise NotJSON(f"The body is not valid JSON: {_short(error)}.") from None
    if not isinstance(document, dict):
        raise NotAnObject(f"The body must be a JSON object, not {_json_kind(document)}.")
    check_json_value(document, max_depth)
    return document


def _short(error: ValueError) -> str:
    # JSONDecodeError's message says where; a UnicodeDecodeError's would quote bytes.
    if isinstance(error, UnicodeDecodeError):
        return "it is not UTF-8"
    return str(error).split(":")[0]


def _json_kind(document) -> str:
    if isinstance(document, list):
        return "an array"
    if isinstance(document, str):
        return "a string"
    if document is None:
        return "null"
    if isinstance(document, bool):
        return "a boolean"
    return "a number"


def _nul_in(location: str, items) -> str | None:
    for key, value in items:
        for text in (key, value):
            if isinstance(text, str) and "\x00" in text:
                return f"The {location} holds a NUL character."
    return None


def check_request():
    """before_request: refuse malformed input with a 400 problem (None lets the request through)."""
    reason = _nul_in("URL", (request.view_args or {}).items()) or _nul_in("query string", request.args.items(multi=True))
    if reason is None and request.method in BODY_METHODS:
        if request.mimetype == "application/x-www-form-urlencoded":
            reason = _nul_in("form", request.form.items(multi=True))
        elif is_json_request():
            body = request.get_data(cache=True)
            if body.strip():
                try:
                    parse_json_object(body)
                except NotJSON:
                    return None
                except NotAnObject as error:
                    return problem(422, str(error), errors=[{"in": "json", "field": "", "message": "Expected an object."}])
                except MalformedInput as error:
                    reason = str(error)
    if reason is None:
        return None
    return problem(400, reason)


def init_app(app: Flask) -> None:
    app.before_request(check_request)
