"""`/` the demo shop with the chat widget, `/widget.js` the widget's bundle,
and the demo's sign-in as Ada: `POST /demo/identity-token`, `POST /demo/sign-out`.

The bundle is built from `widget/` by `make widget` into `static/widget.js`.
"""

import gzip
import hashlib
from pathlib import Path
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, jsonify, make_response, render_template, request

from ..problems import problem
from . import demo_identity

bp = Blueprint("pages", __name__, template_folder="templates")

BUNDLE_PATH = Path(__file__).parent / "static" / "widget.js"
# Short enough that a new release reaches returning visitors within minutes;
# the ETag makes the revalidation after that a cheap 304.
WIDGET_MAX_AGE = 300


def rasa_public_url() -> str:
    """Where browsers reach Rasa: the setting, else this host on Rasa's port."""
    configured = current_app.config.get("RASA_PUBLIC_URL")
    if configured:
        return configured.rstrip("/")
    parts = urlsplit(request.host_url)
    host = parts.hostname or "localhost"
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    return f"{parts.scheme}://{host}:{current_app.config['RASA_PORT']}"


@bp.get("/")
def shop():
    # Like a host site, the page signs the signed-in customer's identity on
    # every load and puts it on the widget's tag. Signed in: the demo's own
    # cookie (set by the "Sign in (demo: Ada)" button), or `?signed_in=1` for
    # this page alone.
    customer = demo_identity.demo_customer()
    signed_in = customer is not None and (
        request.cookies.get(demo_identity.SIGNED_IN_COOKIE) == "1" or request.args.get("signed_in") == "1"
    )
    identity_token = demo_identity.demo_token(customer)[0] if signed_in else None
    response = make_response(
        render_template(
            # Under pages/: blueprints share one template namespace.
            "pages/shop.html",
            rasa_url=rasa_public_url(),
            demo_available=customer is not None,
            demo_first_name=demo_identity.first_name(customer) if customer else None,
            signed_in=signed_in,
            identity_token=identity_token,
        )
    )
    if identity_token:
        # The page carries a bearer token: no cache may keep it.
        response.cache_control.no_store = True
        response.cache_control.private = True
    return response


def _secure_cookies() -> bool:
    return bool(current_app.config.get("SESSION_COOKIE_SECURE"))


@bp.post("/demo/identity-token")
def demo_identity_token():
    """Signs Ada in on the demo shop: her identity token for `HelpdeskChat.identify(token)`."""
    customer = demo_identity.demo_customer()
    if customer is None:
        return problem(
            404,
            "The demo sign-in is off: it needs the demo data (SEED_DEMO is not 0) and CHAT_IDENTITY_SECRET.",
        )
    token, expires_at = demo_identity.demo_token(customer)
    response = jsonify(
        token=token,
        email=customer.email,
        name=customer.name,
        first_name=demo_identity.first_name(customer),
        expires_at=expires_at,
    )
    response.cache_control.no_store = True
    response.set_cookie(
        demo_identity.SIGNED_IN_COOKIE, "1", httponly=True, samesite="Lax", secure=_secure_cookies(), path="/"
    )
    return response


@bp.post("/demo/sign-out")
def demo_sign_out():
    """Signs Ada out of the demo shop (the page also calls `HelpdeskChat.reset()`)."""
    response = Response(status=204)
    response.delete_cookie(demo_identity.SIGNED_IN_COOKIE, path="/", samesite="Lax", secure=_secure_cookies())
    return response


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
