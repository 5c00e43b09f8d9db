"""admin-topups (idempotent manual credits) and admin-stripe-checkout (against a Stripe fake)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from shared.admin import accounts
from shared.billing.stripe_checkout import topup_months
from tests.support import admin as admin_support
from tests.support.admin import audit_rows, new_customer, ok
from tests.support.fakes.stripe_api import FakeStripe, serve_fake_stripe

admin = admin_support.admin  # the fixture

TOPUP_FIELDS = {
    "id",
    "customer_id",
    "month",
    "amount_cents",
    "source",
    "actor",
    "stripe_session_id",
    "created_at",
}


def _topup_cents(db, customer_id: int, month: str | None = None) -> int:
    row = db.execute(
        "SELECT topup_cents FROM monthly_usage WHERE customer_id = %s AND month = %s",
        (customer_id, month or accounts.current_month()),
    ).fetchone()
    return row["topup_cents"] if row else 0


# ----------------------------------------------------------------------------- manual top-ups


def test_manual_topup_credits_the_month_and_is_audited(admin, db):
    customer = new_customer(admin)
    item = ok(admin.post("admin-topups", json={"customer_id": customer["id"], "amount_cents": 700}), 201)[
        "item"
    ]
    assert set(item) == TOPUP_FIELDS
    assert (item["month"], item["amount_cents"], item["source"], item["actor"]) == (
        accounts.current_month(),
        700,
        "manual",
        "admin",
    )
    later = {"customer_id": customer["id"], "amount_cents": 300, "month": "2031-07"}
    ok(admin.post("admin-topups", json=later), 201)
    assert _topup_cents(db, customer["id"]) == 700 and _topup_cents(db, customer["id"], "2031-07") == 300
    first, _ = audit_rows(db, "topup.create")
    assert first["actor"] == "admin" and first["target"] == f"customer:{customer['id']}"
    assert first["details"] == {"amount_cents": 700, "month": accounts.current_month(), "source": "manual",
                                "topup_id": item["id"]}  # fmt: skip
    listed = ok(admin.get("admin-topups", params={"customer_id": customer["id"]}))
    assert [t["amount_cents"] for t in listed["items"]] == [300, 700] and listed["next_cursor"] is None
    in_month = ok(admin.get("admin-topups", params={"customer_id": customer["id"], "month": "2031-07"}))
    assert [t["amount_cents"] for t in in_month["items"]] == [300]
    assert ok(admin.get("admin-topups", params={"id": item["id"]}))["item"] == item
    assert admin.get("admin-topups", params={"id": 999}).status_code == 404


def test_an_idempotency_key_makes_a_retried_click_credit_once(admin, db):
    customer = new_customer(admin)
    body = {"customer_id": customer["id"], "amount_cents": 500}
    headers = {"Idempotency-Key": "click-1"}
    first = admin.post("admin-topups", json=body, headers=headers)
    again = admin.post("admin-topups", json=body, headers=headers)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["item"] == first.json()["item"]
    mismatch = admin.post("admin-topups", json={**body, "amount_cents": 501}, headers=headers)
    assert mismatch.status_code == 409 and mismatch.json()["code"] == "IDEMPOTENCY_MISMATCH"
    other = admin.post("admin-topups", json=body, headers={"Idempotency-Key": "click-2"})
    assert other.status_code == 201 and other.json()["item"]["id"] != first.json()["item"]["id"]
    assert _topup_cents(db, customer["id"]) == 1000
    assert len(audit_rows(db, "topup.create")) == 2


def test_ten_concurrent_posts_with_one_idempotency_key_credit_once(admin, db, server):
    customer = new_customer(admin)
    body = {"customer_id": customer["id"], "amount_cents": 900}

    def post(_: int) -> httpx.Response:
        return httpx.post(
            f"{server}/.netlify/functions/admin-topups",
            json=body,
            headers={"Idempotency-Key": "double-click", "x-admin-password": admin_support.ADMIN_PASSWORD},
            timeout=30,
        )

    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(post, range(10)))
    assert sorted(r.status_code for r in responses) == [200] * 9 + [201]
    assert len({r.json()["item"]["id"] for r in responses}) == 1
    assert _topup_cents(db, customer["id"]) == 900
    assert db.execute("SELECT count(*) AS n FROM topups").fetchone()["n"] == 1


def test_a_failed_topup_leaves_nothing_behind(admin, db):
    headers = {"Idempotency-Key": "for-a-missing-customer"}
    response = admin.post("admin-topups", json={"customer_id": 999, "amount_cents": 100}, headers=headers)
    assert response.status_code == 404
    for table in ("topups", "monthly_usage", "idempotency_keys", "audit_events"):
        assert db.execute(f"SELECT count(*) AS n FROM {table}").fetchone()["n"] == 0, table
    customer = new_customer(admin)  # the key was not consumed by the failure
    retry = admin.post(
        "admin-topups", json={"customer_id": customer["id"], "amount_cents": 100}, headers=headers
    )
    assert retry.status_code == 201


# ----------------------------------------------------------------------------- Stripe Checkout


@pytest.fixture(scope="module")
def stripe_server() -> Iterator[FakeStripe]:
    yield from serve_fake_stripe()


@pytest.fixture
def stripe_api(stripe_server: FakeStripe, configure) -> FakeStripe:
    stripe_server.reset()
    configure(STRIPE_SECRET_KEY=stripe_server.secret_key, STRIPE_API_BASE=stripe_server.url)
    return stripe_server


def test_checkout_without_a_stripe_key_is_501(admin):
    customer = new_customer(admin)
    response = admin.post("admin-stripe-checkout", json={"customer_id": customer["id"], "amount_cents": 500})
    assert response.status_code == 501 and response.json()["code"] == "STRIPE_NOT_CONFIGURED"


def test_checkout_creates_a_session_through_the_sdk(admin, db, stripe_api):
    customer = new_customer(admin, "payer@example.com")
    month = accounts.current_month()
    response = admin.post("admin-stripe-checkout", json={"customer_id": customer["id"], "amount_cents": 1500})
    item = ok(response, 201)["item"]
    assert item["session_id"].startswith("cs_test_") and item["url"].startswith(
        "https://checkout.stripe.com/"
    )
    assert (item["amount_cents"], item["currency"], item["month"]) == (1500, "usd", month)

    [request] = stripe_api.requests
    assert (request.method, request.path) == ("POST", "/v1/checkout/sessions")
    assert request.headers["authorization"] == f"Bearer {stripe_api.secret_key}"
    form = request.form
    assert form["mode"] == "payment" and form["client_reference_id"] == str(customer["id"])
    assert form["line_items"] == [
        {
            "quantity": "1",
            "price_data": {
                "currency": "usd",
                "unit_amount": "1500",
                "product_data": {"name": f"Kaixu top-up ({month})"},
            },
        }
    ]
    assert form["metadata"] == {"customer_id": str(customer["id"]), "month": month, "amount_cents": "1500"}
    assert form["customer_email"] == "payer@example.com"
    assert form["success_url"] == "http://127.0.0.1:8888/?topup=success"
    assert form["cancel_url"] == "http://127.0.0.1:8888/?topup=cancel"
    assert stripe_api.session(item["session_id"])["amount_total"] == 1500
    [event] = audit_rows(db, "stripe.checkout")
    assert (
        event["target"] == f"customer:{customer['id']}"
        and event["details"]["session_id"] == item["session_id"]
    )
    assert db.execute("SELECT count(*) AS n FROM topups").fetchone()["n"] == 0  # paid later, via the webhook


def test_checkout_uses_the_configured_currency_urls_and_next_month(admin, configure, stripe_api):
    configure(
        STRIPE_CURRENCY="EUR",
        STRIPE_SUCCESS_URL="https://ops.example.com/paid",
        PUBLIC_APP_ORIGIN="https://admin.example.com",
    )
    customer = new_customer(admin)
    next_month = topup_months()[1]
    body = {"customer_id": customer["id"], "amount_cents": 800, "month": next_month}
    item = ok(admin.post("admin-stripe-checkout", json=body), 201)["item"]
    assert item["currency"] == "eur" and item["month"] == next_month
    form = stripe_api.requests[-1].form
    assert form["line_items"][0]["price_data"]["currency"] == "eur"
    assert form["metadata"]["month"] == next_month
    assert form["success_url"] == "https://ops.example.com/paid"
    assert form["cancel_url"] == "https://admin.example.com/?topup=cancel"


def test_stripe_errors_are_502_with_stripes_message_and_no_secret(admin, configure, db, stripe_api):
    customer = new_customer(admin)
    too_small = admin.post("admin-stripe-checkout", json={"customer_id": customer["id"], "amount_cents": 10})
    assert too_small.status_code == 502 and too_small.json()["code"] == "STRIPE_ERROR"
    assert "at least $0.50" in too_small.json()["error"] and too_small.json()["stripe_status"] == 400

    stripe_api.fail_next(402, "card_error", "Your card was declined.", code="card_declined")
    declined = admin.post("admin-stripe-checkout", json={"customer_id": customer["id"], "amount_cents": 900})
    assert declined.status_code == 502 and "Your card was declined." in declined.json()["error"]

    wrong_key = "sk_test_wrong_secret_value_123456"
    configure(STRIPE_SECRET_KEY=wrong_key)
    refused = admin.post("admin-stripe-checkout", json={"customer_id": customer["id"], "amount_cents": 900})
    assert refused.status_code == 502 and "Invalid API Key" in refused.json()["error"]
    assert wrong_key not in refused.text and stripe_api.secret_key not in refused.text
    assert audit_rows(db, "stripe.checkout") == []


def test_checkout_refuses_unknown_customers_and_other_months_before_calling_stripe(admin, stripe_api):
    customer = new_customer(admin)
    missing = admin.post("admin-stripe-checkout", json={"customer_id": 999, "amount_cents": 500})
    assert missing.status_code == 404
    past = admin.post(
        "admin-stripe-checkout", json={"customer_id": customer["id"], "amount_cents": 500, "month": "2020-01"}
    )
    assert past.status_code == 400 and past.json()["field"] == "month"
    assert stripe_api.requests == []


def test_checkout_forwards_the_idempotency_key_so_a_retry_reuses_the_session(admin, stripe_api):
    customer = new_customer(admin)
    body = {"customer_id": customer["id"], "amount_cents": 500}
    headers = {"Idempotency-Key": "checkout-click-1"}
    first = ok(admin.post("admin-stripe-checkout", json=body, headers=headers), 201)["item"]
    second = ok(admin.post("admin-stripe-checkout", json=body, headers=headers), 201)["item"]
    assert first["session_id"] == second["session_id"]
    assert {r.headers["idempotency-key"] for r in stripe_api.requests} == {"kaixu-checkout-checkout-click-1"}
    changed = admin.post("admin-stripe-checkout", json={**body, "amount_cents": 600}, headers=headers)
    assert changed.status_code == 409 and changed.json()["code"] == "IDEMPOTENCY_MISMATCH"
