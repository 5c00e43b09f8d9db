"""admin-customers: create with a master key shown once, list/search/page, read, policy PATCH."""

from __future__ import annotations

from shared.admin import accounts
from shared.gateway import keys
from tests.support import admin as admin_support
from tests.support.admin import audit_rows, chat, new_customer, new_key, ok

admin = admin_support.admin  # the fixture

ITEM_FIELDS = {
    "id",
    "email",
    "plan_id",
    "plan",
    "effective",
    "monthly_cap_cents",
    "is_active",
    "max_devices_per_key",
    "require_install_id",
    "allowed_providers",
    "allowed_models",
    "rpm_limit",
    "rpd_limit",
    "max_concurrent",
    "created_at",
    "updated_at",
    "active_keys",
    "has_netlify_token",
    "month",
    "month_spent_nanos",
    "month_spent_cents",
    "month_topup_cents",
    "month_cap_cents",
}


def test_create_returns_the_customer_and_its_master_key_once(admin, db):
    pro = ok(admin.post("admin-plans", json={"name": "pro", "monthly_cap_cents": 9000}), 201)["item"]
    item = new_customer(admin, "Ops@Example.com", plan_id=pro["id"], monthly_cap_cents=5000, rpm_limit=30)
    assert set(item) == ITEM_FIELDS | {"key", "key_id", "key_last4"}
    assert item["email"] == "Ops@Example.com" and (item["plan_id"], item["plan"]) == (pro["id"], "pro")
    assert item["monthly_cap_cents"] == 5000 and item["rpm_limit"] == 30
    assert item["active_keys"] == 1 and item["has_netlify_token"] is False
    assert item["month"] == accounts.current_month() and item["month_spent_cents"] == 0
    assert item["key"].startswith("kx_live_") and item["key_last4"] == item["key"][-4:]
    stored = db.execute("SELECT * FROM api_keys WHERE id = %s", (item["key_id"],)).fetchone()
    assert stored["kind"] == "master" and bytes(stored["key_hash"]) == keys.hash_key(item["key"])
    again = ok(admin.get("admin-customers", params={"id": item["id"]}))["item"]
    assert set(again) == ITEM_FIELDS and item["key"] not in str(again)
    [event] = audit_rows(db, "customer.create")
    assert event["actor"] == "admin" and event["target"] == f"customer:{item['id']}"
    assert item["key"] not in str(event["details"])


def test_a_new_customer_joins_the_default_plan_and_takes_its_values(admin, configure):
    configure(DEFAULT_RPM_LIMIT="77")
    item = new_customer(admin)
    assert item["plan"] == "starter" and item["monthly_cap_cents"] is None and item["rpm_limit"] is None
    assert item["effective"]["monthly_cap_cents"] == {"value": 2000, "source": "plan"}
    assert item["effective"]["rpm_limit"] == {"value": 77, "source": "default"}
    assert item["month_cap_cents"] == 2000


def test_duplicate_email_is_409_whatever_the_case(admin, db):
    new_customer(admin, "dup@example.com")
    response = admin.post("admin-customers", json={"email": "DUP@example.com"})
    assert response.status_code == 409 and response.json()["code"] == "DUPLICATE_EMAIL"
    assert db.execute("SELECT count(*) AS n FROM customers").fetchone()["n"] == 1
    assert db.execute("SELECT count(*) AS n FROM api_keys").fetchone()["n"] == 1


def test_unknown_customer_is_404(admin):
    response = admin.get("admin-customers", params={"id": 999})
    assert response.status_code == 404 and response.json()["code"] == "NOT_FOUND"
    assert admin.patch("admin-customers", params={"id": 999}, json={"rpm_limit": 5}).status_code == 404


def test_list_is_newest_first_searchable_and_paged(admin):
    created = [
        new_customer(admin, f"{name}@example.com")["id"] for name in ("ann", "bob", "cara", "dan", "bo")
    ]
    page1 = ok(admin.get("admin-customers", params={"limit": 2}))
    page2 = ok(admin.get("admin-customers", params={"limit": 2, "cursor": page1["next_cursor"]}))
    page3 = ok(admin.get("admin-customers", params={"limit": 2, "cursor": page2["next_cursor"]}))
    ids = [c["id"] for page in (page1, page2, page3) for c in page["items"]]
    assert ids == sorted(created, reverse=True) and page3["next_cursor"] is None
    found = ok(admin.get("admin-customers", params={"q": "BO"}))["items"]
    assert [c["email"] for c in found] == ["bo@example.com", "bob@example.com"]
    assert ok(admin.get("admin-customers", params={"q": "%"}))["items"] == []
    by_id = ok(admin.get("admin-customers", params={"q": str(created[2])}))["items"]
    assert [c["id"] for c in by_id] == [created[2]]  # an exact id matches too, never a 404
    assert ok(admin.get("admin-customers", params={"q": "999999"}))["items"] == []


