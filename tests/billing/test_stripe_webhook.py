"""stripe-webhook: signed events credit a paid Checkout Session exactly once.

Payloads are signed with Stripe's real scheme (``t=<ts>,v1=<hex HMAC-SHA256(secret,
"<ts>.<body>")>``), computed here independently of the SDK the server uses to verify them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from shared.admin import accounts
from shared.billing.stripe_checkout import topup_months
from tests.support import admin as admin_support
from tests.support.admin import audit_rows, new_customer, ok
from tests.support.fakes.stripe_api import FakeStripe, serve_fake_stripe

admin = admin_support.admin  # the fixture

SECRET = "whsec_test_0123456789abcdef0123456789abcdef"
URL = "/.netlify/functions/stripe-webhook"


@pytest.fixture
def webhook(server: str, configure) -> Iterator[httpx.Client]:
    configure(STRIPE_WEBHOOK_SECRET=SECRET)
    with httpx.Client(base_url=server, timeout=30) as http:
        yield http


def sign(payload: bytes, secret: str = SECRET, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def session_event(customer_id: int | None, **session: Any) -> dict[str, Any]:
    event_type = session.pop("event_type", "checkout.session.completed")
    metadata = {"customer_id": str(customer_id), "month": accounts.current_month(), "amount_cents": "500"}
    body = {
        "id": "cs_test_" + secrets.token_hex(16),
        "object": "checkout.session",
        "amount_total": 500,
        "currency": "usd",
        "client_reference_id": str(customer_id),
        "metadata": metadata,
        "mode": "payment",
        "payment_status": "paid",
        "status": "complete",
        **session,
    }
    return {
        "id": "evt_" + secrets.token_hex(12),
        "object": "event",
        "type": event_type,
        "data": {"object": body},
    }


def deliver(http: httpx.Client, event: dict[str, Any], **sign_options: Any) -> httpx.Response:
    payload = json.dumps(event).encode()
    return http.post(
        URL,
        content=payload,
        headers={"stripe-signature": sign(payload, **sign_options), "content-type": "application/json"},
    )


def _credits(db) -> list[dict[str, Any]]:
    return db.execute("SELECT * FROM topups ORDER BY id").fetchall()


def test_a_paid_session_credits_once_and_is_audited(admin, db, webhook):
    customer = new_customer(admin)
    event = session_event(customer["id"], amount_total=1234)
    response = deliver(webhook, event)
    assert ok(response) == {"received": True, "credited": True, "topup_id": 1}
    [topup] = _credits(db)
    session_id = event["data"]["object"]["id"]
    assert (topup["customer_id"], topup["amount_cents"], topup["source"], topup["actor"]) == (
        customer["id"],
        1234,
        "stripe",
        "stripe",
    )
    assert topup["stripe_session_id"] == session_id and topup["month"] == accounts.current_month()
    usage = db.execute(
        "SELECT topup_cents FROM monthly_usage WHERE customer_id = %s", (customer["id"],)
    ).fetchone()
    assert usage["topup_cents"] == 1234
    [audit] = audit_rows(db, "topup.create")
    assert audit["actor"] == "stripe" and audit["target"] == f"customer:{customer['id']}"
    assert audit["details"]["stripe_session_id"] == session_id
    claimed = db.execute("SELECT * FROM stripe_events").fetchone()
    assert claimed["event_id"] == event["id"] and claimed["topup_id"] == topup["id"]
    listed = ok(admin.get("admin-topups", params={"customer_id": customer["id"]}))["items"]
    assert listed[0]["stripe_session_id"] == session_id and listed[0]["source"] == "stripe"


def test_bad_missing_or_stale_signatures_are_400_and_credit_nothing(admin, db, webhook):
    customer = new_customer(admin)
    event = session_event(customer["id"])
    payload = json.dumps(event).encode()
    cases = {
        "wrong secret": sign(payload, secret="whsec_other"),
        "stale": sign(payload, timestamp=int(time.time()) - 301),
        "tampered": sign(payload.replace(b"500", b"900")),
        "garbage": "t=abc,v1=def",
    }
    for name, signature in cases.items():
        response = webhook.post(URL, content=payload, headers={"stripe-signature": signature})
        assert response.status_code == 400 and response.json()["code"] == "INVALID_SIGNATURE", name
    tampered_body = payload.replace(b"500", b"900")
    response = webhook.post(URL, content=tampered_body, headers={"stripe-signature": sign(payload)})
    assert response.status_code == 400
    assert webhook.post(URL, content=payload).status_code == 400  # no header at all
    assert _credits(db) == []
    assert (
        deliver(webhook, event, timestamp=int(time.time()) - 290).status_code == 200
    )  # inside the tolerance


def test_without_a_webhook_secret_the_endpoint_is_501(server):
    payload = json.dumps(session_event(1)).encode()
    response = httpx.post(f"{server}{URL}", content=payload, headers={"stripe-signature": sign(payload)})
    assert response.status_code == 501 and response.json()["code"] == "STRIPE_NOT_CONFIGURED"


def test_the_same_event_ten_times_in_sequence_credits_once(admin, db, webhook):
    customer = new_customer(admin)
    event = session_event(customer["id"])
    bodies = [ok(deliver(webhook, event)) for _ in range(10)]
    assert bodies[0]["credited"] is True
    assert all(body == {"received": True, "duplicate": True} for body in bodies[1:])
    assert len(_credits(db)) == 1 and len(audit_rows(db, "topup.create")) == 1


def test_the_same_event_ten_times_concurrently_credits_once(admin, db, server, webhook):
    customer = new_customer(admin)
    event = session_event(customer["id"], amount_total=777)
    payload = json.dumps(event).encode()
    headers = {"stripe-signature": sign(payload)}

    def post(_: int) -> httpx.Response:
        return httpx.post(f"{server}{URL}", content=payload, headers=headers, timeout=30)

    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(post, range(10)))
    assert [r.status_code for r in responses] == [200] * 10
    assert sum(1 for r in responses if r.json().get("credited")) == 1
    [topup] = _credits(db)
    assert topup["amount_cents"] == 777
    usage = db.execute(
        "SELECT topup_cents FROM monthly_usage WHERE customer_id = %s", (customer["id"],)
    ).fetchone()
    assert usage["topup_cents"] == 777


def test_a_second_event_for_the_same_session_credits_nothing(admin, db, webhook):
    customer = new_customer(admin)
    first = session_event(customer["id"])
    again = {**first, "id": "evt_other", "type": "checkout.session.async_payment_succeeded"}
    assert ok(deliver(webhook, first))["credited"] is True
    assert ok(deliver(webhook, again)) == {"received": True, "duplicate": True}
    assert len(_credits(db)) == 1


def test_unpaid_completion_waits_for_async_payment_succeeded(admin, db, webhook):
    customer = new_customer(admin)
    completed = session_event(customer["id"], payment_status="unpaid")
    assert ok(deliver(webhook, completed)) == {"received": True, "ignored": True}
    assert _credits(db) == []
    succeeded = {**completed, "id": "evt_async", "type": "checkout.session.async_payment_succeeded"}
    succeeded["data"] = {"object": {**completed["data"]["object"], "payment_status": "paid"}}
    assert ok(deliver(webhook, succeeded))["credited"] is True
    assert [t["amount_cents"] for t in _credits(db)] == [500]


def test_other_events_and_unusable_sessions_are_acknowledged_without_credit(admin, db, webhook):
    customer = new_customer(admin)
    other = {"id": "evt_1", "object": "event", "type": "payment_intent.succeeded", "data": {"object": {}}}
    assert ok(deliver(webhook, other)) == {"received": True, "ignored": True}
    expired = session_event(customer["id"], event_type="checkout.session.expired", payment_status="unpaid")
    assert ok(deliver(webhook, expired)) == {"received": True, "ignored": True}
    unknown = session_event(999)
    assert ok(deliver(webhook, unknown)) == {"received": True, "ignored": True}
    yen = session_event(customer["id"], currency="jpy")
    assert ok(deliver(webhook, yen)) == {"received": True, "ignored": True}
    nobody = session_event(None, metadata={}, client_reference_id=None)
    assert ok(deliver(webhook, nobody)) == {"received": True, "ignored": True}
    assert _credits(db) == []
    reasons = [row["details"]["reason"] for row in audit_rows(db, "stripe.event_ignored")]
    assert reasons == [
        "customer 999 does not exist",
        "currency 'jpy' is not 'usd'",
        "the session carries no metadata.customer_id (it was not created by this gateway)",
    ]


def test_the_credited_month_is_the_asked_one_only_if_current_or_next(admin, db, webhook):
    customer = new_customer(admin)
    current, following = topup_months()
    for asked in ("2020-01", following, "2999-12"):
        metadata = {"customer_id": str(customer["id"]), "month": asked}
        assert ok(deliver(webhook, session_event(customer["id"], metadata=metadata)))["credited"] is True
    assert [t["month"] for t in _credits(db)] == [current, following, current]


def test_a_session_without_our_metadata_credits_nothing(admin, db, webhook):
    """A payment link anyone made can carry a client_reference_id; only our sessions carry
    metadata.customer_id."""
    customer = new_customer(admin)
    event = session_event(customer["id"], metadata={})
    assert ok(deliver(webhook, event))["ignored"] is True
    assert _credits(db) == []
    [ignored] = audit_rows(db, "stripe.event_ignored")
    assert "metadata.customer_id" in ignored["details"]["reason"]


def charge_event(event_type: str, intent: str, cents: int) -> dict[str, Any]:
    """A refund (``charge.refunded``, its running total) or a dispute (its amount)."""
    if event_type == "charge.refunded":
        obj = {
            "id": "ch_" + secrets.token_hex(8),
            "object": "charge",
            "payment_intent": intent,
            "amount": 500,
            "amount_refunded": cents,
            "refunded": cents == 500,
            "currency": "usd",
        }
    else:
        obj = {
            "id": "dp_" + secrets.token_hex(8),
            "object": "dispute",
            "payment_intent": intent,
            "amount": cents,
            "currency": "usd",
            "status": "needs_response",
        }
    return {
        "id": "evt_" + secrets.token_hex(12),
        "object": "event",
        "type": event_type,
        "data": {"object": obj},
    }


def _cap(admin, customer_id: int) -> int:
    summary = ok(admin.get("admin-usage", params={"customer_id": customer_id, "view": "summary"}))["item"]
    return summary["totals"]["cap_cents"]


def test_a_refund_takes_back_what_it_returned_and_never_more(admin, db, webhook):
    customer = new_customer(admin, monthly_cap_cents=1000)
    assert ok(deliver(webhook, session_event(customer["id"], payment_intent="pi_refund")))["credited"] is True
    assert _cap(admin, customer["id"]) == 1500
    partial = charge_event("charge.refunded", "pi_refund", 200)
    assert ok(deliver(webhook, partial))["reversed_cents"] == 200
    assert ok(deliver(webhook, partial))["duplicate"] is True  # redelivered: once
    assert ok(deliver(webhook, charge_event("charge.refunded", "pi_refund", 500)))["reversed_cents"] == 300
    dispute = charge_event("charge.dispute.created", "pi_refund", 500)  # nothing left to take
    assert ok(deliver(webhook, dispute))["reversed_cents"] == 0
    assert [(t["amount_cents"], t["source"]) for t in _credits(db)] == [
        (500, "stripe"),
        (-200, "stripe_reversal"),
        (-300, "stripe_reversal"),
    ]
    assert _cap(admin, customer["id"]) == 1000
    audits = audit_rows(db, "stripe.refunded")
    assert [a["details"]["reversed_cents"] for a in audits] == [200, 300]


def test_a_dispute_takes_the_credit_back(admin, db, webhook):
    customer = new_customer(admin, monthly_cap_cents=1000)
    ok(deliver(webhook, session_event(customer["id"], payment_intent="pi_dispute")))
    assert (
        ok(deliver(webhook, charge_event("charge.dispute.created", "pi_dispute", 500)))["reversed_cents"]
        == 500
    )
    assert _cap(admin, customer["id"]) == 1000
    [audit] = audit_rows(db, "stripe.dispute.created")
    assert audit["details"]["below_zero"] is False


def test_a_reversal_of_an_old_credit_lands_on_this_month_and_says_it_went_below_zero(admin, db, webhook):
    customer = new_customer(admin, monthly_cap_cents=1000)
    db.execute(
        "INSERT INTO stripe_events (event_id, session_id, event_type, customer_id, amount_cents, month,"
        " payment_intent) VALUES ('evt_old', 'cs_old', 'checkout.session.completed', %s, 500, '2020-01',"
        " 'pi_old')",
        (customer["id"],),
    )
    assert ok(deliver(webhook, charge_event("charge.refunded", "pi_old", 500)))["reversed_cents"] == 500
    assert _cap(admin, customer["id"]) == 500  # this month's cap carries what was refunded
    [audit] = audit_rows(db, "stripe.refunded")
    assert audit["details"]["below_zero"] is True and audit["details"]["month"] == accounts.current_month()


def test_a_refund_of_a_payment_we_never_credited_is_ignored_and_audited(admin, db, webhook):
    assert ok(deliver(webhook, charge_event("charge.refunded", "pi_unknown", 500)))["ignored"] is True
    assert _credits(db) == [] and len(audit_rows(db, "stripe.event_ignored")) == 1


@pytest.fixture
def stripe_api(configure) -> Iterator[FakeStripe]:
    for fake in serve_fake_stripe():
        configure(STRIPE_SECRET_KEY=fake.secret_key, STRIPE_API_BASE=fake.url)
        yield fake


def test_checkout_then_paid_webhook_end_to_end(admin, db, webhook, stripe_api):
    customer = new_customer(admin)
    cap_before = _cap(admin, customer["id"])  # the plan's cap: the customer has none of its own
    body = {"customer_id": customer["id"], "amount_cents": 2500}
    session = ok(admin.post("admin-stripe-checkout", json=body), 201)["item"]
    event = stripe_api.event(session["session_id"], "checkout.session.completed", payment_status="paid")
    assert ok(deliver(webhook, event))["credited"] is True
    [topup] = _credits(db)
    assert (topup["amount_cents"], topup["stripe_session_id"]) == (2500, session["session_id"])
    assert _cap(admin, customer["id"]) == cap_before + 2500


# ---------------------------------------------------------------------------- failed payments


def intent_failed_event(metadata: dict[str, str], **intent: Any) -> dict[str, Any]:
    """``payment_intent.payment_failed`` as Stripe sends it for a declined card."""
    body = {
        "id": "pi_" + secrets.token_hex(8),
        "object": "payment_intent",
        "amount": 2500,
        "currency": "usd",
        "metadata": metadata,
        "status": "requires_payment_method",
        "last_payment_error": {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "insufficient_funds",
            "message": "Your card has insufficient funds.",
        },
        **intent,
    }
    return {"id": "evt_" + secrets.token_hex(12), "object": "event", "type": "payment_intent.payment_failed",
            "data": {"object": body}}  # fmt: skip


def _failures(db) -> list[dict[str, Any]]:
    return db.execute("SELECT * FROM stripe_payment_failures ORDER BY created_at, event_id").fetchall()


def _customer(make_key, email: str | None = None) -> dict[str, Any]:
    """A customer arranged with SQL (the failure path needs nothing else of the gateway)."""
    key = make_key(customer={"email": email} if email else None)
    return {"id": key.customer_id}


def test_a_failed_async_payment_is_recorded_once_and_shown_in_the_overview(admin, db, webhook, make_key):
    customer = _customer(make_key, "payer@example.com")
    event = session_event(
        customer["id"],
        event_type="checkout.session.async_payment_failed",
        payment_status="unpaid",
        amount_total=1999,
        payment_intent="pi_async",
    )
    assert ok(deliver(webhook, event)) == {"received": True, "payment_failed": True}
    assert ok(deliver(webhook, event)) == {"received": True, "duplicate": True}  # redelivered: once
    [failure] = _failures(db)
    assert {k: v for k, v in failure.items() if k != "created_at"} == {
        "event_id": event["id"],
        "event_type": "checkout.session.async_payment_failed",
        "session_id": event["data"]["object"]["id"],
        "customer_id": customer["id"],
        "amount_cents": 1999,
        "reason": None,  # a session carries no error of its own
    }
    assert _credits(db) == [] and db.execute("SELECT * FROM stripe_events").fetchall() == []
    [audit] = audit_rows(db, "stripe.payment_failed")
    assert audit["actor"] == "stripe" and audit["target"] == f"customer:{customer['id']}"
    assert audit["details"]["event_id"] == event["id"] and audit["details"]["amount_cents"] == 1999
    shown = ok(admin.get("admin-overview"))["item"]["failed_payments"]
    assert [(f["event_id"], f["email"], f["amount_cents"]) for f in shown] == [
        (event["id"], "payer@example.com", 1999)
    ]


def test_a_declined_payment_intent_is_recorded_with_stripes_reason(admin, db, webhook, make_key):
    customer = _customer(make_key)
    event = intent_failed_event({"customer_id": str(customer["id"]), "month": accounts.current_month()})
    assert ok(deliver(webhook, event)) == {"received": True, "payment_failed": True}
    [failure] = _failures(db)
    assert (failure["event_type"], failure["session_id"], failure["customer_id"]) == (
        "payment_intent.payment_failed",
        None,
        customer["id"],
    )
    assert (failure["amount_cents"], failure["reason"]) == (2500, "Your card has insufficient funds.")
    # Without a message, Stripe's code says why; in another currency the amount is not our cents.
    bare = intent_failed_event(
        {"customer_id": str(customer["id"])}, currency="jpy", last_payment_error={"code": "expired_card"}
    )
    assert ok(deliver(webhook, bare))["payment_failed"] is True
    recorded = db.execute("SELECT * FROM stripe_payment_failures WHERE event_id = %s", (bare["id"],))
    assert recorded.fetchone() | {"created_at": None} == {
        "event_id": bare["id"],
        "event_type": "payment_intent.payment_failed",
        "session_id": None,
        "customer_id": customer["id"],
        "amount_cents": None,
        "reason": "expired_card",
        "created_at": None,
    }
    assert _credits(db) == []


def test_expired_sessions_and_failures_that_are_not_ours_record_nothing(admin, db, webhook, make_key):
    customer = _customer(make_key)
    expired = session_event(customer["id"], event_type="checkout.session.expired", payment_status="unpaid")
    assert ok(deliver(webhook, expired)) == {"received": True, "ignored": True}
    not_ours = intent_failed_event({})  # another product's payment on the same Stripe account
    assert ok(deliver(webhook, not_ours)) == {"received": True, "ignored": True}
    wrong_object = {**not_ours, "id": "evt_wrong", "data": {"object": {"object": "charge", "amount": 5}}}
    assert ok(deliver(webhook, wrong_object)) == {"received": True, "ignored": True}
    assert audit_rows(db, "stripe.event_ignored") == []  # nothing for an operator to look at
    gone = intent_failed_event({"customer_id": "999"})
    assert ok(deliver(webhook, gone)) == {"received": True, "ignored": True}
    [ignored] = audit_rows(db, "stripe.event_ignored")
    assert ignored["details"]["reason"] == "customer 999 does not exist"
    assert _failures(db) == [] and audit_rows(db, "stripe.payment_failed") == []


def test_checkout_sessions_put_the_customer_on_their_payment_intent(admin, webhook, stripe_api, make_key):
    """So that a declined card's ``payment_intent.payment_failed`` names the customer."""
    customer = _customer(make_key)
    ok(admin.post("admin-stripe-checkout", json={"customer_id": customer["id"], "amount_cents": 700}), 201)
    form = stripe_api.requests[-1].form
    assert form["payment_intent_data"] == {"metadata": form["metadata"]}
    assert form["metadata"]["customer_id"] == str(customer["id"])
