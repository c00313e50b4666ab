"""Bearer API-key authentication and the ``require_scopes`` decorator."""

from functools import wraps

from apiflask import HTTPTokenAuth
from flask import g, request

from . import api_keys
from .db import get_session
from .problems import problem

auth = HTTPTokenAuth(
    scheme="Bearer",
    description="An API key created with `crm create-api-key`, sent as `Authorization: Bearer crm_...`.",
)


def _verified(token: str) -> api_keys.VerifiedKey | None:
    """``token`` checked once per request (the rate limiter asks first, then the view's auth)."""
    checked = g.setdefault("crm_checked_tokens", {})
    if token not in checked:
        checked[token] = api_keys.verify(get_session(), token) if token else None
    return checked[token]


def request_api_key() -> api_keys.VerifiedKey | None:
    """The verified API key of this request's ``Authorization: Bearer`` header, or None."""
    authorization = request.authorization
    if authorization is None or authorization.type != "bearer" or not authorization.token:
        return None
    return _verified(authorization.token)


@auth.verify_token
def _verify_token(token: str) -> api_keys.VerifiedKey | None:
    # auth.current_user is then a VerifiedKey (id, name, prefix, scopes).
    verified = _verified(token)
    if verified is not None:
        # Changes this request makes are audited as the key's; a console
        # agent set earlier stays the actor (crm_backend/audit.py).
        g.setdefault("audit_actor", ("api_key", verified.id, verified.name))
    return verified


@auth.error_handler
def _auth_error(status: int):
    if status == 403:
        missing = " ".join(g.get("missing_scopes", []))
        return problem(
            403,
            f"This API key lacks the scope(s): {missing}.",
            {"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{missing}"'},
        )
    if "Authorization" not in request.headers:
        return problem(401, headers={"WWW-Authenticate": 'Bearer realm="crm"'})
    return problem(
        401,
        "The API key is unknown, malformed or revoked.",
        {"WWW-Authenticate": 'Bearer realm="crm", error="invalid_token"'},
    )


def require_scopes(*scopes: str):
    """Let a view run only for API keys that grant all of ``scopes``.

    Put it right under the route decorator so that authentication comes
    before input validation.
    """
    unknown = set(scopes) - api_keys.KNOWN_SCOPES
    if unknown:
        raise ValueError(f"unknown scope(s) {sorted(unknown)}")

    def decorator(view):
        @wraps(view)
        def check_scopes(*args, **kwargs):
            granted = auth.current_user.scopes
            missing = [scope for scope in scopes if not api_keys.grants(granted, scope)]
            if missing:
                g.missing_scopes = missing
                return auth.auth_error_callback(403)
            return view(*args, **kwargs)

        protected = auth.login_required(check_scopes)
        # APIFlask reads _spec to put the security requirement into OpenAPI.
        protected._spec = {**getattr(view, "_spec", {}), "auth": auth, "roles": list(scopes)}
        return protected

    return decorator
