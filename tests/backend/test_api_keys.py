import sqlite3

import pytest
from sqlalchemy import select

from crm_backend import api_keys
from crm_backend.db import get_session
from crm_backend.models import ApiKey


def test_key_has_the_documented_format(make_key):
    key = make_key("customers:read")

    assert api_keys.parse_prefix(key) is not None
    assert key.startswith("crm_") and len(key) > 40


def test_only_a_hash_of_the_key_is_stored(app, make_key, tmp_path):
    key = make_key("customers:read")
    secret = key.split("_", 2)[2]

    rows = sqlite3.connect(tmp_path / "crm.db").execute("select * from api_keys").fetchall()
    # The WAL file may still hold the newest pages, so look at every file.
    raw = b"".join(path.read_bytes() for path in tmp_path.iterdir() if path.is_file())
    assert secret not in repr(rows) and secret.encode() not in raw
    with app.app_context():
        assert get_session().scalars(select(ApiKey)).one().key_hash == api_keys.hash_key(key)


def test_a_valid_key_reads_customers_and_is_marked_used(app, client, make_key):
    key = make_key("customers:read")

    response = client.get("/api/v1/customers", headers={"Authorization": f"Bearer {key}"})

    assert response.status_code == 200
    with app.app_context():
        assert get_session().scalars(select(ApiKey)).one().last_used_at is not None


def test_a_revoked_key_is_rejected(app, client, make_key):
    key = make_key("customers:read")
    with app.app_context():
        session = get_session()
        api_keys.revoke(session, session.scalars(select(ApiKey)).one())

    response = client.get("/api/v1/customers", headers={"Authorization": f"Bearer {key}"})

    assert response.status_code == 401


def test_a_key_with_the_right_prefix_but_wrong_secret_is_rejected(client, make_key):
    key = make_key("customers:read")
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")

    response = client.get("/api/v1/customers", headers={"Authorization": f"Bearer {forged}"})

    assert response.status_code == 401


@pytest.mark.parametrize(
    ("granted", "required", "allowed"),
    [
        (["customers:read"], "customers:read", True),
        (["customers:read"], "customers:write", False),
        (["customers:*"], "customers:write", True),
        (["tickets:*"], "customers:read", False),
        (["admin"], "handoffs:write", True),
        ([], "customers:read", False),
    ],
)
def test_scope_rules(granted, required, allowed):
    assert api_keys.grants(granted, required) is allowed


@pytest.mark.parametrize("scopes", [["admin"], ["customers:*"]])
def test_admin_and_wildcard_keys_read_customers(client, bearer, scopes):
    response = client.get("/api/v1/customers", headers=bearer(*scopes))

    assert response.status_code == 200


def test_unknown_scopes_are_refused(app):
    with app.app_context(), pytest.raises(api_keys.UnknownScopeError, match="customers:delete"):
        api_keys.create_api_key(get_session(), "x", ["customers:delete"])
