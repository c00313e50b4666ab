"""Bulk imports from CSV: customers (`crm import-customers`, POST
/api/v1/customers/import) and orders (`crm import-orders`). See docs/import.md.

Settings (environment, or the app's config in tests):

| variable | default | meaning |
| --- | --- | --- |
| CRM_IMPORT_MAX_BYTES | 10485760 (10 MiB) | largest body POST /api/v1/customers/import accepts |
| CRM_IMPORT_BATCH_SIZE | 1000 | customers per transaction in that endpoint |
"""

import os

from flask import Flask

DEFAULT_MAX_BYTES = 10 * 1024 * 1024


def init_app(app: Flask) -> None:
    from .commands import import_customers_command, import_orders_command
    from .customers import DEFAULT_BATCH_SIZE
    from .views import bp

    app.config.setdefault("IMPORT_MAX_BYTES", int(os.environ.get("CRM_IMPORT_MAX_BYTES", DEFAULT_MAX_BYTES)))
    app.config.setdefault("IMPORT_BATCH_SIZE", int(os.environ.get("CRM_IMPORT_BATCH_SIZE", DEFAULT_BATCH_SIZE)))
    app.register_blueprint(bp)
    app.cli.add_command(import_customers_command)
    app.cli.add_command(import_orders_command)
