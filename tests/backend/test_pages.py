"""The demo shop page and the chat widget's bundle (crm_backend/pages)."""

import gzip
import re

import pytest

from crm_backend import create_app
from crm_backend.settings import Settings

BUNDLE = b"/*! test bundle */(()=>{window.HelpdeskChat={}})();"


@pytest.fixture
def bundle(tmp_path):
    path = tmp_path / "widget.js"
    path.write_bytes(BUNDLE)
    return path


@pytest.fixture
def pages(tmp_path, bundle):
    """An app whose widget bundle is a small file the test controls."""

    def make(**config):
        app = create_app(
            {
                "TESTING": True,
                "DATABASE_URL": f"sqlite:///{tmp_path / 'crm.db'}",
                "WIDGET_BUNDLE_PATH": str(bundle),
                **config,
            }
        )
        return app.test_client()

    return make


def widget_tag(html: str) -> str:
    match = re.search(r"<script src=\"/widget\.js\"[^>]*>", html, re.S)
    assert match, "the page has no widget script tag"
    return match.group(0)


def test_the_shop_page_carries_one_widget_tag_pointing_at_rasa_on_the_requests_host(pages):
    client = pages(RASA_PORT=5005, RASA_PUBLIC_URL="")

    response = client.get("/", base_url="http://shop.example:8000")

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "Northwind Goods" in html
    assert html.count('src="/widget.js"') == 1
    tag = widget_tag(html)
    assert 'data-server="http://shop.example:5005"' in tag
    assert "data-title=" in tag and "data-primary-color=" in tag and "defer" in tag
    assert "data-customer-email" not in tag


def test_rasa_public_url_wins_over_the_requests_host(pages):
    client = pages(RASA_PUBLIC_URL="https://chat.example.com/rasa/")

    tag = widget_tag(client.get("/", base_url="https://shop.example").get_data(as_text=True))

    assert 'data-server="https://chat.example.com/rasa"' in tag


def test_rasa_public_url_and_port_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("RASA_PUBLIC_URL", "https://chat.example.com")
    monkeypatch.setenv("RASA_PORT", "6006")

    settings = Settings.from_env()

    assert settings.rasa_public_url == "https://chat.example.com"
    assert settings.rasa_port == 6006


def test_the_page_never_tells_the_widget_an_unsigned_email(pages):
    # Signed-in pages carry a signed identity token instead (test_demo_identity.py).
    client = pages(CHAT_IDENTITY_SECRET="")

    html = client.get("/?signed_in=1").get_data(as_text=True)

    assert "data-customer-email" not in widget_tag(html)
    assert "data-identity-token" not in widget_tag(html)


def test_the_widget_is_served_as_javascript_with_a_short_cache_and_an_etag(pages):
    client = pages()

    response = client.get("/widget.js")

    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.data == BUNDLE
    assert response.headers["ETag"]
    assert response.cache_control.public
    assert 0 < response.cache_control.max_age <= 3600
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_an_unchanged_widget_is_a_304(pages):
    client = pages()
    etag = client.get("/widget.js").headers["ETag"]

    response = client.get("/widget.js", headers={"If-None-Match": etag})

    assert response.status_code == 304
    assert response.data == b""


def test_browsers_that_accept_gzip_get_it_gzipped(pages):
    client = pages()

    response = client.get("/widget.js", headers={"Accept-Encoding": "gzip, deflate, br"})

    assert response.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in response.headers["Vary"]
    assert gzip.decompress(response.data) == BUNDLE


def test_a_rebuilt_bundle_is_served_with_a_new_etag(pages, bundle):
    client = pages()
    first = client.get("/widget.js").headers["ETag"]

    bundle.write_bytes(BUNDLE + b"\n// rebuilt, one byte longer at least")
    response = client.get("/widget.js", headers={"If-None-Match": first})

    assert response.status_code == 200
    assert response.headers["ETag"] != first


def test_an_unbuilt_widget_is_a_404_problem_saying_how_to_build_it(pages, tmp_path):
    client = pages(WIDGET_BUNDLE_PATH=str(tmp_path / "missing.js"))

    response = client.get("/widget.js")

    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert "make widget" in response.json["detail"]


def test_pages_stay_out_of_the_api_document(pages):
    paths = pages().get("/api/v1/openapi.json").json["paths"]

    assert "/" not in paths
    assert "/widget.js" not in paths