def test_list_shows_month_spend_topups_active_keys_and_netlify_token(admin, db):
    customer = new_customer(admin, monthly_cap_cents=1000)
    sub = new_key(admin, customer["id"])
    new_key(admin, customer["id"])
    ok(admin.delete("admin-keys", params={"id": sub["id"]}))
    db.execute(
        "INSERT INTO monthly_usage (customer_id, month, spent_nanos, topup_cents) VALUES (%s, %s, %s, %s)",
        (customer["id"], accounts.current_month(), 15_000_000, 250),
    )
    db.execute(
        "INSERT INTO monthly_usage (customer_id, month, spent_nanos) VALUES (%s, '2020-01', 990000000)",
        (customer["id"],),
    )
    has_table = db.execute("SELECT to_regclass('customer_netlify_tokens') IS NOT NULL AS t").fetchone()["t"]
    if has_table:
        db.execute(
            "INSERT INTO customer_netlify_tokens (customer_id, token_enc, key_id) "
            "VALUES (%s, 'v1.k.n.c', 'k')",
            (customer["id"],),
        )
    [item] = ok(admin.get("admin-customers"))["items"]
    assert item["active_keys"] == 2  # master + one live sub-key; the revoked one does not count
    assert item["month_spent_nanos"] == 15_000_000 and item["month_spent_cents"] == 2  # 1.5 rounds half-up
    assert item["month_topup_cents"] == 250 and item["month_cap_cents"] == 1250
    assert item["has_netlify_token"] is has_table


def test_policy_patch_changes_every_field_and_audits_before_and_after(admin, db):
    customer = new_customer(admin)
    enterprise = ok(admin.post("admin-plans", json={"name": "enterprise", "monthly_cap_cents": 1}), 201)[
        "item"
    ]
    changes = {
        "plan_id": enterprise["id"],
        "monthly_cap_cents": 123_456,
        "is_active": False,
        "max_devices_per_key": 3,
        "require_install_id": True,
        "allowed_providers": ["openai", "gemini", "openai"],
        "allowed_models": {"openai": ["gpt-4o-mini", " gpt-4o "], "*": ["*"]},
        "rpm_limit": 60,
        "rpd_limit": 1000,
    }
    item = ok(admin.patch("admin-customers", params={"id": customer["id"]}, json=changes))["item"]
    assert item["allowed_providers"] == ["openai", "gemini"]
    assert item["allowed_models"] == {"openai": ["gpt-4o-mini", "gpt-4o"], "*": ["*"]}
    for name in ("plan_id", "monthly_cap_cents", "is_active", "max_devices_per_key", "require_install_id"):
        assert item[name] == changes[name], name
    assert item["rpm_limit"] == 60 and item["rpd_limit"] == 1000
    [event] = audit_rows(db, "customer.update")
    assert event["actor"] == "admin" and event["target"] == f"customer:{customer['id']}"
    assert (
        event["details"]["before"]["plan_id"] == customer["plan_id"]
        and event["details"]["after"]["plan_id"] == enterprise["id"]
    )
    assert event["details"]["before"]["allowed_models"] is None
    assert set(event["details"]["after"]) == set(changes)

    cleared = {
        "allowed_providers": None,
        "allowed_models": None,
        "rpm_limit": None,
        "max_devices_per_key": None,
    }
    item = ok(admin.patch("admin-customers", params={"id": customer["id"]}, json=cleared))["item"]
    assert all(item[name] is None for name in cleared)
    ok(admin.patch("admin-customers", params={"id": customer["id"]}, json={"plan_id": enterprise["id"]}))
    assert len(audit_rows(db, "customer.update")) == 2  # an unchanged value writes no audit row


def test_a_failed_patch_changes_nothing(admin, db):
    customer = new_customer(admin)
    before = db.execute("SELECT * FROM customers WHERE id = %s", (customer["id"],)).fetchone()
    response = admin.patch(
        "admin-customers",
        params={"id": customer["id"]},
        json={"monthly_cap_cents": 1, "allowed_models": {"openai": []}},
    )
    assert response.status_code == 400 and response.json()["field"] == "allowed_models"
    assert db.execute("SELECT * FROM customers WHERE id = %s", (customer["id"],)).fetchone() == before
    assert audit_rows(db, "customer.update") == []
    response = admin.patch("admin-customers", params={"id": customer["id"]}, json={})
    assert response.status_code == 400 and response.json()["field"] == "body"


def test_policy_is_enforced_by_the_gateway(admin, server, upstreams):
    customer = new_customer(admin)
    assert chat(server, customer["key"]).status_code == 200
    patch = {"allowed_models": {"openai": ["gpt-4o"]}}
    ok(admin.patch("admin-customers", params={"id": customer["id"]}, json=patch))
    refused = chat(server, customer["key"], model="gpt-4o-mini")
    assert refused.status_code == 403 and refused.json()["code"] == "MODEL_NOT_ALLOWED"
    ok(
        admin.patch(
            "admin-customers", params={"id": customer["id"]}, json={"allowed_providers": ["anthropic"]}
        )
    )
    refused = chat(server, customer["key"], model="gpt-4o")
    assert refused.status_code == 403 and refused.json()["code"] == "PROVIDER_NOT_ALLOWED"
    ok(admin.patch("admin-customers", params={"id": customer["id"]}, json={"is_active": False}))
    refused = chat(server, customer["key"], model="gpt-4o")
    assert refused.status_code == 403 and refused.json()["code"] == "CUSTOMER_DISABLED"
