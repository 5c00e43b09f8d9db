"""Tenant isolation of the customer portal: Bob, signed in, tries every ``customer-*``
endpoint and action with Alice's ids. Every answer is 404 (or 400/403 where the request
itself is refused), never Alice's data, and no table changes but the monitor's own rows."""

from __future__ import annotations

from typing import Any

import pytest

from shared.admin import accounts
from tests.support import admin as admin_support
from tests.support.admin import chat, new_key, ok
from tests.support.portal import Customer, sign_in

admin = admin_support.admin

# What a request writes whatever it is: its monitor row (and the admin's own calls' rows).
NOT_COMPARED = {"gateway_events"}


def tables(db: Any) -> list[str]:
    rows = db.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
        "AND table_type = 'BASE TABLE' ORDER BY 1"
    ).fetchall()
    return [row["table_name"] for row in rows if row["table_name"] not in NOT_COMPARED]


def snapshot(db: Any) -> dict[str, list[dict[str, Any]]]:
    return {table: db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall() for table in tables(db)}


@pytest.fixture
def alice_and_bob(
    server: str, admin: Any, upstreams: Any, db: Any
) -> tuple[Customer, Customer, dict[str, Any]]:
    upstreams.script("openai", input_tokens=1_000, output_tokens=10)
    alice = sign_in(server, admin, "alice@example.com")
    bob = sign_in(server, admin, "bob@example.com")
    sub = new_key(admin, alice.customer_id, label="alice's app", role="caller")
    assert chat(server, sub["key"], install_id="alice-phone").status_code == 200
    month = accounts.current_month()
    draft = ok(admin.post("admin-invoices", json={"customer_id": alice.customer_id, "month": month}), 201)
    invoice = ok(admin.patch("admin-invoices", params={"id": draft["item"]["id"]}, json={"status": "issued"}))
    ids = {"key": sub["id"], "master": alice.master_key_id, "invoice": invoice["item"]["id"]}
    return alice, bob, ids


def attempts(ids: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], dict[str, Any] | None]]:
    """(method, function, query, JSON body) of every request that names one of Alice's ids."""
    device = f"{ids['key']}:alice-phone"
    return [
        ("GET", "customer-usage", {"api_key_id": ids["key"]}, None),
        ("GET", "customer-usage", {"api_key_id": ids["key"], "format": "csv"}, None),
        ("GET", "customer-invoices", {"id": ids["invoice"]}, None),
        ("GET", "customer-invoices", {"id": ids["invoice"], "format": "html"}, None),
        ("GET", "customer-devices", {"api_key_id": ids["key"]}, None),
        ("POST", "customer-devices", {"action": "revoke", "id": device}, None),
        ("POST", "customer-devices", {"action": "unrevoke", "id": device}, None),
        (
            "POST",
            "customer-devices",
            {"action": "revoke"},
            {"api_key_id": ids["key"], "install_id": "alice-phone"},
        ),
        ("GET", "customer-keys", {"id": ids["key"]}, None),
        ("POST", "customer-keys", {"id": ids["key"], "action": "rotate"}, None),
        ("POST", "customer-keys", {"id": ids["key"], "action": "revoke"}, None),
        ("POST", "customer-keys", {"id": ids["master"], "action": "rotate"}, None),
        ("PATCH", "customer-keys", {"id": ids["key"]}, {"label": "mine now"}),
        ("PATCH", "customer-keys", {"id": ids["master"]}, {"rpm_limit": 1}),
    ]


def test_another_customers_ids_are_never_found_and_nothing_is_written(alice_and_bob, db):
    alice, bob, ids = alice_and_bob
    before = snapshot(db)
    for method, function, query, body in attempts(ids):
        response = bob.http.request(method, function, params=query, json=body)
        assert response.status_code == 404, (method, function, query, response.text)
        assert response.json()["code"] == "NOT_FOUND" and "alice@example.com" not in response.text
    assert snapshot(db) == before
    # Alice, doing the same, is answered: the ids were real.
    assert alice.http.get("customer-keys", params={"id": ids["key"]}).status_code == 200
    assert alice.http.get("customer-invoices", params={"id": ids["invoice"]}).status_code == 200


def test_lists_hold_only_the_customers_own_rows(alice_and_bob, db):
    alice, bob, _ = alice_and_bob
    before = snapshot(db)
    for function, query in (
        ("customer-usage", {}),
        ("customer-invoices", {}),
        ("customer-devices", {}),
        ("customer-kaixupush", {"view": "deploys"}),
        ("customer-kaixupush", {"view": "charges"}),
    ):
        assert ok(bob.http.get(function, params=query))["items"] == [], function
    [bobs_key] = ok(bob.http.get("customer-keys"))["items"]
    assert bobs_key["id"] == bob.master_key_id
    summary = ok(bob.http.get("customer-summary", params={"customer_id": alice.customer_id}))["item"]
    assert summary["customer"]["id"] == bob.customer_id and summary["totals"]["calls"] == 0
    assert snapshot(db) == before


def test_a_top_up_cannot_name_another_customer(alice_and_bob, configure):
    alice, bob, _ = alice_and_bob
    configure(STRIPE_SECRET_KEY="sk_test_never_called")
    response = bob.http.post("customer-topup", json={"amount_cents": 500, "customer_id": alice.customer_id})
    assert response.status_code == 400 and response.json()["field"] == "customer_id"
