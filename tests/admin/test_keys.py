"""admin-keys: list, sub-key creation, rotation (one transaction), revocation, overrides.

Revocation and rotation are checked where they matter: the gateway refuses the old key on
its very next call.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from shared.gateway import keys
from tests.support import admin as admin_support
from tests.support.admin import audit_rows, chat, new_customer, new_key, ok

admin = admin_support.admin  # the fixture

KEY_FIELDS = {
    "id",
    "customer_id",
    "key_last4",
    "label",
    "kind",
    "role",
    "monthly_cap_cents",
    "rpm_limit",
    "rpd_limit",
    "max_devices",
    "max_concurrent",
    "require_install_id",
    "allowed_providers",
    "allowed_models",
    "rotated_from_id",
    "revoked_at",
    "created_at",
    "last_seen_at",
    "last_seen_install_id",
}
SETTINGS = {
    "label": "CI runner",
    "role": "viewer",
    "monthly_cap_cents": 500,
    "rpm_limit": 30,
    "rpd_limit": 900,
    "max_devices": 2,
    "max_concurrent": 4,
    "require_install_id": False,
    "allowed_providers": ["openai", "anthropic"],
    "allowed_models": {"openai": ["gpt-4o-mini"], "anthropic": ["*"]},
}


def test_list_shows_every_key_newest_first_never_the_secret_or_hash(admin):
    customer = new_customer(admin)
    sub = new_key(admin, customer["id"], label="worker")
    page = ok(admin.get("admin-keys", params={"customer_id": customer["id"]}))
    assert [k["id"] for k in page["items"]] == [sub["id"], customer["key_id"]]
    assert page["next_cursor"] is None
    for item in page["items"]:
        assert set(item) == KEY_FIELDS
    assert [k["kind"] for k in page["items"]] == ["sub", "master"]
    assert customer["key"] not in str(page) and sub["key"] not in str(page)
    one = ok(admin.get("admin-keys", params={"id": sub["id"]}))["item"]
    assert set(one) == KEY_FIELDS and one["label"] == "worker"
    first = ok(admin.get("admin-keys", params={"customer_id": customer["id"], "limit": 1}))
    second = ok(
        admin.get("admin-keys", params={"customer_id": customer["id"], "cursor": first["next_cursor"]})
    )
    assert [k["id"] for k in first["items"] + second["items"]] == [sub["id"], customer["key_id"]]
    missing = admin.get("admin-keys")
    assert missing.status_code == 400 and missing.json()["field"] == "customer_id"
    assert admin.get("admin-keys", params={"id": 999}).status_code == 404


def test_create_sub_key_with_every_setting_shows_the_secret_once(admin, db):
    customer = new_customer(admin)
    item = new_key(admin, customer["id"], **SETTINGS)
    assert set(item) == KEY_FIELDS | {"key"}
    assert item["key"].startswith(keys.PREFIX) and item["key_last4"] == item["key"][-4:]
    assert item["kind"] == "sub" and {name: item[name] for name in SETTINGS} == SETTINGS
    stored = db.execute("SELECT key_hash FROM api_keys WHERE id = %s", (item["id"],)).fetchone()
    assert bytes(stored["key_hash"]) == keys.hash_key(item["key"])
    [event] = audit_rows(db, "key.create")
    assert event["actor"] == "admin" and event["target"] == f"key:{item['id']}"
    plain = new_key(admin, customer["id"])
    # Least power unless asked: a plain key calls models, it cannot deploy.
    assert plain["role"] == "caller" and plain["label"] is None and plain["allowed_models"] is None


def test_create_for_an_unknown_customer_is_404_and_writes_nothing(admin, db):
    response = admin.post("admin-keys", json={"customer_id": 999, "label": "x"})
    assert response.status_code == 404
    assert db.execute("SELECT count(*) AS n FROM api_keys").fetchone()["n"] == 0


def test_rotate_copies_settings_revokes_the_old_key_and_the_gateway_refuses_it(admin, db, server, upstreams):
    customer = new_customer(admin)
    old = new_key(admin, customer["id"], **{**SETTINGS, "role": "owner"})
    assert chat(server, old["key"], install_id="laptop").status_code == 200  # seats need an install id
    new = ok(admin.post("admin-keys", params={"id": old["id"], "action": "rotate"}))["item"]
    assert new["key"].startswith(keys.PREFIX) and new["key"] != old["key"]
    assert new["id"] != old["id"] and new["rotated_from_id"] == old["id"]
    for name in (*SETTINGS, "kind", "customer_id"):
        assert new[name] == {**old, "role": "owner"}[name], name
    assert new["revoked_at"] is None
    assert ok(admin.get("admin-keys", params={"id": old["id"]}))["item"]["revoked_at"] is not None
    refused = chat(server, old["key"], install_id="laptop")
    assert refused.status_code == 401 and refused.json()["code"] == "KEY_REVOKED"
    assert chat(server, new["key"], install_id="laptop").status_code == 200
    [event] = audit_rows(db, "key.rotate")
    assert event["actor"] == "admin" and event["target"] == f"key:{old['id']}"
    assert event["details"]["new_key_id"] == new["id"] and new["key"] not in str(event["details"])


def test_rotating_the_master_key_keeps_it_the_master(admin, configure, server):
    configure(OPENAI_API_KEY="sk-configured")
    customer = new_customer(admin)
    new = ok(admin.post("admin-keys", params={"id": customer["key_id"], "action": "rotate"}))["item"]
    assert new["kind"] == "master" and new["label"] == "master"
    refused = chat(server, customer["key"])
    assert refused.status_code == 401 and refused.json()["code"] == "KEY_REVOKED"


def test_rotating_a_revoked_key_is_409_and_creates_nothing(admin, db):
    customer = new_customer(admin)
    sub = new_key(admin, customer["id"])
    ok(admin.delete("admin-keys", params={"id": sub["id"]}))
    response = admin.post("admin-keys", params={"id": sub["id"], "action": "rotate"})
    assert response.status_code == 409 and response.json()["code"] == "KEY_REVOKED"
    assert db.execute("SELECT count(*) AS n FROM api_keys").fetchone()["n"] == 2
    assert audit_rows(db, "key.rotate") == []


def test_concurrent_rotations_of_one_key_make_exactly_one_new_key(admin, db, server):
    customer = new_customer(admin)
    sub = new_key(admin, customer["id"])

    def rotate(_: int) -> httpx.Response:
        return admin.post("admin-keys", params={"id": sub["id"], "action": "rotate"})

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(r.status_code for r in pool.map(rotate, range(8)))
    assert statuses == [200] + [409] * 7
    rotated = db.execute(
        "SELECT count(*) AS n FROM api_keys WHERE rotated_from_id = %s", (sub["id"],)
    ).fetchone()
    assert rotated["n"] == 1 and len(audit_rows(db, "key.rotate")) == 1


def test_revoke_is_immediate_idempotent_and_audited(admin, db, configure, server):
    configure(OPENAI_API_KEY="sk-configured")  # the provider counts as configured; no call reaches it
    customer = new_customer(admin)
    first, second = new_key(admin, customer["id"]), new_key(admin, customer["id"])
    revoked = ok(admin.delete("admin-keys", params={"id": first["id"]}))["item"]
    assert revoked["revoked_at"] is not None and "key" not in revoked
    again = ok(admin.delete("admin-keys", params={"id": first["id"]}))["item"]
    assert again["revoked_at"] == revoked["revoked_at"]
    by_action = ok(admin.post("admin-keys", params={"id": second["id"], "action": "revoke"}))["item"]
    assert by_action["revoked_at"] is not None
    for key in (first, second):
        refused = chat(server, key["key"])
        assert refused.status_code == 401 and refused.json()["code"] == "KEY_REVOKED"
    events = audit_rows(db, "key.revoke")
    assert [e["target"] for e in events] == [f"key:{first['id']}", f"key:{second['id']}"]
    assert all(e["actor"] == "admin" for e in events)
    assert admin.delete("admin-keys", params={"id": 999}).status_code == 404


def test_patch_overrides_are_audited_and_enforced(admin, db, server, upstreams):
    customer = new_customer(admin)
    sub = new_key(admin, customer["id"], label="old")
    changes = {"label": "new", "allowed_providers": ["anthropic"], "monthly_cap_cents": 0, "role": "admin"}
    item = ok(admin.patch("admin-keys", params={"id": sub["id"]}, json=changes))["item"]
    assert {name: item[name] for name in changes} == changes and "key" not in item
    [event] = audit_rows(db, "key.update")
    assert event["target"] == f"key:{sub['id']}" and event["actor"] == "admin"
    assert event["details"]["before"] == {
        "label": "old",
        "allowed_providers": None,
        "monthly_cap_cents": None,
        "role": "caller",
    }
    assert event["details"]["after"] == changes
    refused = chat(server, sub["key"])
    assert refused.status_code == 403 and refused.json()["code"] == "PROVIDER_NOT_ALLOWED"
    ok(admin.patch("admin-keys", params={"id": sub["id"]}, json={"allowed_providers": None}))
    capped = chat(server, sub["key"])
    assert capped.status_code == 402 and capped.json()["scope"] == "key"


def test_patching_a_revoked_key_is_409(admin, db):
    customer = new_customer(admin)
    sub = new_key(admin, customer["id"])
    ok(admin.delete("admin-keys", params={"id": sub["id"]}))
    response = admin.patch("admin-keys", params={"id": sub["id"]}, json={"label": "x"})
    assert response.status_code == 409 and response.json()["code"] == "KEY_REVOKED"
    assert audit_rows(db, "key.update") == []
