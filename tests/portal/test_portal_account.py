"""The customer API as a customer uses it: the month, usage (and its CSV), invoices, devices,
KaixuPush history and self-serve top-ups, each from real gateway calls or rows the operator's
own flows wrote; and never the operator's side of the ledger (provider cost, margin)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest

from shared.admin import accounts
from tests.support import admin as admin_support
from tests.support.admin import audit_rows, chat, new_key, ok
from tests.support.fakes.stripe_api import FakeStripe, serve_fake_stripe
from tests.support.portal import Customer, sign_in

admin = admin_support.admin

# gpt-4o-mini at list price: $0.15 / $0.60 per million tokens = 150 / 600 nanos per token.
CALL_NANOS = 100_000 * 150 + 10 * 600  # 1.5006 cents


@pytest.fixture
def alice(server: str, admin: Any) -> Customer:
    return sign_in(server, admin, "alice@example.com", monthly_cap_cents=1_000)


def _calls(server: str, upstreams: Any, alice: Customer, admin: Any) -> dict[str, Any]:
    upstreams.script("openai", input_tokens=100_000, output_tokens=10)
    sub = new_key(admin, alice.customer_id, label="phone app")
    for key, install in ((alice.master_key, "laptop"), (sub["key"], "phone"), (sub["key"], "tablet")):
        assert chat(server, key, install_id=install, app="web").status_code == 200
    return sub


def _costless(value: Any) -> None:
    text = str(value)
    assert "cost" not in text and "margin" not in text and "price_version" not in text


def test_the_month_shows_spend_against_the_cap_per_key_and_per_day(server, admin, upstreams, alice):
    sub = _calls(server, upstreams, alice, admin)
    ok(admin.post("admin-topups", json={"customer_id": alice.customer_id, "amount_cents": 250}), 201)
    item = ok(alice.http.get("customer-summary"))["item"]
    _costless(item)
    assert item["month"] == accounts.current_month()
    assert item["customer"] == {
        "id": alice.customer_id,
        "email": "alice@example.com",
        "plan": "starter",
        "stripe_topups": True,
        "prepaid": False,
    }
    totals = item["totals"]
    spent = 3 * CALL_NANOS
    assert (totals["base_cap_cents"], totals["topup_cents"], totals["cap_cents"]) == (1_000, 250, 1_250)
    assert totals["spent_nanos"] == spent and totals["spent_cents"] == 5  # 4.5018 cents, rounded once
    assert totals["remaining_cents"] == 1_245  # 1,250 cents less 4.5018, rounded once
    assert (totals["calls"], totals["tokens"], totals["included_credit_cents"]) == (3, 300_030, 0)
    keys = {row["api_key_id"]: row for row in item["keys"]}
    assert keys[sub["id"]]["spent_nanos"] == 2 * CALL_NANOS and keys[alice.master_key_id]["calls"] == 1
    [day] = item["days"]
    assert day["sell_nanos"] == spent and day["sell_cents"] == 5 and day["calls"] == 3


def test_usage_lists_filters_pages_and_exports_without_costs(server, admin, upstreams, alice):
    sub = _calls(server, upstreams, alice, admin)
    page = ok(alice.http.get("customer-usage", params={"limit": 2}))
    assert len(page["items"]) == 2 and page["next_cursor"]
    _costless(page)
    newest = page["items"][0]
    assert (
        newest["sell_nanos"] == CALL_NANOS and newest["sell_cents"] == 2 and newest["install_id"] == "tablet"
    )
    assert (newest["clamped_to"], newest["stopped_code"]) == (None, None)  # neither clamped nor stopped
    rest = ok(alice.http.get("customer-usage", params={"limit": 2, "cursor": page["next_cursor"]}))
    assert [e["install_id"] for e in rest["items"]] == ["laptop"] and rest["next_cursor"] is None
    mine = ok(alice.http.get("customer-usage", params={"api_key_id": sub["id"]}))["items"]
    assert {e["api_key_id"] for e in mine} == {sub["id"]} and len(mine) == 2
    assert ok(alice.http.get("customer-usage", params={"model": "gpt-4o"}))["items"] == []

    download = alice.http.get("customer-usage", params={"format": "csv", "month": accounts.current_month()})
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    assert f"kaixu-usage-{accounts.current_month()}.csv" in download.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert [row["install_id"] for row in rows] == ["laptop", "phone", "tablet"]
    assert rows[0]["sell_nanos"] == str(CALL_NANOS) and rows[0]["sell_cents"] == "2"
    assert (rows[0]["clamped_to"], rows[0]["stopped_code"]) == ("", "")
    _costless(download.text)


@pytest.mark.parametrize(
    ("function", "query", "field"),
    [
        ("customer-usage", {"month": "2026-13"}, "month"),
        ("customer-usage", {"provider": "mistral"}, "provider"),
        ("customer-usage", {"api_key_id": "x"}, "api_key_id"),
        ("customer-usage", {"limit": "100000"}, "limit"),
        ("customer-usage", {"cursor": "!!"}, "cursor"),
        ("customer-usage", {"format": "xml"}, "format"),
        ("customer-summary", {"month": "last"}, "month"),
        ("customer-invoices", {"format": "pdf"}, "format"),
        ("customer-invoices", {"format": "html"}, "format"),
        ("customer-invoices", {"id": "-1"}, "id"),
        ("customer-kaixupush", {"view": "jobs"}, "view"),
        ("customer-devices", {"api_key_id": "0"}, "api_key_id"),
        ("customer-keys", {"id": "abc"}, "id"),
    ],
)
def test_bad_queries_get_400_naming_the_field(alice, function, query, field):
    response = alice.http.get(function, params=query)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field and response.json()["request_id"]


def test_only_issued_invoices_are_shown_and_never_the_operators_cost(server, admin, upstreams, alice, db):
    _calls(server, upstreams, alice, admin)
    month = accounts.current_month()
    draft = ok(admin.post("admin-invoices", json={"customer_id": alice.customer_id, "month": month}), 201)
    assert ok(alice.http.get("customer-invoices"))["items"] == []
    assert alice.http.get("customer-invoices", params={"id": draft["item"]["id"]}).status_code == 404
    ok(admin.patch("admin-invoices", params={"id": draft["item"]["id"]}, json={"status": "issued"}))

    [listed] = ok(alice.http.get("customer-invoices"))["items"]
    assert (listed["id"], listed["status"], listed["number"]) == (draft["item"]["id"], "issued", 1)
    item = ok(alice.http.get("customer-invoices", params={"id": listed["id"]}))["item"]
    _costless(item)
    assert item["snapshot"]["totals"]["usage_nanos"] == 3 * CALL_NANOS
    printable = alice.http.get("customer-invoices", params={"id": listed["id"], "format": "html"})
    assert printable.status_code == 200 and printable.headers["content-type"].startswith("text/html")
    assert "alice@example.com" in printable.text and "Invoice" in printable.text


def test_kaixupush_history_and_charges_are_the_customers_own(alice, db):
    db.execute(
        "INSERT INTO push_pushes (push_id, customer_id, project_id, netlify_site_id, branch, title, state,"
        " url, manifest, file_count) VALUES ('push_a', %s, 'site-a', 'n1', 'main', 'first', 'ready',"
        " 'https://a.example', '{}', 3)",
        (alice.customer_id,),
    )
    db.execute(
        "INSERT INTO push_invoices (customer_id, month, pricing_version, total_cents, total_nanos, deploys,"
        " bytes, breakdown) VALUES (%s, %s, 1, 35, 350000000, 1, 2048, '{}')",
        (alice.customer_id, accounts.current_month()),
    )
    [deploy] = ok(alice.http.get("customer-kaixupush"))["items"]
    assert (deploy["push_id"], deploy["state"], deploy["url"]) == ("push_a", "ready", "https://a.example")
    [charge] = ok(alice.http.get("customer-kaixupush", params={"view": "charges"}))["items"]
    assert (charge["total_cents"], charge["deploys"], charge["bytes"]) == (35, 1, 2048)


def test_a_customer_revokes_and_unrevokes_its_own_devices(server, admin, upstreams, alice, db):
    sub = _calls(server, upstreams, alice, admin)
    devices = ok(alice.http.get("customer-devices", params={"api_key_id": sub["id"]}))["items"]
    assert [d["install_id"] for d in devices] == ["tablet", "phone"]
    revoked = ok(alice.http.post("customer-devices", params={"action": "revoke", "id": f"{sub['id']}:phone"}))
    assert (
        revoked["item"]["revoked_at"]
        and revoked["item"]["revoked_by"] == f"customer:{alice.customer_id}/key:{alice.master_key_id}"
    )
    refused = chat(server, sub["key"], install_id="phone")
    assert refused.status_code == 403 and refused.json()["code"] == "DEVICE_REVOKED"
    ok(alice.http.post("customer-devices", params={"action": "unrevoke", "id": f"{sub['id']}:phone"}))
    assert chat(server, sub["key"], install_id="phone").status_code == 200
    assert [e["actor"] for e in audit_rows(db, "device.revoke")] == [revoked["item"]["revoked_by"]]
    bad = alice.http.post("customer-devices", params={"action": "wipe", "id": f"{sub['id']}:phone"})
    assert bad.status_code == 400 and bad.json()["field"] == "action"


# ----------------------------------------------------------------------------- top-ups


@pytest.fixture(scope="module")
def stripe_server() -> Iterator[FakeStripe]:
    yield from serve_fake_stripe()


@pytest.fixture
def stripe_api(stripe_server: FakeStripe, configure: Any) -> FakeStripe:
    stripe_server.reset()
    configure(STRIPE_SECRET_KEY=stripe_server.secret_key, STRIPE_API_BASE=stripe_server.url)
    return stripe_server


def test_a_top_up_is_a_checkout_for_this_customer_returning_to_the_portal(alice, stripe_api, db):
    item = ok(alice.http.post("customer-topup", json={"amount_cents": 2_000}), 201)["item"]
    assert item["url"].startswith("https://checkout.stripe.com/") and item["amount_cents"] == 2_000
    form = stripe_api.requests[-1].form
    assert form["metadata"]["customer_id"] == str(alice.customer_id)
    assert (
        form["success_url"] == "http://127.0.0.1:8888/account?topup=success&session_id={CHECKOUT_SESSION_ID}"
    )
    assert form["cancel_url"] == "http://127.0.0.1:8888/account?topup=cancel"
    [event] = audit_rows(db, "stripe.checkout")
    assert event["actor"].startswith(f"customer:{alice.customer_id}/")
    assert db.execute("SELECT count(*) AS n FROM topups").fetchone()["n"] == 0  # credited by the webhook


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"amount_cents": 0},
        {"amount_cents": "500"},
        {"amount_cents": 500, "customer_id": 1},
        {"amount_cents": 500, "month": "1999-01"},
    ],
)
def test_bad_top_ups_are_400_before_stripe_is_called(alice, stripe_api, body):
    response = alice.http.post("customer-topup", json=body)
    assert response.status_code == 400 and response.json()["field"]
    assert stripe_api.requests == []


def test_a_plan_without_stripe_top_ups_refuses_them(alice, admin, stripe_api):
    plan = ok(
        admin.post(
            "admin-plans", json={"name": "Invoice only", "monthly_cap_cents": 500, "stripe_topups": False}
        ),
        201,
    )
    ok(admin.patch(f"admin-customers?id={alice.customer_id}", json={"plan_id": plan["item"]["id"]}))
    refused = alice.http.post("customer-topup", json={"amount_cents": 500})
    assert refused.status_code == 409 and refused.json()["code"] == "TOPUPS_NOT_ALLOWED"
    assert stripe_api.requests == []
