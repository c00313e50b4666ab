"""CRM backend of the Northwind helpdesk assistant.

Serve with ``gunicorn 'crm_backend:create_app()'``; manage with ``crm``.
"""

from apiflask import APIFlask

__version__ = "0.1.0"
API_TITLE = "Northwind Helpdesk CRM API"


def create_app(test_config: dict | None = None) -> APIFlask:
    """The CRM app: settings, then shared services, then every blueprint and command.

    ``test_config`` overrides settings by their Flask config keys.
    """
    from . import (
        api_key_views,
        api_keys,
        audit_views,
        bot_key,
        commands,
        console,
        db,
        health,
        log_redaction,
        needs,
        problems,
        rate_limits,
        request_guard,
        webhooks,
    )
    from .agents import bp as agents_bp
    from .analytics import bp as analytics_bp
    from .customers import bp as customers_bp
    from .feedback import bp as feedback_bp
    from .handoffs import availability
    from .handoffs import bp as handoffs_bp
    from .handoffs.commands import handoffs_cli
    from .imports import views as imports_views
    from .imports.commands import import_customers_command, import_orders_command
    from .inbound import views as inbound_views
    from .inbound.commands import inbound_group
    from .insights import nightly as insights_nightly
    from .insights import service as insights_service
    from .insights.commands import insights_group
    from .needs import views as needs_views
    from .needs.commands import classifier_group
    from .openapi import CRMApp
    from .orders import bp as orders_bp
    from .pages import bp as pages_bp
    from .settings import Settings
    from .tickets import bp as tickets_bp
    from .webhooks import views as webhooks_views
    from .webhooks.commands import webhooks_group

    app = CRMApp(
        __name__,
        title=API_TITLE,
        version=__version__,
        spec_path="/api/v1/openapi.json",
        docs_path="/api/docs",
    )
    app.config.update(Settings.from_env().flask_config())
    app.config.update(
        # Unknown-field and bad-value errors are the client's fault: 422.
        VALIDATION_ERROR_STATUS_CODE=422,
        INFO={"description": "System of record for customers of the helpdesk assistant."},
    )
    if test_config:
        app.config.update(test_config)
    # Settings that cannot work stop the start with one sentence.
    availability.check_settings(app.config)
    insights_service.check_settings(app.config)
    insights_nightly.check_settings(app.config)

    # Services the blueprints share. Order matters where said.
    problems.init_app(app)  # problem+json for every error, from here on
    log_redaction.init_app(app)  # gunicorn's access log: no e-mail addresses from query strings
    db.init_app(app)
    health.init_app(app)  # /readyz: database and migrations ...
    bot_key.init_app(app)  # ... the bot's own API key is accepted ...
    needs.init_app(app)  # ... and the need classifier is loaded
    api_keys.init_app(app)  # the cache of verified API keys
    rate_limits.init_app(app)  # its before_request hook must run first: malformed requests count too ...
    request_guard.init_app(app)  # ... then lone surrogates, NUL, deep or non-object JSON: 400 before any view
    webhooks.init_app(app)  # the secrets box (signing keys encrypted at rest)
    console.init_app(app)  # the console's session; its sign-in limits count in the rate limiter's storage

    # Every blueprint. The order is the order of the OpenAPI document's paths.
    for blueprint in (
        health.bp,  # /healthz, /readyz
        customers_bp,  # /api/v1/customers
        pages_bp,  # /, /widget.js, /help
        needs_views.bp,  # /api/v1/classify
        tickets_bp,  # /api/v1/tickets
        orders_bp,  # /api/v1/orders
        handoffs_bp,  # /api/v1/handoffs
        feedback_bp,  # /api/v1/feedback
        agents_bp,  # /api/v1/agents
        api_key_views.bp,  # /api/v1/api-keys
        audit_views.bp,  # /api/v1/audit-events
        webhooks_views.bp,  # /api/v1/webhooks, /api/v1/deliveries
        inbound_views.bp,  # /api/v1/inbound/{source}
        analytics_bp,  # /api/v1/analytics (the dashboard's tables)
        imports_views.bp,  # POST /api/v1/customers/import
        console.bp,  # /console
    ):
        app.register_blueprint(blueprint)

    # Every `crm` command (crm --help).
    for command in (
        commands.init_db,
        commands.seed_demo,
        commands.create_agent,
        commands.create_api_key,
        commands.ensure_api_key,
        classifier_group,
        handoffs_cli,
        webhooks_group,
        inbound_group,
        import_customers_command,
        import_orders_command,
        insights_group,
    ):
        app.cli.add_command(command)
    return app
