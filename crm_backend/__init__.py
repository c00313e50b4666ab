"""CRM backend of the Northwind helpdesk assistant.

Serve with ``gunicorn 'crm_backend:create_app()'``; manage with ``crm``.
"""

from apiflask import APIFlask

__version__ = "0.1.0"
API_TITLE = "Northwind Helpdesk CRM API"


def create_app(test_config: dict | None = None) -> APIFlask:
    from . import api, bot_key, commands, db, health, log_redaction, problems, request_guard
    from .config import settings_from_env
    from .customers import bp as customers_bp
    from .openapi import CRMApp

    app = CRMApp(
        __name__,
        title=API_TITLE,
        version=__version__,
        spec_path="/api/v1/openapi.json",
        docs_path="/api/docs",
    )
    app.config.update(settings_from_env())
    app.config.update(
        # Unknown-field and bad-value errors are the client's fault: 422.
        VALIDATION_ERROR_STATUS_CODE=422,
        INFO={"description": "System of record for customers of the helpdesk assistant."},
    )
    if test_config:
        app.config.update(test_config)

    problems.init_app(app)
    log_redaction.init_app(app)  # gunicorn's access log: no e-mail addresses from query strings
    db.init_app(app)
    health.init_app(app)
    bot_key.init_app(app)  # /readyz: the bot's own API key is accepted
    app.register_blueprint(customers_bp)
    app.register_blueprint(__import__("crm_backend.pages", fromlist=["bp"]).bp)
    from . import classifier

    classifier.init_app(app)
    api.init_app(app)
    # After the rate limiter's own hook: malformed requests count too.
    request_guard.init_app(app)  # lone surrogates, NUL, deep or non-object JSON: 400 before any view
    __import__("crm_backend.console", fromlist=["init_app"]).init_app(app)  # agent console; after the API (rate limiter)
    commands.init_app(app)
    return app
