"""Registers the REST API's blueprints (besides customers), API-key verification and rate limits."""

from flask import Flask


def init_app(app: Flask) -> None:
    from . import api_key_views, api_keys, audit_views, imports, rate_limits, webhooks
    from .agents import bp as agents_bp
    from .analytics import bp as analytics_bp
    from .feedback import bp as feedback_bp
    from .handoffs import bp as handoffs_bp
    from .handoffs import availability, follower
    from .tickets import bp as tickets_bp

    follower.init_app(app)
    availability.check_settings(app.config)
    from .insights.service import check_settings as check_insight_settings  # fails at start on bad settings
    check_insight_settings(app.config)
    from .insights.nightly import check_settings as check_nightly_settings

    check_nightly_settings(app.config)
    api_keys.init_app(app)
    rate_limits.init_app(app)
    for blueprint in (tickets_bp, handoffs_bp, feedback_bp, agents_bp, api_key_views.bp, audit_views.bp):
        app.register_blueprint(blueprint)
    webhooks.init_app(app)  # outbound and inbound webhooks, `crm webhooks` and `crm inbound`
    app.register_blueprint(analytics_bp)  # GET /api/v1/analytics/... (the dashboard's tables)
    imports.init_app(app)  # POST /customers/import, `crm import-customers` and `crm import-orders`
