"""admin-overview: the operator's month (revenue, provider cost, margin) to the nanodollar.

The month is arranged with SQL (usage events, month rows, KaixuPush invoices, failed payments)
so the figures do not depend on the gateway's pricing: three customers, three models of two
providers, events on two UTC days (one a second before midnight), nano amounts chosen so that
rounding once from the exact sum differs from summing rounded parts, a customer near its cap
(thanks to a top-up) and one exactly at the threshold, and the month before full of data that
must not leak in.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from shared.admin import accounts
from shared.billing.stripe_checkout import topup_months
from tests.support import admin as admin_support
from tests.support.admin import ok
from tests.support.database import IssuedKey
from tests.support.overview import MONTH, OTHER_MONTH, add_event, arrange_month

admin = admin_support.admin  # the fixture


@pytest.fixture
def month(db: Any, make_key: Callable[..., IssuedKey]) -> dict[str, int]:
    return arrange_month(db, make_key)


def overview(admin: httpx.Client, **query: str) -> dict[str, Any]:
    return ok(admin.get("admin-overview", params=query))["item"]


def money(revenue: int, cost: int, cents: tuple[int, int, int], pct: str | None) -> dict[str, Any]:
    """The figures of one group: exact nanos, then each cents rounded once from its own sum."""
    return {
        "revenue_nanos": revenue,
        "cost_nanos": cost,
        "margin_nanos": revenue - cost,
        "revenue_cents": cents[0],
        "cost_cents": cents[1],
        "margin_cents": cents[2],
        "margin_pct": pct,
    }


def test_the_totals_are_exact_and_each_cents_is_rounded_once(admin, month):
    report = overview(admin, month=MONTH)
    assert report["month"] == MONTH and report["cap_warn_pct"] == 85
    # 39.35 cents sold, 37.15 cost; the margin of 2.1956787 cents rounds to 2 on its own,
    # though the customers' rounded margins (2, -1, 0) add up to 1.
    assert report["totals"] == {
        "calls": 6,
        **money(393_456_788, 371_500_001, (39, 37, 2), "5.6"),
        "push_revenue_nanos": 362_345_678,
        "push_revenue_cents": 36,
    }


def test_per_customer_rows_are_sorted_by_revenue_with_plan_and_push(admin, month):
    rows = overview(admin, month=MONTH)["by_customer"]
    assert rows == [
        {
            "customer_id": month["bob"],
            "email": "=bob@example.com",
            "plan": "pro",
            "calls": 2,  # the failed call counts, at no charge
            # 24.5 cents sold at 25.0000001 cost: each rounds to 25, the margin to -1 cent
            **money(245_000_000, 250_000_001, (25, 25, -1), "-2.0"),
            "push_revenue_nanos": 0,
            "push_revenue_cents": 0,
        },
        {
            "customer_id": month["alice"],
            "email": "alice@example.com",
            "plan": "starter",
            "calls": 3,
            **money(143_456_789, 119_000_000, (14, 12, 2), "17.0"),
            "push_revenue_nanos": 12_345_678,
            "push_revenue_cents": 1,
        },
        {
            "customer_id": month["carol"],
            "email": "carol@example.com",
            "plan": "starter",
            "calls": 1,
            **money(4_999_999, 2_500_000, (0, 0, 0), "50.0"),  # 49.99999 % rounds up to 50.0
            "push_revenue_nanos": 350_000_000,
            "push_revenue_cents": 35,
        },
    ]


def test_per_model_provider_and_day_rollups_add_up_to_the_totals(admin, month):
    report = overview(admin, month=MONTH)
    assert report["by_model"] == [
        {"provider": "anthropic", "model": "claude-sonnet-4-5", "calls": 2,
         **money(250_000_000, 255_000_000, (25, 26, -1), "-2.0")},
        {"provider": "openai", "model": "gpt-4o-mini", "calls": 3,
         **money(138_456_789, 114_000_001, (14, 11, 2), "17.7")},
        {"provider": "openai", "model": "gpt-4o", "calls": 1,
         **money(4_999_999, 2_500_000, (0, 0, 0), "50.0")},
    ]  # fmt: skip
    assert report["by_provider"] == [
        {"provider": "anthropic", "calls": 2, **money(250_000_000, 255_000_000, (25, 26, -1), "-2.0")},
        {"provider": "openai", "calls": 4, **money(143_456_788, 116_500_001, (14, 12, 3), "18.8")},
    ]
    # Days are UTC days: the call at 23:59:59 on the 3rd stays on the 3rd.
    assert report["by_day"] == [
        {"date": "2025-11-03", "calls": 3, **money(133_456_788, 107_500_000, (13, 11, 3), "19.4")},
        {"date": "2025-11-17", "calls": 3, **money(260_000_000, 264_000_001, (26, 26, 0), "-1.5")},
    ]
    for rollup in ("by_customer", "by_model", "by_provider", "by_day"):
        rows = report[rollup]
        for name in ("revenue_nanos", "cost_nanos", "margin_nanos", "calls"):
            assert sum(row[name] for row in rows) == report["totals"][name], (rollup, name)


def test_top_spenders_and_customers_near_their_cap(admin, month):
    report = overview(admin, month=MONTH)
    assert report["top_spenders"] == [
        {"customer_id": month["bob"], "email": "=bob@example.com", "plan": "pro", "calls": 2,
         "revenue_nanos": 245_000_000, "revenue_cents": 25, "spent_nanos": 245_000_000,
         "spent_cents": 25, "cap_cents": 50_000, "cap_used_pct": "0.0"},
        {"customer_id": month["alice"], "email": "alice@example.com", "plan": "starter", "calls": 3,
         "revenue_nanos": 143_456_789, "revenue_cents": 14, "spent_nanos": 143_456_789,
         "spent_cents": 14, "cap_cents": 16, "cap_used_pct": "89.7"},
        {"customer_id": month["carol"], "email": "carol@example.com", "plan": "starter", "calls": 1,
         "revenue_nanos": 4_999_999, "revenue_cents": 0, "spent_nanos": 4_999_999,
         "spent_cents": 0, "cap_cents": 2000, "cap_used_pct": "0.0"},
    ]  # fmt: skip
    # The cap includes the month's top-up (Alice's 10 cents alone would be 143 % used); Dave
    # is exactly at CAP_WARN_PCT, Erin a nanodollar under it; October's spend is not November's.
    assert report["near_cap"] == [
        {"customer_id": month["alice"], "email": "alice@example.com", "plan": "starter",
         "spent_nanos": 143_456_789, "spent_cents": 14, "cap_cents": 16, "cap_used_pct": "89.7"},
        {"customer_id": month["dave"], "email": "dave@example.com", "plan": "starter",
         "spent_nanos": 850_000_000, "spent_cents": 85, "cap_cents": 100, "cap_used_pct": "85.0"},
    ]  # fmt: skip


def test_near_cap_follows_cap_warn_pct(admin, configure, month):
    configure(CAP_WARN_PCT="90")
    report = overview(admin, month=MONTH)
    assert report["cap_warn_pct"] == 90 and report["near_cap"] == []
    configure(CAP_WARN_PCT="50")
    assert [row["customer_id"] for row in overview(admin, month=MONTH)["near_cap"]] == [
        month["alice"],
        month["dave"],
        month["erin"],
    ]


def test_failed_payments_of_the_month_only_newest_first(admin, month):
    failures = overview(admin, month=MONTH)["failed_payments"]
    assert failures == [
        {"event_id": "evt_nov_1", "event_type": "payment_intent.payment_failed", "session_id": None,
         "customer_id": month["bob"], "email": "=bob@example.com", "amount_cents": 2500,
         "reason": "Your card was declined.", "created_at": "2025-11-20T15:30:00Z"},
        {"event_id": "evt_nov_2", "event_type": "payment_intent.payment_failed", "session_id": None,
         "customer_id": month["alice"], "email": "alice@example.com", "amount_cents": None,
         "reason": None, "created_at": "2025-11-01T00:00:00Z"},
    ]  # fmt: skip


def test_another_months_data_is_its_own(admin, month):
    october = overview(admin, month=OTHER_MONTH)
    assert october["totals"] == {
        "calls": 2,
        **money(16_000_000_000, 2, (1600, 0, 1600), "100.0"),
        "push_revenue_nanos": 990_000_000,
        "push_revenue_cents": 99,
    }
    assert [(r["customer_id"], r["revenue_nanos"]) for r in october["by_customer"]] == [
        (month["alice"], 9_000_000_000),
        (month["bob"], 7_000_000_000),
    ]
    # The call settled just after midnight is October's (its month), on the day it settled.
    assert [day["date"] for day in october["by_day"]] == ["2025-10-15", "2025-11-01"]
    assert [f["event_id"] for f in october["failed_payments"]] == ["evt_oct"]
    assert [row["customer_id"] for row in october["near_cap"]] == [month["carol"]]


def test_an_empty_month_is_all_zeros_and_no_margin_pct(admin, month):
    report = overview(admin, month="2024-02")
    assert report["totals"] == {
        "calls": 0,
        **money(0, 0, (0, 0, 0), None),
        "push_revenue_nanos": 0,
        "push_revenue_cents": 0,
    }
    for name in ("by_customer", "by_model", "by_provider", "by_day", "top_spenders", "near_cap"):
        assert report[name] == [], name
    assert report["failed_payments"] == []


def test_the_default_month_is_this_utc_month(admin, db, make_key):
    key = make_key()
    now = datetime.now(UTC)
    add_event(db, key, accounts.current_month(), now.isoformat(), "gemini", "gemini-2.5-flash", 1_234, 1_000)
    report = overview(admin)
    assert report["month"] == accounts.current_month()
    assert report["totals"]["calls"] == 1 and report["totals"]["margin_nanos"] == 234
    assert report["by_day"][0]["date"] == now.strftime("%Y-%m-%d")


def test_the_csv_has_a_line_per_customer_and_a_total_line(admin, month):
    response = admin.get("admin-overview", params={"month": MONTH, "format": "csv"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == f'attachment; filename="kaixu-overview-{MONTH}.csv"'
    lines = list(csv.reader(io.StringIO(response.content.decode("utf-8"))))
    assert lines == [
        ["row_type", "month", "customer_id", "email", "plan", "calls", "revenue_cents", "revenue_nanos",
         "cost_cents", "cost_nanos", "margin_cents", "margin_nanos", "margin_pct", "push_revenue_cents",
         "push_revenue_nanos"],
        # The email starting with "=" is quoted out of formula territory; a negative margin % is
        # a number, not guarded text.
        ["customer", MONTH, str(month["bob"]), "'=bob@example.com", "pro", "2", "25", "245000000", "25",
         "250000001", "-1", "-5000001", "-2.0", "0", "0"],
        ["customer", MONTH, str(month["alice"]), "alice@example.com", "starter", "3", "14", "143456789", "12",
         "119000000", "2", "24456789", "17.0", "1", "12345678"],
        ["customer", MONTH, str(month["carol"]), "carol@example.com", "starter", "1", "0", "4999999", "0",
         "2500000", "0", "2499999", "50.0", "35", "350000000"],
        ["total", MONTH, "", "", "", "6", "39", "393456788", "37", "371500001", "2", "21956787", "5.6", "36",
         "362345678"],
    ]  # fmt: skip
    assert response.content.endswith(b"\r\n")


def test_the_csv_of_an_empty_month_is_a_header_and_a_zero_total(admin, month):
    response = admin.get("admin-overview", params={"month": "2024-02", "format": "csv"})
    lines = list(csv.reader(io.StringIO(response.text)))
    assert len(lines) == 2 and lines[1] == ["total", "2024-02", "", "", "", "0", *["0"] * 6, "", "0", "0"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"month": "2025-13"}, "month"),
        ({"month": "2025-1"}, "month"),
        ({"month": "november"}, "month"),
        ({"month": "0000-05"}, "month"),
        ({"month": topup_months()[1]}, "month"),  # next month: still to come
        ({"month": "2999-01"}, "month"),
        ({"format": "xlsx"}, "format"),
        ({"month": MONTH, "format": "CSV"}, "format"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(admin, query, field):
    response = admin.get("admin-overview", params=query)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "INVALID_INPUT" and body["field"] == field
    assert body["error"] and body["request_id"] == response.headers["x-kaixu-request-id"]


def test_the_current_month_is_allowed_and_the_format_may_be_json(admin):
    report = overview(admin, month=accounts.current_month(), format="json")
    assert report["month"] == accounts.current_month()


def test_admins_only(server, configure):
    configure(ADMIN_PASSWORD=admin_support.ADMIN_PASSWORD)
    for headers in ({}, {"x-admin-password": "wrong"}, {"authorization": "Bearer kxa1.forged.token"}):
        response = httpx.get(f"{server}/.netlify/functions/admin-overview", headers=headers, timeout=10)
        assert response.status_code == 401 and response.json()["code"] == "UNAUTHORIZED"
    response = httpx.get(f"{server}/.netlify/functions/admin-overview?format=csv", timeout=10)
    assert response.status_code == 401 and response.headers["content-type"] == "application/json"
