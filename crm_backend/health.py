"""Liveness and readiness probes.

Readiness checks live in ``app.extensions["crm_readiness_checks"]``: a dict
of name -> callable returning None when healthy or a sentence saying what is
wrong. Other parts of the app add theirs with ``register_check``.
"""

from collections.abc import Callable

from apiflask import APIBlueprint
from flask import Flask, current_app, request
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from . import migrate
from .db import get_engine
from .problems import problem

bp = APIBlueprint("health", __name__, tag="Health")

Check = Callable[[], str | None]


def register_check(app: Flask, name: str, check: Check) -> None:
    app.extensions.setdefault("crm_readiness_checks", {})[name] = check


def check_database() -> str | None:
    try:
        with get_engine().connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        current_app.logger.warning("readiness: database unavailable: %s", error)
        return "the database does not answer"
    return None


def check_migrations() -> str | None:
    try:
        with get_engine().connect() as connection:
            at_head = migrate.is_at_head(connection)
    except SQLAlchemyError:
        return "the schema version could not be read"
    return None if at_head else "the database schema is not at the latest migration; run `crm init-db`"


def init_app(app: Flask) -> None:
    register_check(app, "database", check_database)
    register_check(app, "migrations", check_migrations)


@bp.get("/healthz")
@bp.doc(summary="Liveness: the process answers (no dependencies checked)")
def healthz():
    return {"status": "ok"}


@bp.get("/readyz")
@bp.doc(
    summary="Readiness: database reachable, schema migrated, need model loaded, the bot's API key accepted",
    responses={200: "Ready", 503: "A check failed"},
)
def readyz():
    # A probe may leave checks out (``?skip=bot_api_key``): Kubernetes' readiness
    # probe does, so a refused bot key is reported to monitoring without taking
    # the console and the API out of service with it.
    skipped = {name.strip() for name in request.args.get("skip", "").split(",") if name.strip()}
    failures: dict[str, str] = {}
    checks: dict[str, str] = {}
    for name, check in current_app.extensions["crm_readiness_checks"].items():
        if name in skipped:
            checks[name] = "skipped"
            continue
        failure = check()
        checks[name] = "ok" if failure is None else "failed"
        if failure is not None:
            failures[name] = failure
    if failures:
        detail = "; ".join(f"{name}: {reason}" for name, reason in failures.items())
        return problem(503, f"Not ready. {detail}.", checks=checks)
    return {"status": "ready", "checks": checks}
