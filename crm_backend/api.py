"""Registers the REST API's blueprints (besides customers) and its rate limits."""

from flask import Flask


def init_app(app: Flask) -> None:
    from . import api_key_views, audit_views, rate_limits
    from .agents import bp as agents_bp
    from .tickets import bp as tickets_bp

    rate_limits.init_app(app)
    for blueprint in (tickets_bp, agents_bp, api_key_views.bp, audit_views.bp):
        app.register_blueprint(blueprint)
