"""The month the overview tests arrange with SQL (admin-overview and its panel share it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.support.database import IssuedKey

MONTH = "2025-11"
OTHER_MONTH = "2025-10"


def add_event(
    db: Any,
    key: IssuedKey,
    month: str,
    at: str,
    provider: str,
    model: str,
    sell: int,
    cost: int,
    outcome: str = "ok",
) -> None:
    db.execute(
        "INSERT INTO usage_events (customer_id, api_key_id, month, provider, model, input_tokens,"
        " output_tokens, cost_nanos, sell_nanos, created_at, outcome)"
        " VALUES (%s, %s, %s, %s, %s, 100, 50, %s, %s, %s, %s)",
        (key.customer_id, key.key_id, month, provider, model, cost, sell, at, outcome),
    )


def add_month_row(db: Any, customer_id: int, month: str, spent: int, topup_cents: int = 0) -> None:
    db.execute(
        "INSERT INTO monthly_usage (customer_id, month, spent_nanos, cost_nanos, topup_cents, calls)"
        " VALUES (%s, %s, %s, 0, %s, 0)",
        (customer_id, month, spent, topup_cents),
    )


def add_push_invoice(db: Any, customer_id: int, month: str, nanos: int) -> None:
    db.execute(
        "INSERT INTO push_invoices (customer_id, month, pricing_version, total_cents, total_nanos,"
        " deploys, bytes, breakdown) VALUES (%s, %s, 1, 0, %s, 1, 1024, '{}')",
        (customer_id, month, nanos),
    )


def add_failure(
    db: Any, event_id: str, customer_id: int | None, cents: int | None, reason: str | None, at: str
) -> None:
    db.execute(
        "INSERT INTO stripe_payment_failures (event_id, event_type, session_id, customer_id, amount_cents,"
        " reason, created_at) VALUES (%s, 'payment_intent.payment_failed', NULL, %s, %s, %s, %s)",
        (event_id, customer_id, cents, reason, at),
    )


def arrange_month(db: Any, make_key: Callable[..., IssuedKey]) -> dict[str, int]:
    """The arranged month; returns the customer ids by name."""
    pro = db.execute("INSERT INTO plans (name, monthly_cap_cents) VALUES ('pro', 50000) RETURNING id")
    pro_id = pro.fetchone()["id"]
    alice = make_key(customer={"email": "alice@example.com", "monthly_cap_cents": 10})  # starter plan
    bob = make_key(customer={"email": "=bob@example.com", "plan_id": pro_id})  # a formula, in a CSV
    carol = make_key(customer={"email": "carol@example.com"})
    dave = make_key(customer={"email": "dave@example.com", "monthly_cap_cents": 100})
    erin = make_key(customer={"email": "erin@example.com", "monthly_cap_cents": 100})

    add_event(db, alice, MONTH, "2025-11-03T10:00:00Z", "openai", "gpt-4o-mini", 123_456_789, 100_000_001)
    add_event(
        db, alice, MONTH, "2025-11-03T23:59:59Z", "anthropic", "claude-sonnet-4-5", 5_000_000, 4_999_999
    )
    add_event(db, alice, MONTH, "2025-11-17T08:00:00Z", "openai", "gpt-4o-mini", 15_000_000, 14_000_000)
    add_event(
        db, bob, MONTH, "2025-11-17T09:00:00Z", "anthropic", "claude-sonnet-4-5", 245_000_000, 250_000_001
    )
    add_event(db, bob, MONTH, "2025-11-17T09:05:00Z", "openai", "gpt-4o-mini", 0, 0, "upstream_error")
    add_event(db, carol, MONTH, "2025-11-03T12:00:00Z", "openai", "gpt-4o", 4_999_999, 2_500_000)
    # Another month: October's, including a call admitted in October and settled in November.
    add_event(db, alice, OTHER_MONTH, "2025-10-15T12:00:00Z", "openai", "gpt-4o-mini", 9_000_000_000, 1)
    add_event(db, bob, OTHER_MONTH, "2025-11-01T00:00:05Z", "openai", "gpt-4o", 7_000_000_000, 1)

    add_month_row(db, alice.customer_id, MONTH, 143_456_789, topup_cents=6)  # cap 10 + 6 cents: 89.7 %
    add_month_row(db, bob.customer_id, MONTH, 245_000_000)
    add_month_row(db, carol.customer_id, MONTH, 4_999_999)
    add_month_row(db, dave.customer_id, MONTH, 850_000_000)  # exactly 85 % of 100 cents: near
    add_month_row(db, erin.customer_id, MONTH, 849_999_999)  # a nanodollar under: not
    add_month_row(db, carol.customer_id, OTHER_MONTH, 2_000_000_000_000)  # over cap, but in October

    add_push_invoice(db, carol.customer_id, MONTH, 350_000_000)
    add_push_invoice(db, alice.customer_id, MONTH, 12_345_678)
    add_push_invoice(db, bob.customer_id, OTHER_MONTH, 990_000_000)

    add_failure(db, "evt_nov_1", bob.customer_id, 2500, "Your card was declined.", "2025-11-20T15:30:00Z")
    add_failure(db, "evt_nov_2", alice.customer_id, None, None, "2025-11-01T00:00:00Z")
    add_failure(db, "evt_oct", alice.customer_id, 900, "Insufficient funds.", "2025-10-31T23:59:59Z")
    add_failure(db, "evt_dec", alice.customer_id, 800, "Expired card.", "2025-12-01T00:00:00Z")
    ids = {"alice": alice, "bob": bob, "carol": carol, "dave": dave, "erin": erin}
    return {name: key.customer_id for name, key in ids.items()}
