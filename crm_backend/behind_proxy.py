"""The CRM behind a reverse proxy: the scaled profile's load balancer.

    gunicorn 'crm_backend.behind_proxy:create_app()'

Behind nginx every request comes from the proxy's address, so the rate
limits and the console's limit on failed sign-ins would count all clients as
one. Werkzeug's ProxyFix takes the client's address and scheme from the
``X-Forwarded-For`` / ``X-Forwarded-Proto`` headers the proxy sets, trusting
exactly ``CRM_PROXY_HOPS`` proxies (default 1). Only serve the CRM this way
when it is reachable through the proxy alone: a client talking to it
directly could claim any address.
"""

from __future__ import annotations

from werkzeug.middleware.proxy_fix import ProxyFix

from . import create_app as create_crm_app


def create_app(test_config: dict | None = None):
    app = create_crm_app(test_config)
    hops = app.config["CRM_PROXY_HOPS"]
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)
    return app
