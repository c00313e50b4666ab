"""Per-client request limits (Flask-Limiter); a breach is a 429 problem with Retry-After.

Clients are counted by the id of their API key once it is verified (a
wrong key never spends another key's budget), and requests without a valid
key by address, apart from every key.
The limit, the switch and the storage are settings (crm_backend/settings.py:
``CRM_RATE_LIMIT``, ``CRM_RATE_LIMIT_ENABLED``, ``RATELIMIT_STORAGE_URI``,
under Flask-Limiter's ``RATELIMIT_*`` keys).
Counters live in ``RATELIMIT_STORAGE_URI``: ``memory://`` (the default) counts
per worker process, so N gunicorn workers allow up to N times the limit;
``redis://host:port/db`` gives every worker and machine one shared count (the
scaled profile). When Redis does not answer, each worker counts in memory
until it does again: a Redis outage never turns API calls into errors.
"""

from flask import Flask, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from sqlalchemy.exc import SQLAlchemyError

from .auth import request_api_key
from .db import get_session

# A Redis that stops answering must not hold a request for long; after a
# failure Flask-Limiter tries it again after 1, 2, 4, ... seconds.
SHARED_STORAGE_OPTIONS = {"socket_timeout": 0.25, "socket_connect_timeout": 0.25, "key_prefix": "crm-limits"}


def client_identity() -> str:
    try:
        verified = request_api_key()
    except SQLAlchemyError:
        # The view's own check of the key answers for the database.
        get_session().rollback()
        verified = None
    if verified is not None:
        return f"key:{verified.id}"
    return f"addr:{get_remote_address()}"


def _exempt() -> bool:
    # Probes, docs and the OpenAPI document are cheap and must stay reachable.
    return not request.path.startswith("/api/v1/") or request.path == "/api/v1/openapi.json"


def init_app(app: Flask) -> None:
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    if not app.config["RATELIMIT_STORAGE_URI"].startswith("memory://"):
        app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", dict(SHARED_STORAGE_OPTIONS))
        app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
        app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    limiter = Limiter(client_identity, default_limits_exempt_when=_exempt)
    limiter.init_app(app)
    app.extensions["crm_limiter"] = limiter
