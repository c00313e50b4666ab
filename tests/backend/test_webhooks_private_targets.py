"""WEBHOOK_ALLOW_PRIVATE turns the SSRF guard off for local testing: the API
and the delivery worker each say so once when they start (issue 19)."""

import logging
import threading

from crm_backend import create_app
from crm_backend.webhooks.ssrf import PRIVATE_TARGETS_WARNING
from crm_backend.webhooks.worker import Worker


def warnings(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.getMessage() == PRIVATE_TARGETS_WARNING]


def test_the_api_warns_at_start_only_when_private_targets_are_allowed(database_url, caplog):
    with caplog.at_level(logging.WARNING):
        create_app({"TESTING": True, "DATABASE_URL": database_url, "WEBHOOK_ALLOW_PRIVATE": False})
        guarded = warnings(caplog)
        create_app({"TESTING": True, "DATABASE_URL": database_url, "WEBHOOK_ALLOW_PRIVATE": True})

    assert guarded == []
    assert warnings(caplog) == [PRIVATE_TARGETS_WARNING]


def test_the_delivery_worker_warns_once_when_it_starts(app, caplog):
    app.config["WEBHOOK_ALLOW_PRIVATE"] = True
    worker = Worker(app, poll_interval=0.01)
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()

    with caplog.at_level(logging.WARNING):
        worker.run(stop)

    assert warnings(caplog) == [PRIVATE_TARGETS_WARNING]
