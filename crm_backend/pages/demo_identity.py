"""The demo shop's signed-in customer: Ada's identity, signed for the chat widget.

A host site that knows who is signed in signs that customer's identity on its
own backend with ``CHAT_IDENTITY_SECRET`` (a JWT, HS256: ``email``, ``name``,
``iat``, ``exp``) and puts it on the widget's tag (``data-identity-token``) or
hands it to ``HelpdeskChat.identify(token)``; Rasa's channels verify it
(docs/widget.md "Signed-in customers", docs/security.md). The demo shop plays
such a site for one demo customer, Ada, so the demo shows both an anonymous
visitor and a signed-in customer. It signs only when the demo data is seeded
(``SEED_DEMO`` is not ``0``), the secret is set and Ada is in the database:
anyone who can open the demo shop can be Ada, which is the point of a demo and
the reason it is off everywhere else.
"""

import logging
import time

import jwt
from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from ..db import get_session
from ..models import Customer

log = logging.getLogger(__name__)

DEMO_CUSTOMER_EMAIL = "ada@example.com"
# How long a demo token is good for; the page signs a new one on every load.
TOKEN_LIFETIME_SECONDS = 3600
# Remembers "Ada is signed in" for the shop's later pages, as a host site's
# own session would; not the console's cookie, and worth nothing on its own.
SIGNED_IN_COOKIE = "northwind_demo_customer"


def sign_identity(
    secret: str,
    email: str,
    name: str | None = None,
    *,
    lifetime_seconds: int = TOKEN_LIFETIME_SECONDS,
    now: float | None = None,
) -> str:
    """A signed identity token for ``email`` (and ``name``), good for ``lifetime_seconds``."""
    issued_at = int(time.time() if now is None else now)
    claims: dict = {"email": email.strip().lower(), "iat": issued_at, "exp": issued_at + lifetime_seconds}
    if name:
        claims["name"] = name
    return jwt.encode(claims, secret.encode("utf-8"), algorithm="HS256")


def identity_secret() -> str | None:
    secret = current_app.config["CHAT_IDENTITY_SECRET"] or ""
    return secret if secret.strip() else None


def demo_customer() -> Customer | None:
    """Ada, when the demo may sign her identity (seeded demo, secret set); otherwise None."""
    if not current_app.config["SEED_DEMO"] or identity_secret() is None:
        return None
    try:
        return get_session().scalars(select(Customer).where(Customer.email == DEMO_CUSTOMER_EMAIL)).first()
    except SQLAlchemyError:
        # A database not migrated yet: the shop still shows, without the demo sign-in.
        log.warning("The demo customer could not be read; the shop page shows no demo sign-in.", exc_info=True)
        return None


def demo_token(customer: Customer) -> tuple[str, int]:
    """Ada's identity token and when it expires (Unix seconds)."""
    now = int(time.time())
    token = sign_identity(identity_secret() or "", customer.email, customer.name, now=now)
    return token, now + TOKEN_LIFETIME_SECONDS


def first_name(customer: Customer) -> str | None:
    """The name the shop greets the customer by; never made up from the address."""
    words = (customer.name or "").split()
    return words[0] if words else None
