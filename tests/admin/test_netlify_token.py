"""admin-netlify-token: tokens sealed at rest, never returned, audited without the token."""

from __future__ import annotations

import asyncio
import base64
import os

import pytest

from shared import crypto
from shared import db as shared_db
from shared.admin import netlify_tokens
from tests.support.reports import (
    ADMIN_PASSWORD,
    PASSWORD_HEADERS,
    assert_admin_only,
    assert_bad_field,
    audit_rows,
)

TOKEN = "nfp_Secret123token"
OLD_KEY = f"old:{base64.b64encode(os.urandom(32)).decode()}"
NEW_KEY = f"new:{base64.b64encode(os.urandom(32)).decode()}"


@pytest.fixture(autouse=True)
def _admin(configure):
    configure(ADMIN_PASSWORD=ADMIN_PASSWORD, KAIXU_ENCRYPTION_KEYS=OLD_KEY)


def token_for(customer_id: int) -> str | None:
    async def run() -> str | None:
        try:
            return await netlify_tokens.token_for(customer_id)
        finally:
            await shared_db.close()

    return asyncio.run(run())


def put(client, body: dict, method: str = "PUT"):
    return client.request(method, "admin-netlify-token", json=body, headers=PASSWORD_HEADERS)


def test_admin_netlify_token_requires_admin(client, make_key):
    customer_id = make_key().customer_id
    url = f"admin-netlify-token?customer_id={customer_id}"
    assert_admin_only(client, "GET", url, 200)
    assert_admin_only(
        client, "PUT", "admin-netlify-token", 200, json={"customer_id": customer_id, "token": TOKEN}
    )
    assert_admin_only(
        client, "POST", "admin-netlify-token", 200, json={"customer_id": customer_id, "token": TOKEN}
    )
    assert_admin_only(client, "DELETE", url, 200)


def test_set_check_clear_never_shows_the_token(client, db, make_key):
    customer_id = make_key().customer_id
    status = client.get("admin-netlify-token", params={"customer_id": customer_id}, headers=PASSWORD_HEADERS)
    assert status.json()["item"] == {"customer_id": customer_id, "has_token": False, "updated_at": None}
    response = put(client, {"customer_id": customer_id, "token": TOKEN}, method="POST")
    assert response.status_code == 200 and TOKEN not in response.text
    item = response.json()["item"]
    assert item["has_token"] is True and item["updated_at"].endswith("Z")
    row = db.execute("SELECT * FROM customer_netlify_tokens").fetchone()
    assert TOKEN not in row["token_enc"] and row["key_id"] == "old" and row["token_enc"].startswith("v1.old.")
    assert token_for(customer_id) == TOKEN
    status = client.get("admin-netlify-token", params={"customer_id": customer_id}, headers=PASSWORD_HEADERS)
    assert status.json()["item"]["has_token"] is True and TOKEN not in status.text

    cleared = client.delete(
        "admin-netlify-token", params={"customer_id": customer_id}, headers=PASSWORD_HEADERS
    )
    assert cleared.json()["item"] == {"customer_id": customer_id, "has_token": False, "updated_at": None}
    assert token_for(customer_id) is None

    actions = [(r["action"], r["actor"], r["target"]) for r in audit_rows(db, "netlify_token.set")]
    actions += [(r["action"], r["actor"], r["target"]) for r in audit_rows(db, "netlify_token.clear")]
    target = f"customer:{customer_id}"
    assert actions == [("netlify_token.set", "admin", target), ("netlify_token.clear", "admin", target)]
    assert TOKEN not in str(db.execute("SELECT details FROM audit_events").fetchall())
    assert TOKEN not in str(db.execute("SELECT * FROM gateway_events").fetchall())


def test_rotation_keeps_old_tokens_readable_and_writes_with_the_newest_key(client, db, make_key, configure):
    first, second = make_key().customer_id, make_key().customer_id
    put(client, {"customer_id": first, "token": "token-one"})
    configure(ADMIN_PASSWORD=ADMIN_PASSWORD, KAIXU_ENCRYPTION_KEYS=f"{OLD_KEY},{NEW_KEY}")
    assert token_for(first) == "token-one"
    put(client, {"customer_id": second, "token": "token-two"})
    rows = db.execute("SELECT customer_id, key_id FROM customer_netlify_tokens").fetchall()
    kids = {row["customer_id"]: row["key_id"] for row in rows}
    assert kids == {first: "old", second: "new"}
    assert token_for(second) == "token-two"
    (replaced,) = [r for r in audit_rows(db, "netlify_token.set") if r["target"] == f"customer:{second}"]
    assert replaced["details"] == {"key_id": "new", "replaced": False}


def test_a_token_moved_to_another_customer_or_without_its_key_is_an_error(client, db, make_key, configure):
    first, second = make_key().customer_id, make_key().customer_id
    put(client, {"customer_id": first, "token": TOKEN})
    put(client, {"customer_id": second, "token": "other"})
    db.execute(
        "UPDATE customer_netlify_tokens SET token_enc = (SELECT token_enc FROM customer_netlify_tokens "
        "WHERE customer_id = %s) WHERE customer_id = %s",
        (first, second),
    )
    with pytest.raises(crypto.DecryptionError):
        token_for(second)
    configure(ADMIN_PASSWORD=ADMIN_PASSWORD, KAIXU_ENCRYPTION_KEYS=NEW_KEY)
    with pytest.raises(crypto.DecryptionError):
        token_for(first)


def test_setting_a_token_without_keys_is_503(client, db, make_key, configure):
    customer_id = make_key().customer_id
    configure(ADMIN_PASSWORD=ADMIN_PASSWORD, KAIXU_ENCRYPTION_KEYS="")
    response = put(client, {"customer_id": customer_id, "token": TOKEN})
    assert response.status_code == 503 and response.json()["code"] == "ENCRYPTION_NOT_CONFIGURED"
    assert db.execute("SELECT count(*) AS n FROM customer_netlify_tokens").fetchone()["n"] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"token": TOKEN}, "customer_id"),
        ({"customer_id": "1", "token": TOKEN}, "customer_id"),
        ({"customer_id": -1, "token": TOKEN}, "customer_id"),
        ({"customer_id": 1}, "token"),
        ({"customer_id": 1, "token": ""}, "token"),
        ({"customer_id": 1, "token": 12345}, "token"),
        ({"customer_id": 1, "token": "has space"}, "token"),
        ({"customer_id": 1, "token": "x" * 1001}, "token"),
        ({"customer_id": 1, "token": TOKEN, "site_id": "s"}, "site_id"),
    ],
)
def test_set_refuses_bad_fields(client, body, field):
    assert_bad_field(put(client, body), field)


def test_unknown_customer_and_bad_queries(client):
    assert put(client, {"customer_id": 999_999, "token": TOKEN}).status_code == 404
    for method in ("GET", "DELETE"):
        response = client.request(method, "admin-netlify-token", headers=PASSWORD_HEADERS)
        assert_bad_field(response, "customer_id")
        response = client.request(method, "admin-netlify-token?customer_id=x", headers=PASSWORD_HEADERS)
        assert_bad_field(response, "customer_id")
        response = client.request(method, "admin-netlify-token?customer_id=999999", headers=PASSWORD_HEADERS)
        assert response.status_code == 404
