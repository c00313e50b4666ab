"""`/` the demo shop with the chat widget, `/widget.js` the widget's bundle.

The bundle is built from `widget/` by `make widget` into `static/widget.js`.
"""

import gzip
import hashlib
from pathlib import Path
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, render_template, request

from ..problems import problem

bp = Blueprint("pages", __name__, template_folder="templates")

BUNDLE_PATH = Path(__file__).parent / "static" / "widget.js"
# Short enough that a new release reaches returning visitors within minutes;
# the ETag makes the revalidation after that a cheap 304.
WIDGET_MAX_AGE = 300
DEMO_CUSTOMER_EMAIL = "ada@example.com"


def rasa_public_url() -> str:
    """Where browsers reach Rasa: the setting, else this host on Rasa's port."""
    configured = current_app.config.get("RASA_PUBLIC_URL")
    if configured:
        return configured.rstrip("/")
    parts = urlsplit(request.host_url)
    host = parts.hostname or "localhost"
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    return f"{parts.scheme}://{host}:{current_app.config.get('RASA_PORT', 5005)}"


@bp.get("/")
def shop():
    # `?signed_in=1` plays a signed-in customer, so the demo shows what the
    # host page's data-customer-email does (a greeting by name).
    signed_in = request.args.get("signed_in") == "1"
    return render_template(
        # Under pages/: blueprints share one template namespace.
        "pages/shop.html",
        rasa_url=rasa_public_url(),
        customer_email=DEMO_CUSTOMER_EMAIL if signed_in else None,
    )


def _read_bundle() -> dict | None:
    """The bundle, its gzipped form and their ETag; re-read when the file changes."""
    path = Path(current_app.config.get("WIDGET_BUNDLE_PATH", BUNDLE_PATH))
    try:
        stat = path.stat()
    except OSError:
        return None
    cache = current_app.extensions.setdefault("crm_widget_bundle", {})
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if cache.get("key") != key:
        body = path.read_bytes()
        cache.update(
            key=key,
            body=body,
            gzipped=gzip.compress(body, compresslevel=9, mtime=0),
            etag=hashlib.sha256(body).hexdigest()[:32],
        )
    return cache


@bp.get("/widget.js")
def widget():
    bundle = _read_bundle()
    if bundle is None:
        return problem(404, "The chat widget has not been built; run `make widget`.")
    # gunicorn does not compress; the bundle is a third of its size gzipped.
    compressed = request.accept_encodings.quality("gzip") > 0
    response = Response(bundle["gzipped" if compressed else "body"], mimetype="text/javascript")
    response.vary.add("Accept-Encoding")
    if compressed:
        response.content_encoding = "gzip"
    response.set_etag(bundle["etag"] + ("-gz" if compressed else ""))
    response.cache_control.public = True
    response.cache_control.max_age = WIDGET_MAX_AGE
    # Any site may embed the widget, including ones that isolate themselves
    # with Cross-Origin-Embedder-Policy.
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response.make_conditional(request)
