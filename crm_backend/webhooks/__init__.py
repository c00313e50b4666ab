"""Outbound webhooks (DESIGN "Webhooks"): endpoints, the transactional outbox,
the delivery worker; and the inbound side (crm_backend/inbound).

Settings (environment, or the app's config in tests):

| variable | default | meaning |
| --- | --- | --- |
| WEBHOOK_ALLOW_PRIVATE | 0 | 1 allows private/loopback/link-local targets: local testing only, logged as a warning at start |
| WEBHOOK_TIMEOUT | 10 | seconds an attempt may take, answer included |
| WEBHOOK_RETRY_HOURS | 24 | retry failed deliveries this long after the first attempt |
| WEBHOOK_FIRST_RETRY_SECONDS | 30 | first backoff step (doubles up to the cap) |
| WEBHOOK_MAX_RETRY_SECONDS | 14400 | backoff cap |
| WEBHOOK_FAILING_AFTER | 5 | failed attempts in a row that mark an endpoint failing |
| WEBHOOK_RETENTION_DAYS | 30 | finished deliveries are pruned after this |
| WEBHOOK_SECRETS_KEY / _FILE | key file beside the database | see secrets.py |
"""

import os

import click
from flask import Flask

PRIVATE_TARGETS_WARNING = (
    "WEBHOOK_ALLOW_PRIVATE is on: webhooks may target private, loopback and link-local "
    "addresses (the SSRF guard is off); for local testing only"
)

ENV_DEFAULTS = {
    "WEBHOOK_TIMEOUT": "10",
    "WEBHOOK_RETRY_HOURS": "24",
    "WEBHOOK_FIRST_RETRY_SECONDS": "30",
    "WEBHOOK_MAX_RETRY_SECONDS": str(4 * 3600),
    "WEBHOOK_FAILING_AFTER": "5",
    "WEBHOOK_RETENTION_DAYS": "30",
}


def init_app(app: Flask) -> None:
    from ..inbound import init_app as init_inbound
    from . import commands, secrets
    from .views import bp

    app.config.setdefault("WEBHOOK_ALLOW_PRIVATE", os.environ.get("WEBHOOK_ALLOW_PRIVATE", "0") == "1")
    if app.config["WEBHOOK_ALLOW_PRIVATE"] and click.get_current_context(silent=True) is None:
        # The API's processes (gunicorn) say it once as they start; `crm`
        # commands stay quiet, and the delivery worker says it when it starts.
        app.logger.warning(PRIVATE_TARGETS_WARNING)
    for name, default in ENV_DEFAULTS.items():
        app.config.setdefault(name, float(os.environ.get(name, default)))
    secrets.init_app(app)
    app.register_blueprint(bp)
    app.cli.add_command(commands.webhooks_group)
    init_inbound(app)
