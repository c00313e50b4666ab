"""Logs carry ids, not customers' e-mail addresses: gunicorn's access log
redacts them from query strings, whatever starts the CRM."""

import logging
from datetime import timedelta
from types import SimpleNamespace

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger

from crm_backend import create_app
from crm_backend.log_redaction import AccessLogRedactor, redact_query, redact_url


@pytest.fixture
def access_log(tmp_path, database_url):
    """gunicorn's own access logger writing to a file, in a process where the CRM app was created."""
    path = tmp_path / "access.log"
    config = Config()
    config.set("accesslog", str(path))
    logger = Logger(config)
    create_app({"TESTING": True, "DATABASE_URL": database_url})
    yield logger, path
    for handler in logging.getLogger("gunicorn.access").handlers:
        handler.close()


def log_request(logger, raw_uri: str, referer: str = "-") -> None:
    path, _, query = raw_uri.partition("?")
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": raw_uri,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_REFERER": referer,
    }
    response = SimpleNamespace(status="200 OK", sent=12, headers=[])
    request = SimpleNamespace(headers=[("REFERER", referer)])
    logger.access(response, request, environ, timedelta(milliseconds=3))


def test_the_access_log_shows_no_customer_email_from_a_query_string(access_log):
    logger, path = access_log

    log_request(logger, "/api/v1/tickets?customer_email=ada%40example.com&status=open&limit=5")
    log_request(logger, "/api/v1/customers?email=grace@example.com")
    log_request(logger, "/api/v1/feedback?limit=1", referer="http://localhost:8000/console?q=ada@example.com")

    written = path.read_text()
    assert "ada" not in written and "grace" not in written and "example.com" not in written
    assert "GET /api/v1/tickets?customer_email=[redacted]&status=open&limit=5 HTTP/1.1" in written
    assert "/api/v1/customers?email=[redacted]" in written
    assert '"http://localhost:8000/console?q=[redacted]"' in written


def test_the_rest_of_the_line_is_kept():
    assert redact_query("status=open&limit=5&cursor=YWZ0ZXI6Mw") == "status=open&limit=5&cursor=YWZ0ZXI6Mw"
    assert redact_query("note=x%40y.z&flag") == "note=[redacted]&flag"
    assert redact_url("GET /api/v1/tickets/TCK-000001 HTTP/1.1") == "GET /api/v1/tickets/TCK-000001 HTTP/1.1"
    assert redact_url("GET /api/v1/handoffs?agent=sam%40example.com HTTP/1.1") == "GET /api/v1/handoffs?agent=[redacted] HTTP/1.1"


def test_the_filter_is_installed_once_however_many_apps_are_created(database_url):
    for _ in range(3):
        create_app({"TESTING": True, "DATABASE_URL": database_url})

    filters = [f for f in logging.getLogger("gunicorn.access").filters if isinstance(f, AccessLogRedactor)]
    assert len(filters) == 1
