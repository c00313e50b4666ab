"""`crm webhooks worker`: the delivery process of the Procfile."""

import logging
import os
import signal
import sys
import threading

import click
from flask import current_app
from flask.cli import AppGroup

from ..commands import require_current_schema

webhooks_group = AppGroup("webhooks", help="Outbound webhooks.")


@webhooks_group.command("worker")
@click.option("--concurrency", type=click.IntRange(1, 64), default=4, show_default=True, help="Deliveries sent at the same time.")
@click.option("--poll-interval", type=click.FloatRange(0.01, 60), default=0.25, show_default=True, help="Seconds between looks at the outbox when idle.")
def worker_command(concurrency: int, poll_interval: float) -> None:
    """Deliver outbox events until SIGTERM or SIGINT (safe to run several)."""
    from .worker import Worker

    require_current_schema()
    # Flask's handler on the app's logger prints it; INFO shows each delivery.
    logging.getLogger("crm_backend.webhooks").setLevel(logging.INFO)
    worker = Worker(current_app._get_current_object(), concurrency=concurrency, poll_interval=poll_interval)
    stop = threading.Event()
    handler = worker.stop_signal(stop)
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    private = "allowed" if worker.policy.allow_private else "refused"
    click.echo(f"Webhook worker delivering ({concurrency} at a time; private targets {private}). Stop with Ctrl-C.")
    in_flight = worker.run(stop)
    click.echo("Webhook worker stopped.")
    sys.stdout.flush()
    sys.stderr.flush()
    if in_flight:
        # Sends still in flight would hold the interpreter open; their
        # leases expire and another worker sends them again.
        os._exit(0)
