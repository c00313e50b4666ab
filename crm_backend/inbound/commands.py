"""`crm inbound ...`: the systems allowed to send events, and their secrets."""

import click
from flask.cli import AppGroup

from ..models import INBOUND_SOURCE_KINDS

inbound_group = AppGroup("inbound", help="Sources of signed inbound events (POST /api/v1/inbound/NAME).")


def _session_and_box():
    from ..commands import require_current_schema
    from ..db import get_session
    from ..webhooks.secrets import box

    require_current_schema()
    return get_session(), box()


def _source_or_fail(session, name: str):
    from . import sources

    source = sources.find(session, name)
    if source is None:
        raise click.ClickException(f"there is no inbound source {name!r}; see `crm inbound list`")
    return source


@inbound_group.command("add-source")
@click.argument("name")
@click.option("--kind", type=click.Choice(INBOUND_SOURCE_KINDS), default=None, help="What the source is; default: NAME if it is a kind.")
def add_source(name: str, kind: str | None) -> None:
    """Allow NAME to send events; its secret is printed once, alone on the last line."""
    from . import sources

    kind = kind or (name if name in INBOUND_SOURCE_KINDS else None)
    if kind is None:
        raise click.ClickException(f"give --kind ({' or '.join(INBOUND_SOURCE_KINDS)}) for a source named {name!r}")
    session, box = _session_and_box()
    try:
        source, secret = sources.add(session, box, name, kind)
    except sources.SourceError as error:
        raise click.ClickException(str(error)) from error
    session.commit()
    click.echo(f"Added {kind} source {name!r}: it sends to POST /api/v1/inbound/{name}, signed with this secret, shown only now:")
    click.echo(secret)


@inbound_group.command("rotate-secret")
@click.argument("name")
@click.option("--keep-previous-hours", type=click.FloatRange(0, 24 * 7), default=24, show_default=True, help="How long the old secret is still accepted.")
def rotate_secret(name: str, keep_previous_hours: float) -> None:
    """Give NAME a new secret, printed once on the last line."""
    from . import sources

    session, box = _session_and_box()
    source = _source_or_fail(session, name)
    secret = sources.rotate(session, box, source, keep_previous_hours)
    session.commit()
    click.echo(f"New secret for {name!r}; the old one is accepted for {keep_previous_hours:g} more hours:")
    click.echo(secret)


@inbound_group.command("list")
def list_sources() -> None:
    """The sources, their kinds and when they were added."""
    from sqlalchemy import select

    from ..models import InboundSource

    session, _ = _session_and_box()
    rows = session.scalars(select(InboundSource).order_by(InboundSource.name)).all()
    if not rows:
        click.echo("No inbound sources; add one with `crm inbound add-source NAME`.")
    for source in rows:
        click.echo(f"{source.name}\t{source.kind}\tadded {source.created_at:%Y-%m-%d %H:%M} UTC")


@inbound_group.command("remove-source")
@click.argument("name")
def remove_source(name: str) -> None:
    """Stop accepting events from NAME (its orders and receipts stay)."""
    session, _ = _session_and_box()
    session.delete(_source_or_fail(session, name))
    session.commit()
    click.echo(f"Removed inbound source {name!r}.")
