"""admin-audit: the audit log, newest first, filtered by action, target, actor and time."""

from __future__ import annotations

from tests.support import admin as admin_support
from tests.support.admin import new_customer, new_key, ok

admin = admin_support.admin  # the fixture


def test_filters_and_pages_the_audit_log(admin, db):
    customer = new_customer(admin)
    key = new_key(admin, customer["id"])
    ok(admin.post("admin-keys", params={"id": key["id"], "action": "rotate"}))
    ok(admin.post("admin-topups", json={"customer_id": customer["id"], "amount_cents": 100}), 201)
    db.execute(
        "INSERT INTO audit_events (actor, action, target, created_at) "
        "VALUES ('cli', 'topup.create', %s, '2020-01-01T00:00:00Z')",
        (f"customer:{customer['id']}",),
    )

    def actions(**filters) -> list[str]:
        return [e["action"] for e in ok(admin.get("admin-audit", params=filters))["items"]]

    assert actions() == ["topup.create", "topup.create", "key.rotate", "key.create", "customer.create"]
    assert actions(action="key.rotate") == ["key.rotate"]
    assert actions(target=f"key:{key['id']}") == ["key.rotate", "key.create"]
    assert actions(actor="cli") == ["topup.create"]
    assert actions(since="2021-01-01T00:00:00Z", action="topup.create") == ["topup.create"]
    assert actions(since="2021-01-01T00:00:00", actor="cli") == []  # a time without a zone is UTC

    [rotation] = ok(admin.get("admin-audit", params={"action": "key.rotate"}))["items"]
    assert set(rotation) == {"id", "created_at", "actor", "action", "target", "details"}
    assert rotation["actor"] == "admin" and rotation["details"]["customer_id"] == customer["id"]

    seen, cursor = [], None
    while True:
        page = ok(admin.get("admin-audit", params={"limit": 2, "cursor": cursor}))
        seen += [e["id"] for e in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == sorted(seen, reverse=True) and len(seen) == 5


def test_bad_filters_are_400(admin):
    for params, field in (
        ({"since": "yesterday"}, "since"),
        ({"action": "a" * 201}, "action"),
        ({"limit": 0}, "limit"),
    ):
        response = admin.get("admin-audit", params=params)
        assert response.status_code == 400 and response.json()["field"] == field


def test_every_filter_of_the_audit_panel_is_checked(admin):
    """The screen's Audit panel sends actor, action, target, since, limit and cursor: each one
    that is wrong is a 400 naming it, never a 500."""
    for params, field in (
        ({"actor": "x" * 201}, "actor"),
        ({"target": "x" * 201}, "target"),
        ({"cursor": "nope"}, "cursor"),
        ({"limit": 501}, "limit"),
        ({"since": "2026-13-01T00:00:00Z"}, "since"),
    ):
        response = admin.get("admin-audit", params=params)
        assert response.status_code == 400 and response.json()["field"] == field, (params, response.text)
    assert ok(admin.get("admin-audit", params={"actor": "nobody"})) == {"items": [], "next_cursor": None}
