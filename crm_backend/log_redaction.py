"""Logs carry ids, never customers' e-mail addresses.

The CRM's own log lines name customers and agents by id. The one place an
address still reaches a log is a URL: gunicorn's access log writes every
request line, and ``GET /api/v1/tickets?customer_email=ada@example.com`` is
how the bot asks. A filter on gunicorn's ``gunicorn.access`` logger, set up
by the app itself (so every way of starting gunicorn gets it, without a
config file), rewrites the query string in the request line, the query and
the referrer: the values of parameters that name a person (``email``,
``customer_email``, ``q``, ...) and any value holding an ``@`` become
``[redacted]``; parameter names, paths and everything else stay.
"""

import logging
import re
from urllib.parse import unquote_plus

from flask import Flask

REDACTED = "[redacted]"
# Parameters whose values name or describe a person, whatever they hold.
PERSONAL_PARAMETERS = frozenset(
    {"email", "customer_email", "agent_email", "agent", "assignee", "q", "name", "customer_name", "phone"}
)
ACCESS_LOGGER = "gunicorn.access"
_QUERY = re.compile(r"\?([^\s#]*)")
# Atoms (gunicorn.glogging.Logger.atoms) that can hold a URL with its query.
_URL_ATOMS = ("r", "q", "f", "{raw_uri}e", "{query_string}e", "{referer}i", "{http_referer}e")


def _redact_pair(pair: str) -> str:
    name, separator, value = pair.partition("=")
    if not separator:
        return pair
    if unquote_plus(name).lower() in PERSONAL_PARAMETERS or "@" in unquote_plus(value):
        return f"{name}={REDACTED}"
    return pair


def redact_query(query: str) -> str:
    """``a=1&customer_email=ada%40example.com`` -> ``a=1&customer_email=[redacted]``."""
    return "&".join(_redact_pair(pair) for pair in query.split("&"))


def redact_url(text: str) -> str:
    """Redact the query string of every URL in ``text`` (a request line, a referrer)."""
    return _QUERY.sub(lambda match: "?" + redact_query(match.group(1)), text)


class AccessLogRedactor(logging.Filter):
    """Rewrites gunicorn's access-log atoms in place; never drops a line."""

    def filter(self, record: logging.LogRecord) -> bool:
        atoms = record.args
        if not hasattr(atoms, "keys"):
            return True
        for name in _URL_ATOMS:
            if name in atoms and isinstance(atoms[name], str):
                value = atoms[name]
                atoms[name] = redact_query(value) if name in ("q", "{query_string}e") else redact_url(value)
        return True


def init_app(app: Flask) -> None:
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(existing, AccessLogRedactor) for existing in logger.filters):
        logger.addFilter(AccessLogRedactor())
