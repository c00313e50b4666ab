"""`crm handoffs follow`: the process that follows Rasa's conversation events.

One command for both event sources (crm_backend/handoffs/events/): the SQL
event broker's table by default, Rasa's RabbitMQ queue with ``--broker``
(the scaled profile's ``consumer`` process).
"""

from __future__ import annotations

import logging

import click
from flask import current_app
from flask.cli import with_appcontext

from .events import sql


@click.group("handoffs")
def handoffs_cli() -> None:
    """Human handoff: follow handed-off conversations."""


@handoffs_cli.command("follow")
@click.option("--events-url", default=None, help="SQLAlchemy URL of Rasa's SQL event broker database.")
@click.option("--poll-seconds", default=sql.POLL_SECONDS, show_default=True, type=float)
@click.option(
    "--broker",
    "broker_url",
    default=None,
    envvar="RASA_EVENTS_BROKER_URL",
    help="amqp://user:password@host:port/vhost of Rasa's Pika (RabbitMQ) event broker: consume its queue instead of the SQL table.",
)
@click.option("--queue", default="rasa_events", envvar="RASA_EVENTS_QUEUE", show_default=True, help="With --broker: the queue Rasa publishes to.")
@click.option(
    "--exchange", default="rasa-exchange", envvar="RASA_EVENTS_EXCHANGE", show_default=True, help="With --broker: Rasa's fanout exchange."
)
@with_appcontext
def follow(events_url: str | None, poll_seconds: float, broker_url: str | None, queue: str, exchange: str) -> None:
    """Copy customers' messages of handed-off conversations from Rasa's event broker, until stopped."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if broker_url:
        from .events import amqp  # only here: the web app and the SQL follower never load pika

        amqp.consume(broker_url, queue=queue, exchange=exchange)
        return
    sql.follow(events_url or current_app.config["RASA_EVENTS_URL"], poll_seconds=poll_seconds)
