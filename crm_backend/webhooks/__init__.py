"""Outbound webhooks (docs/webhooks.md): endpoints, the transactional outbox,
the delivery worker; and the inbound side (crm_backend/inbound).

Settings (``WEBHOOK_*``: timeouts, retries, retention, private targets, the
secrets key) are in crm_backend/settings.py. ``create_app`` registers the
blueprint (views.py) and `crm webhooks` (commands.py); ``init_app`` sets up
what they share.
"""

import click
from flask import Flask

from . import secrets
from .ssrf import PRIVATE_TARGETS_WARNING


def init_app(app: Flask) -> None:
    if app.config["WEBHOOK_ALLOW_PRIVATE"] and click.get_current_context(silent=True) is None:
        # The API's processes (gunicorn) say it once as they start; `crm`
        # commands stay quiet, and the delivery worker says it when it starts.
        app.logger.warning(PRIVATE_TARGETS_WARNING)
    secrets.init_app(app)
