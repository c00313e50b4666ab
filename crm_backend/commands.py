"""`crm ...` commands, registered on the app so they run in its context.

Failures are one sentence and exit code 1 (click.ClickException), never a
traceback.
"""

import os
import tempfile
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from . import api_keys, migrate, seed
from .db import get_engine, get_session
from .models import InsightModel


def _database_label() -> str:
    return get_engine().url.render_as_string(hide_password=True)


def require_current_schema() -> None:
    try:
        with get_engine().connect() as connection:
            current = migrate.current_revisions(connection)
    except SQLAlchemyError as error:
        raise click.ClickException(f"cannot reach the database at {_database_label()}: {error.__class__.__name__}") from error
    if not current:
        raise click.ClickException("database is not initialised; run `crm init-db`")
    if current != migrate.head_revisions():
        raise click.ClickException("database schema is out of date; run `crm init-db`")


def _parse_scopes(values: tuple[str, ...]) -> list[str]:
    scopes = [scope.strip() for value in values for scope in value.split(",") if scope.strip()]
    if not scopes:
        raise click.ClickException(
            f"give at least one scope with --scopes (known: {', '.join(sorted(api_keys.KNOWN_SCOPES))})"
        )
    try:
        return api_keys.validate_scopes(scopes)
    except api_keys.UnknownScopeError as error:
        raise click.ClickException(str(error)) from error


scopes_option = click.option(
    "--scopes",
    "scopes",
    multiple=True,
    metavar="SCOPE[,SCOPE...]",
    help="Scope to grant; repeat the option or separate with commas.",
)


@click.command("init-db")
@with_appcontext
def init_db() -> None:
    """Create or upgrade the database schema (safe to run again)."""
    try:
        migrate.upgrade_to_head(get_engine())
    except SQLAlchemyError as error:
        raise click.ClickException(f"cannot migrate the database at {_database_label()}: {error.__class__.__name__}") from error
    heads = ", ".join(sorted(migrate.head_revisions()))
    click.echo(f"Database {_database_label()} is at the latest schema (revision {heads}).")


@click.command("seed-demo")
@with_appcontext
@click.option(
    "--history/--no-history",
    default=True,
    envvar="SEED_DEMO_HISTORY",
    show_default=True,
    help="Also add two years of generated customers, orders, tickets, chats and scores (docs/demo-data.md).",
)
def seed_demo(history: bool) -> None:
    """Add the demo shop's customers, tickets, agents and history that are missing (safe to run again)."""
    require_current_schema()
    added, kept = seed.seed_customers(get_session())
    click.echo(f"Demo customers: {added} added, {kept} already present.")
    tickets_added, tickets_kept = seed.seed_tickets(get_session())
    click.echo(f"Demo tickets: {tickets_added} added, {tickets_kept} already present.")
    orders_added, orders_kept = seed.seed_orders(get_session())
    click.echo(f"Demo orders: {orders_added} added, {orders_kept} already present.")
    agent_state = "added" if seed.seed_agent(get_session()) else "already present"
    click.echo(f"Demo agent {seed.DEMO_AGENT_EMAIL} (password {seed.DEMO_AGENT_PASSWORD}): {agent_state}.")
    history_added: dict[str, int] = {}
    if history:
        from .demo.history import seed_history

        history_added = seed_history(get_session())
        click.echo(_history_line(history_added))
    # Training and refreshing every customer costs seconds; `make run` seeds
    # at every start, so only when the data just changed or nothing was
    # ever computed. The nightly `crm insights recompute` does the rest.
    has_models = get_session().scalar(select(InsightModel.id).limit(1)) is not None
    if added or tickets_added or orders_added or history_added or not has_models:
        from .insights import nightly

        result = nightly.run_exclusive(current_app._get_current_object())
        if result.status == "held":
            click.echo(f"Customer insights: not refreshed now, {nightly.summary(result)}.")
        else:
            click.echo(_insights_line(result.metrics))
    else:
        click.echo("Customer insights: already computed (`crm insights recompute` refreshes them).")


def _history_line(added: dict[str, int]) -> str:
    if not added:
        return "Demo history: already present."
    return (
        f"Demo history: {added['customers']:,} customers, {added['orders']:,} orders, {added['tickets']:,} tickets, "
        f"{added['conversations']:,} conversations, {added['handoffs']:,} handoffs, {added['feedback']:,} scores "
        f"and {added['agents']} agents added."
    )


def _insights_line(figures: dict) -> str:
    line = f"Customer insights: {figures.get('customers', 0):,} customers refreshed"
    if figures.get("auc") is not None:
        line += f" (churn model ROC AUC {figures['auc']:.2f})"
    problems = figures.get("problems") or []
    return line + (f"; not fitted: {'; '.join(problems)}" if problems else "") + "."


@click.command("create-agent")
@with_appcontext
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True, help="At least 10 characters.")
@click.option("--name", default=None, help="Display name (default: the e-mail's local part).")
@click.option("--admin", "is_admin", is_flag=True, help="Let the agent manage agents and API keys.")
def create_agent(email: str, password: str, name: str | None, is_admin: bool) -> None:
    """Create a support agent who can log in to the console."""
    from email_validator import EmailNotValidError, validate_email

    from .agents import service as agents
    from .problems import ApiProblem

    try:
        email = validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise click.ClickException(f"{email!r} is not an e-mail address: {error}") from error
    require_current_schema()
    session = get_session()
    try:
        agent = agents.create_agent(session, email=email, password=password, name=name, is_admin=is_admin)
    except ApiProblem as error:
        raise click.ClickException(error.detail) from error
    session.commit()
    role = "admin agent" if agent.is_admin else "agent"
    click.echo(f"Created {role} {agent.email} (id {agent.id}).")


@click.command("create-api-key")
@with_appcontext
@click.argument("name")
@scopes_option
def create_api_key(name: str, scopes: tuple[str, ...]) -> None:
    """Create an API key; the key is printed once, alone on the last line."""
    granted = _parse_scopes(scopes)
    require_current_schema()
    _, plain_key = api_keys.create_api_key(get_session(), name, granted)
    click.echo(f"Created API key {name!r} with scopes {' '.join(granted)}. It is shown only now:")
    click.echo(plain_key)


@click.command("ensure-api-key")
@with_appcontext
@click.argument("name")
@click.option("--file", "key_file", required=True, type=click.Path(dir_okay=False, path_type=Path))
@scopes_option
def ensure_api_key(name: str, key_file: Path, scopes: tuple[str, ...]) -> None:
    """Keep the key in FILE if it works here, else create one and write it there."""
    granted = _parse_scopes(scopes)
    require_current_schema()
    session = get_session()
    existing = None
    if key_file.is_file():
        existing = api_keys.find_active_key(session, key_file.read_text(encoding="utf-8").strip())
    if existing is not None and all(api_keys.grants(existing.scopes, scope) for scope in granted):
        click.echo(f"API key in {key_file} is valid; kept it.")
        return
    if existing is not None:
        # It lacks a scope that is now wanted; replace it rather than widen it.
        api_keys.revoke(session, existing)
    api_key, plain_key = api_keys.create_api_key(session, name, granted)
    _write_secret(key_file, plain_key)
    click.echo(f"Created API key {name!r} (prefix {api_key.prefix}) and wrote it to {key_file}.")


def _write_secret(path: Path, secret: str) -> None:
    """Write ``secret`` readable by the owner only, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as tmp:
            tmp.write(secret + "\n")
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise

