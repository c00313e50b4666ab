"""One transaction per writing request, and Idempotency-Key replay for creations.

Views and services only add to the session; these decorators commit once
the response is known to be a success, so a ticket, its new customer, its
audit event and its idempotency record are stored together or not at all.
"""

import hashlib
import json
from functools import wraps

from flask import Response, make_response, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError

from .db import get_session
from .models import IdempotencyRecord
from .problems import problem

REPLAY_HEADER = "Idempotent-Replayed"


def _commit_or_problem(session) -> Response | None:
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        return problem(409, "The change conflicts with another change made at the same time; retry the request.")
    except OperationalError:
        # e.g. SQLite's write lock not granted in time; nothing was stored.
        session.rollback()
        return problem(503, "The database is busy; nothing was changed, retry the request.", {"Retry-After": "1"})
    return None


def _run_view(session, view, args, kwargs) -> Response:
    """The view's response; on an exception or an error response nothing it
    added to the session is kept."""
    try:
        response = make_response(view(*args, **kwargs))
    except BaseException:
        session.rollback()
        raise
    if response.status_code >= 400:
        session.rollback()
    return response


def transactional(view):
    """Commit the request's changes if the view succeeds, roll back otherwise."""

    @wraps(view)
    def run(*args, **kwargs):
        session = get_session()
        response = _run_view(session, view, args, kwargs)
        if response.status_code >= 400:
            return response
        return _commit_or_problem(session) or response

    return run


def request_fingerprint() -> str:
    body = request.get_data()
    try:
        # Same JSON with keys in another order or other spacing is the same request.
        body = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, UnicodeDecodeError):
        pass
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _find_record(session, api_key_id: int, key: str) -> IdempotencyRecord | None:
    return session.scalars(
        select(IdempotencyRecord).where(IdempotencyRecord.api_key_id == api_key_id, IdempotencyRecord.key == key)
    ).one_or_none()


def _replay(record: IdempotencyRecord, fingerprint: str) -> Response:
    if record.request_fingerprint != fingerprint:
        return problem(
            422,
            "This Idempotency-Key was already used with a different request; use a new key for a new request.",
            errors=[{"in": "headers", "field": "Idempotency-Key", "message": "Already used with a different request."}],
        )
    response = Response(record.response_body, status=record.response_status, mimetype="application/json")
    if record.response_location:
        response.headers["Location"] = record.response_location
    response.headers[REPLAY_HEADER] = "true"
    return response


def idempotent(view):
    """Like ``transactional``, and replay the first success for a repeated Idempotency-Key.

    Place it directly under ``@bp.input(IdempotencyHeaders, location="headers",
    arg_name="idempotency")``. Keys are scoped to the API key that sent them.
    Only successes are stored: a failed request changed nothing, so retrying
    it with the same key simply tries again.
    """

    @wraps(view)
    def run(*args, idempotency: dict, **kwargs):
        from .auth import auth

        key = idempotency.get("idempotency_key")
        api_key = auth.current_user
        if key is None or api_key is None:
            return transactional(view)(*args, **kwargs)
        session = get_session()
        fingerprint = request_fingerprint()
        record = _find_record(session, api_key.id, key)
        if record is not None:
            return _replay(record, fingerprint)
        response = _run_view(session, view, args, kwargs)
        if response.status_code >= 400:
            return response
        session.add(
            IdempotencyRecord(
                api_key_id=api_key.id,
                key=key,
                request_fingerprint=fingerprint,
                response_status=response.status_code,
                response_body=response.get_data(as_text=True),
                response_location=response.headers.get("Location"),
            )
        )
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            # A concurrent request with the same key won the race: answer
            # with its response, never a second creation.
            record = _find_record(session, api_key.id, key)
            if record is not None:
                return _replay(record, fingerprint)
            return problem(409, "The change conflicts with another change made at the same time; retry the request.")
        except OperationalError:
            session.rollback()
            return problem(503, "The database is busy; nothing was changed, retry the request.", {"Retry-After": "1"})
        return response

    return run
