"""admin-usage: usage events with filters and paging, and the month summary."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.admin import accounts
from tests.support import admin as admin_support
from tests.support.admin import chat, new_customer, new_key, ok

admin = admin_support.admin  # the fixture

EVENT_FIELDS = {
    "id",
    "created_at",
    "api_key_id",
    "provider",
    "model",
    "input_tokens",
    "output_tokens",
    "cost_nanos",
    "cost_cents",
    "sell_nanos",
    "sell_cents",
    "price_version_id",
    "sell_version_id",
    "outcome",
    "estimated",
    "install_id",
    "app",
    "build",
    "request_id",
    "duration_ms",
    "clamped_to",
    "stopped_code",
}
# gpt-4o-mini: $0.15 / $0.60 per million tokens = 150 / 600 nanos per token.
CALL_NANOS = 100_000 * 150 + 10 * 600


def test_events_and_summary_from_real_gateway_calls(admin, server, upstreams):
    upstreams.script("openai", input_tokens=100_000, output_tokens=10)
    customer = new_customer(admin)
    key_a, key_b = new_key(admin, customer["id"], label="a"), new_key(admin, customer["id"], label="b")
    for key, install in ((key_a, "phone"), (key_a, "laptop"), (key_b, None)):
        assert chat(server, key["key"], install_id=install, app="web").status_code == 200

    page = ok(admin.get("admin-usage", params={"customer_id": customer["id"]}))
    assert len(page["items"]) == 3 and page["next_cursor"] is None
    newest = page["items"][0]
    assert set(newest) == EVENT_FIELDS and newest["api_key_id"] == key_b["id"]
    assert newest["cost_nanos"] == CALL_NANOS and newest["cost_cents"] == 2  # 1.5006 cents, half-up
    assert (newest["provider"], newest["model"], newest["outcome"]) == ("openai", "gpt-4o-mini", "ok")
    assert (
        newest["input_tokens"] == 100_000 and newest["output_tokens"] == 10 and newest["estimated"] is False
    )
    assert newest["app"] == "web" and newest["request_id"]
    assert (newest["clamped_to"], newest["stopped_code"]) == (None, None)  # neither clamped nor stopped
    assert [e["install_id"] for e in page["items"]] == [None, "laptop", "phone"]

    def count(**filters) -> int:
        return len(ok(admin.get("admin-usage", params={"customer_id": customer["id"], **filters}))["items"])

    assert count(api_key_id=key_a["id"]) == 2 and count(provider="openai") == 3
    assert count(model="gpt-4o") == 0 and count(model="gpt-4o-mini") == 3
    assert count(month=accounts.current_month()) == 3 and count(month="2020-01") == 0
    assert count(provider="anthropic") == 0

    summary = ok(admin.get("admin-usage", params={"customer_id": customer["id"], "view": "summary"}))["item"]
    assert summary["month"] == accounts.current_month()
    totals = summary["totals"]
    assert totals["calls"] == 3 and totals["input_tokens"] == 300_000 and totals["tokens"] == 300_030
    assert totals["spent_nanos"] == 3 * CALL_NANOS and totals["spent_cents"] == 5  # 4.5018 from the exact sum
    assert totals["cap_cents"] == 2000 and totals["topup_cents"] == 0 and totals["reserved_nanos"] == 0
    assert [(k["api_key_id"], k["label"], k["calls"]) for k in summary["keys"]] == [
        (key_a["id"], "a", 2),
        (key_b["id"], "b", 1),
    ]
    assert summary["keys"][0]["key_last4"] == key_a["key_last4"] and summary["keys"][0]["spent_cents"] == 3
    today = datetime.now(UTC).date().isoformat()
    assert summary["days"] == [
        {
            "date": today,
            "calls": 3,
            "input_tokens": 300_000,
            "output_tokens": 30,
            "tokens": 300_030,
            "cost_nanos": 3 * CALL_NANOS,
            "cost_cents": 5,
            "sell_nanos": 3 * CALL_NANOS,  # the starter plan sells at cost
            "sell_cents": 5,
        }
    ]


def _arrange_events(db, customer: dict, rows: list[tuple[str, str, int]]) -> None:
    """Usage rows for a read-only listing: (created_at, month, cost_nanos) each."""
    for created_at, month, cost in rows:
        db.execute(
            "INSERT INTO usage_events (customer_id, api_key_id, month, provider, model, input_tokens, "
            "output_tokens, cost_nanos, sell_nanos, created_at) "
            "VALUES (%s, %s, %s, 'openai', 'gpt-4o-mini', 10, 5, %s, %s, %s)",
            (customer["id"], customer["key_id"], month, cost, cost, created_at),
        )


def test_pages_month_filter_and_per_day_rollups_rounded_from_exact_sums(admin, db):
    customer = new_customer(admin)
    _arrange_events(
        db,
        customer,
        [
            ("2026-01-31T23:59:59Z", "2026-01", 9_000_000),
            ("2026-02-01T00:00:01Z", "2026-02", 6_000_000),
            ("2026-02-01T12:00:00Z", "2026-02", 6_000_000),
            ("2026-02-03T08:00:00Z", "2026-02", 4_000_000),
            ("2026-02-03T09:00:00Z", "2026-02", 1),
        ],
    )
    ids, cursor = [], None
    while True:
        query = {"customer_id": customer["id"], "month": "2026-02", "limit": 3, "cursor": cursor}
        page = ok(admin.get("admin-usage", params=query))
        ids += [e["id"] for e in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert ids == [5, 4, 3, 2]
    params = {"customer_id": customer["id"], "month": "2026-02", "view": "summary"}
    days = ok(admin.get("admin-usage", params=params))["item"]["days"]
    assert [(d["date"], d["calls"], d["cost_nanos"], d["cost_cents"]) for d in days] == [
        ("2026-02-01", 2, 12_000_000, 1),  # 0.6 + 0.6 = 1.2 cents, not 1 + 1
        ("2026-02-03", 2, 4_000_001, 0),
    ]


def test_summary_cap_includes_the_months_topups(admin):
    customer = new_customer(admin, monthly_cap_cents=1000)
    ok(admin.post("admin-topups", json={"customer_id": customer["id"], "amount_cents": 250}), 201)
    params = {"customer_id": customer["id"], "view": "summary"}
    totals = ok(admin.get("admin-usage", params=params))["item"]["totals"]
    assert (totals["base_cap_cents"], totals["topup_cents"], totals["cap_cents"]) == (1000, 250, 1250)


def test_bad_filters_are_400_naming_the_parameter(admin):
    customer = new_customer(admin)
    for params, field in (
        ({}, "customer_id"),
        ({"customer_id": "x"}, "customer_id"),
        ({"customer_id": customer["id"], "provider": "azure"}, "provider"),
        ({"customer_id": customer["id"], "month": "2026-13"}, "month"),
        ({"customer_id": customer["id"], "view": "pie"}, "view"),
        ({"customer_id": customer["id"], "api_key_id": "0"}, "api_key_id"),
        ({"customer_id": customer["id"], "model": "m" * 201}, "model"),
        ({"customer_id": customer["id"], "cursor": "nope"}, "cursor"),
    ):
        response = admin.get("admin-usage", params=params)
        assert response.status_code == 400 and response.json()["field"] == field, params
    missing = admin.get("admin-usage", params={"customer_id": 999, "view": "summary"})
    assert missing.status_code == 404
