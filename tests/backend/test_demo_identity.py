"""The demo shop's "Sign in (demo: Ada)": the CRM plays a host site's backend and
signs Ada's identity for the chat widget (crm_backend/pages/demo_identity.py)."""

import re
import time

import jwt
import pytest

from crm_backend.db import get_session
from crm_backend.pages.demo_identity import SIGNED_IN_COOKIE, sign_identity
from crm_backend.seed import seed_customers

SECRET = "test-chat-identity-secret-" + "x" * 24


@pytest.fixture
def shop(app, tmp_path):
    """The CRM with the demo seeded and the identity secret set, as `make run` starts it."""
    bundle = tmp_path / "widget.js"
    bundle.write_text("/* test bundle */")
    app.config.update(CHAT_IDENTITY_SECRET=SECRET, SEED_DEMO=True, WIDGET_BUNDLE_PATH=str(bundle))
    with app.app_context():
        seed_customers(get_session())
    return app


def widget_tag(html: str) -> str:
    match = re.search(r"<script src=\"/widget\.js\"[^>]*>", html, re.S)
    assert match, "the page has no widget script tag"
    return match.group(0)


def identity_token_of(html: str) -> str | None:
    match = re.search(r'data-identity-token="([^"]+)"', widget_tag(html))
    return match.group(1) if match else None


def verify(token: str) -> dict:
    return jwt.decode(token, SECRET, algorithms=["HS256"], options={"require": ["email", "exp", "iat"]})


def button(html: str, element_id: str) -> str:
    match = re.search(rf'<button[^>]*id="{element_id}"[^>]*>', html)
    assert match, f"no #{element_id} button"
    return match.group(0)


def test_a_signed_identity_carries_the_email_lowercased_the_name_and_an_expiry():
    token = sign_identity(SECRET, " Ada@Example.com ", "Ada Lovelace", lifetime_seconds=3600, now=1_700_000_000)

    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert claims == {"email": "ada@example.com", "name": "Ada Lovelace", "iat": 1_700_000_000, "exp": 1_700_003_600}
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, "another secret, long enough for HS256 keys", algorithms=["HS256"], options={"verify_exp": False})


def test_signing_in_gives_adas_token_good_for_an_hour_and_remembers_her(shop):
    client = shop.test_client()

    response = client.post("/demo/identity-token")

    assert response.status_code == 200
    assert "no-store" in response.headers["Cache-Control"]
    body = response.json
    claims = verify(body["token"])
    assert claims["email"] == body["email"] == "ada@example.com"
    assert claims["name"] == body["name"] == "Ada Lovelace"
    assert body["first_name"] == "Ada"
    assert 3590 <= claims["exp"] - time.time() <= 3600
    assert body["expires_at"] == claims["exp"]
    cookie = client.get_cookie(SIGNED_IN_COOKIE)
    assert cookie is not None and cookie.http_only


def test_a_signed_in_page_hands_the_widget_a_fresh_token_and_keeps_it_out_of_caches(shop):
    client = shop.test_client()
    client.post("/demo/identity-token")

    response = client.get("/")

    html = response.get_data(as_text=True)
    assert verify(identity_token_of(html))["email"] == "ada@example.com"
    assert "data-customer-email" not in widget_tag(html)
    assert "no-store" in response.headers["Cache-Control"]
    assert "hidden" in button(html, "demo-sign-in")
    assert "hidden" not in button(html, "demo-sign-out")
    assert "Hi, Ada" in html


def test_signing_out_leaves_the_next_page_anonymous(shop):
    client = shop.test_client()
    client.post("/demo/identity-token")

    response = client.post("/demo/sign-out")
    html = client.get("/").get_data(as_text=True)

    assert response.status_code == 204
    assert client.get_cookie(SIGNED_IN_COOKIE) is None
    assert identity_token_of(html) is None
    assert "hidden" not in button(html, "demo-sign-in")
    assert "Sign in <span>(demo: Ada)</span>" in html
    assert "hidden" in button(html, "demo-sign-out")


def test_signed_in_1_renders_one_page_as_ada_without_remembering_her(shop):
    client = shop.test_client()

    html = client.get("/?signed_in=1").get_data(as_text=True)

    assert verify(identity_token_of(html))["email"] == "ada@example.com"
    assert client.get_cookie(SIGNED_IN_COOKIE) is None
    assert identity_token_of(client.get("/").get_data(as_text=True)) is None


@pytest.mark.parametrize(
    "config",
    [{"CHAT_IDENTITY_SECRET": ""}, {"SEED_DEMO": False}],
    ids=["no secret", "demo not seeded"],
)
def test_without_the_demo_or_the_secret_nobody_is_signed_in(shop, config):
    shop.config.update(config)
    client = shop.test_client()

    response = client.post("/demo/identity-token")
    html = client.get("/?signed_in=1").get_data(as_text=True)

    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert "demo sign-in is off" in response.json["detail"]
    assert identity_token_of(html) is None
    assert 'id="demo-sign-in"' not in html


def test_without_ada_in_the_database_there_is_no_demo_sign_in(app):
    app.config.update(CHAT_IDENTITY_SECRET=SECRET, SEED_DEMO=True)
    client = app.test_client()

    assert client.post("/demo/identity-token").status_code == 404
    assert 'id="demo-sign-in"' not in client.get("/").get_data(as_text=True)


def test_the_demo_endpoints_stay_out_of_the_api_document(shop):
    paths = shop.test_client().get("/api/v1/openapi.json").json["paths"]

    assert not [path for path in paths if path.startswith("/demo")]


def test_the_bots_verifier_accepts_what_the_demo_signs(shop):
    # bot/identity.py runs in the bot's environment; here only if it imports without Rasa.
    identity = pytest.importorskip("bot.identity")
    token = shop.test_client().post("/demo/identity-token").json["token"]

    verified = identity.verify_identity_token(token, SECRET)

    assert verified is not None
    assert verified.email == "ada@example.com"
