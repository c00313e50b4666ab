"""The action server: rasa-sdk's app, answering only whoever holds ``ACTIONS_TOKEN``.

Run as ``python -m actions.server --port PORT`` (what ``rasa run actions``
did, plus a token and an interface). rasa-sdk 3.6 has no authentication of
its own, and a forged call to ``/webhook`` runs the bot's CRM calls (with the
bot's API key) for any tracker the caller makes up, so every path but
``/health`` wants ``Authorization: Bearer <ACTIONS_TOKEN>``, which Rasa sends
from ``endpoints.yml`` (``action_endpoint.headers``). It listens on
``BIND_HOST`` (127.0.0.1 unless set), like the other services.

Settings (environment): ``ACTIONS_TOKEN`` (required; ``ACTIONS_ALLOW_NO_TOKEN=1``
runs without one, for local experiments only), ``ACTIONS_PORT`` (5055),
``BIND_HOST`` (127.0.0.1), and rasa-sdk's and Sanic's own:
``ACTION_SERVER_SANIC_WORKERS``, ``LOG_LEVEL_LIBRARIES``,
``SANIC_KEEP_ALIVE_TIMEOUT`` (Sanic reads every ``SANIC_*`` variable).
"""

from __future__ import annotations

import argparse
import hmac
import logging
import sys
from typing import TYPE_CHECKING, Optional, Sequence

from actions import settings

if TYPE_CHECKING:
    from sanic import Sanic

# rasa-sdk's app (and Sanic-CORS, which warns as it is imported) is imported
# where it is used, so that a missing token is one line on the terminal.

logger = logging.getLogger(__name__)

ACTIONS_PACKAGE = "actions"
# Paths anyone may call: health checks (wait_ready.py, k8s probes, nginx).
OPEN_PATHS = frozenset({"/health"})


def token_matches(authorization: str, token: str) -> bool:
    """Whether an ``Authorization`` header is ``Bearer <token>`` (compared in constant time)."""
    scheme, _, supplied = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(supplied.strip().encode("utf-8"), token.encode("utf-8"))


def create_app(token: Optional[str], actions_package: str = ACTIONS_PACKAGE) -> "Sanic":
    """rasa-sdk's app (no CORS origins, no auto-reload) behind ``token``.

    ``token`` None or empty: no check at all (only ``main`` decides that,
    with ``ACTIONS_ALLOW_NO_TOKEN=1``).
    """
    from rasa_sdk.endpoint import create_app as create_sdk_app
    from sanic import response

    from actions import crm_client

    app = create_sdk_app(actions_package, cors_origins=None, auto_reload=False)

    async def require_token(request):
        if not token or request.path in OPEN_PATHS:
            return None
        if token_matches(request.headers.get("Authorization", ""), token):
            return None
        return response.json(
            {"error": "unauthorized", "detail": "Send Authorization: Bearer <ACTIONS_TOKEN>."},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="actions"'},
        )

    async def close_crm_clients(_app, _loop) -> None:
        # The CRM clients' connection pools belong to this server's loop.
        await crm_client.aclose_all()

    app.register_middleware(require_token, "request")
    app.register_listener(close_crm_clients, "after_server_stop")
    return app


def create_argument_parser() -> argparse.ArgumentParser:
    from rasa_sdk import utils

    parser = argparse.ArgumentParser(
        prog="python -m actions.server",
        description="Runs the action server (rasa-sdk) behind ACTIONS_TOKEN on BIND_HOST.",
    )
    parser.add_argument(
        "-p",
        "--port",
        type=int,
        default=settings.from_env().port,
        help="port to listen on (default: ACTIONS_PORT, else 5055)",
    )
    # The same logging options as `rasa run actions` / `python -m rasa_sdk`.
    utils.add_logging_level_option_arguments(parser)
    utils.add_logging_file_arguments(parser)
    return parser


def configure_logging(args: argparse.Namespace) -> None:
    """What rasa-sdk's ``main_from_args`` sets up before it runs the server."""
    from rasa_sdk import utils
    from rasa_sdk.constants import APPLICATION_ROOT_LOGGER_NAME

    logging.getLogger("matplotlib").setLevel(logging.WARN)
    utils.configure_colored_logging(args.loglevel)
    utils.configure_file_logging(
        logging.getLogger(APPLICATION_ROOT_LOGGER_NAME),
        args.log_file,
        args.loglevel,
        args.logging_config_file,
    )
    utils.update_sanic_log_level()


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = create_argument_parser().parse_args(argv)
    config = settings.from_env()
    token = config.token
    if not token and not config.allow_no_token:
        sys.exit(
            "actions.server: ACTIONS_TOKEN is not set, so anyone could call the action server; "
            "set it (Rasa sends it from endpoints.yml) or ACTIONS_ALLOW_NO_TOKEN=1 for a local experiment."
        )
    from rasa_sdk import utils
    from rasa_sdk.plugin import plugin_manager

    configure_logging(args)
    if not token:
        logger.warning("ACTIONS_ALLOW_NO_TOKEN=1: the action server answers anyone who can reach it")
    host = config.bind_host

    app = create_app(token)
    # Listeners, middleware and routes of installed rasa-sdk plugins, as `rasa run actions` attached them.
    plugin_manager().hook.attach_sanic_app_extensions(app=app)
    logger.info("Action endpoint is up and running on http://%s:%s", host, args.port)
    app.run(host, args.port, workers=utils.number_of_sanic_workers())


if __name__ == "__main__":
    main()
