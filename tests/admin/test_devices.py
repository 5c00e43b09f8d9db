"""admin-devices: list a customer's or key's devices; revoke and un-revoke, enforced by the gateway."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support import admin as admin_support
from tests.support.admin import audit_rows, chat, new_customer, new_key, ok

admin = admin_support.admin  # the fixture

DEVICE_FIELDS = {
    "id",
    "api_key_id",
    "key_last4",
    "key_label",
    "customer_id",
    "install_id",
    "first_seen_at",
    "last_seen_at",
    "revoked_at",
    "revoked_by",
    "user_agent",
}


def _arrange_device(
    db, key: dict, install_id: str, *, first_seen: datetime | None = None, revoked=False
) -> None:
    db.execute(
        "INSERT INTO key_devices (api_key_id, install_id, customer_id, first_seen_at, revoked_at, "
        "revoked_by) VALUES (%s, %s, %s, %s, CASE WHEN %s THEN now() END, CASE WHEN %s THEN 'admin' END)",
        (key["id"], install_id, key["customer_id"], first_seen or datetime.now(UTC), revoked, revoked),
    )


def test_a_revoked_device_is_refused_by_the_gateway_until_unrevoked(admin, db, server, upstreams):
    customer = new_customer(admin)
    key = new_key(admin, customer["id"], label="app")
    assert chat(server, key["key"], install_id="phone-1").status_code == 200  # claims the seat

    [device] = ok(admin.get("admin-devices", params={"customer_id": customer["id"]}))["items"]
    assert set(device) == DEVICE_FIELDS
    assert device["id"] == f"{key['id']}:phone-1" and device["key_last4"] == key["key_last4"]
    assert device["key_label"] == "app" and device["user_agent"].startswith("python-httpx")
    assert device["revoked_at"] is None
    assert ok(admin.get("admin-devices", params={"api_key_id": key["id"]}))["items"] == [device]

    body = {"api_key_id": key["id"], "install_id": "phone-1"}
    revoked = ok(admin.post("admin-devices", params={"action": "revoke"}, json=body))["item"]
    assert revoked["revoked_at"] is not None and revoked["revoked_by"] == "admin"
    refused = chat(server, key["key"], install_id="phone-1")
    assert refused.status_code == 403 and refused.json()["code"] == "DEVICE_REVOKED"
    assert chat(server, key["key"], install_id="tablet").status_code == 200  # other devices still work

    restored = ok(admin.post("admin-devices", params={"action": "unrevoke", "id": device["id"]}))["item"]
    assert restored["revoked_at"] is None and restored["revoked_by"] is None
    assert chat(server, key["key"], install_id="phone-1").status_code == 200

    events = audit_rows(db, "device.revoke") + audit_rows(db, "device.unrevoke")
    assert [(e["action"], e["actor"], e["target"]) for e in events] == [
        ("device.revoke", "admin", f"device:{key['id']}:phone-1"),
        ("device.unrevoke", "admin", f"device:{key['id']}:phone-1"),
    ]


def test_revoke_accepts_the_target_in_the_query_and_is_idempotent(admin, db):
    customer = new_customer(admin)
    key = new_key(admin, customer["id"])
    _arrange_device(db, key, "kiosk")
    query = {"action": "revoke", "api_key_id": key["id"], "install_id": "kiosk"}
    first = ok(admin.post("admin-devices", params=query))["item"]
    second = ok(admin.post("admin-devices", params=query))["item"]
    assert first["revoked_at"] is not None and second["revoked_at"] == first["revoked_at"]
    assert len(audit_rows(db, "device.revoke")) == 1


def test_unrevoke_never_pushes_a_key_past_its_seats(admin, db):
    customer = new_customer(admin)
    key = new_key(admin, customer["id"], max_devices=1)
    _arrange_device(db, key, "old-phone", revoked=True)
    _arrange_device(db, key, "new-phone")
    response = admin.post("admin-devices", params={"action": "unrevoke", "id": f"{key['id']}:old-phone"})
    assert response.status_code == 409 and response.json()["code"] == "DEVICE_LIMIT"
    row = db.execute("SELECT revoked_at FROM key_devices WHERE install_id = 'old-phone'").fetchone()
    assert row["revoked_at"] is not None and audit_rows(db, "device.unrevoke") == []
    ok(admin.post("admin-devices", params={"action": "revoke", "id": f"{key['id']}:new-phone"}))
    ok(admin.post("admin-devices", params={"action": "unrevoke", "id": f"{key['id']}:old-phone"}))


def test_unknown_device_is_404(admin):
    customer = new_customer(admin)
    response = admin.post("admin-devices", params={"action": "revoke", "id": f"{customer['key_id']}:nope"})
    assert response.status_code == 404 and response.json()["code"] == "NOT_FOUND"


def test_list_pages_by_first_seen_newest_first(admin, db):
    customer = new_customer(admin)
    key = new_key(admin, customer["id"])
    base = datetime.now(UTC) - timedelta(hours=1, microseconds=123)
    for n in range(5):
        _arrange_device(db, key, f"dev-{n}", first_seen=base + timedelta(minutes=n))
    master = {"id": customer["key_id"], "customer_id": customer["id"]}
    _arrange_device(db, master, "dev-same-time", first_seen=base + timedelta(minutes=2))  # ties with dev-2
    seen, cursor = [], None
    while True:
        page = ok(
            admin.get("admin-devices", params={"customer_id": customer["id"], "limit": 3, "cursor": cursor})
        )
        seen += [d["install_id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["dev-4", "dev-3", "dev-2", "dev-same-time", "dev-1", "dev-0"]
    bad = admin.get("admin-devices", params={"customer_id": customer["id"], "cursor": "garbage"})
    assert bad.status_code == 400 and bad.json()["field"] == "cursor"
    missing = admin.get("admin-devices")
    assert missing.status_code == 400 and missing.json()["field"] == "customer_id"
