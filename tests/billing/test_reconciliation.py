"""Money in and out reconciles: a month's invoice is its charges (usage at the sell price per
model and price version, KaixuPush) less its credits (included, top-ups, Stripe reversals,
credit carried in), line by line to the nano, each amount rounded to cents once; and only
paid-in credit carries into the next month, booked when the invoice is issued."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import money
from shared.billing import reconcile
from tests.support import admin as admin_support
from tests.support.admin import ok
from tests.support.reports import add_usage

admin = admin_support.admin  # the fixture

MONTH = "2026-02"
CENT = money.NANOS_PER_CENT


def _plan(db, name: str, included_cents: int) -> int:
    return db.execute(
        "INSERT INTO plans (name, monthly_cap_cents, included_credit_cents) "
        "VALUES (%s, 100000, %s) RETURNING id",
        (name, included_cents),
    ).fetchone()["id"]


def _price(db, provider: str, name: str) -> dict[str, Any]:
    """The newest cost price version of a seeded model (and its model id)."""
    return db.execute(
        "SELECT p.* FROM model_prices p JOIN model_names n ON n.model_id = p.model_id "
        "WHERE n.provider = %s AND n.name = %s ORDER BY p.effective_from DESC, p.id DESC LIMIT 1",
        (provider, name),
    ).fetchone()


def _topup(db, customer_id: int, cents: int, source: str, day: str, month: str = MONTH) -> None:
    db.execute(
        "INSERT INTO topups (customer_id, month, amount_cents, source, actor, created_at) "
        "VALUES (%s, %s, %s, %s, 'admin', %s)",
        (customer_id, month, cents, source, f"{day}T10:00:00Z"),
    )


def _snapshot(admin, customer_id: int, month: str = MONTH) -> dict[str, Any]:
    return ok(admin.post("admin-invoices", json={"customer_id": customer_id, "month": month}), 201)["item"]


def _usd(nanos_per_token: int, factor: Decimal = Decimal(1)) -> str:
    return format((Decimal(nanos_per_token) * factor / 1000).normalize(), "f")


# ----------------------------------------------------------------------------- a month, line by line


def test_a_month_reconciles_line_by_line_to_the_nano(admin, db, make_key):
    plan = _plan(db, "pro", included_cents=500)
    key = make_key(customer={"plan_id": plan})
    mini = _price(db, "openai", "gpt-4o-mini")
    sonnet = _price(db, "anthropic", "claude-sonnet-4-5-20250929")
    flash = _price(db, "gemini", "gemini-2.5-flash")
    # Sell amounts of 0.4999999, 0.4999999 and 700.5 cents: 0 + 0 + 701 rounded apart.
    for model, price, cost, sell in (
        ("gpt-4o-mini", mini, 3_333_333, 4_999_999),
        ("claude-sonnet-4-5-20250929", sonnet, 4_000_000, 4_999_999),
        ("gemini-2.5-flash", flash, 6_000_000_000, 7_005_000_000),
    ):
        provider = {"gpt": "openai", "cla": "anthropic", "gem": "gemini"}[model[:3]]
        add_usage(
            db,
            key.customer_id,
            key.key_id,
            provider=provider,
            model=model,
            cost_nanos=cost,
            sell_nanos=sell,
            price_version_id=price["id"],
            input_tokens=1_000,
            output_tokens=200,
        )
    db.execute(
        "INSERT INTO push_invoices (customer_id, month, pricing_version, total_cents, total_nanos, deploys, "
        "bytes, breakdown) VALUES (%s, %s, 1, 123, 1234567891, 2, 10, '{}')",
        (key.customer_id, MONTH),
    )
    _topup(db, key.customer_id, 200, "manual", "2026-02-03")
    _topup(db, key.customer_id, 300, "stripe", "2026-02-05")
    _topup(db, key.customer_id, -150, "stripe_reversal", "2026-02-09")  # a refund takes 1.50 back

    item = _snapshot(admin, key.customer_id)
    doc = item["snapshot"]

    def usage(provider: str, model: str, price: dict[str, Any], nanos: int) -> dict[str, Any]:
        description = f"AI usage: {provider} {model} (price v{price['id']}; 1 call, 1,200 tokens)"
        return {"kind": "usage", "description": description, "nanos": nanos, "cents": money.cents(nanos)}

    assert doc["lines"] == [
        usage("anthropic", "claude-sonnet-4-5-20250929", sonnet, 4_999_999),
        usage("gemini", "gemini-2.5-flash", flash, 7_005_000_000),
        usage("openai", "gpt-4o-mini", mini, 4_999_999),
        {"kind": "push", "description": "KaixuPush: 2 deploys", "nanos": 1_234_567_891, "cents": 123},
        {"kind": "included_credit", "description": "Credit included in the pro plan", "nanos": -500 * CENT,
         "cents": -500},
        {"kind": "topup", "description": "Top-up, manual (2026-02-03)", "nanos": -200 * CENT, "cents": -200},
        {"kind": "topup", "description": "Top-up, Stripe (2026-02-05)", "nanos": -300 * CENT, "cents": -300},
        {"kind": "reversal", "description": "Stripe refund or dispute taken back (2026-02-09)",
         "nanos": 150 * CENT, "cents": 150},
    ]  # fmt: skip
    assert [line["cents"] for line in doc["lines"][:3]] == [0, 701, 0]

    charges = 4_999_999 * 2 + 7_005_000_000 + 1_234_567_891
    credits = (500 + 200 + 300 - 150) * CENT
    grand = charges - credits
    assert grand == -250_432_111 == sum(line["nanos"] for line in doc["lines"])
    totals = doc["totals"]
    assert {name: totals[name] for name in totals if name.endswith("_nanos")} == {
        "usage_nanos": 7_014_999_998,
        "total_nanos": 7_014_999_998,
        "push_nanos": 1_234_567_891,
        "charges_nanos": charges,
        "included_credit_nanos": 500 * CENT,
        "carried_in_nanos": 0,
        "topups_nanos": 500 * CENT,
        "reversals_nanos": -150 * CENT,
        "topups_net_nanos": 350 * CENT,
        "credits_nanos": credits,
        "balance_nanos": 250_432_111,
        "grand_total_nanos": grand,
        "due_nanos": 0,
        "credit_remaining_nanos": 250_432_111,
        "carried_out_nanos": 250_432_111,  # all of it paid-in: top-ups net 3.50 > 2.504 left
        "cost_nanos": 6_007_333_333,
        "margin_nanos": 7_014_999_998 - 6_007_333_333,
    }
    # Each figure in cents is rounded once from its exact nanos, never summed from rounded lines.
    for name in (n for n in totals if n.endswith("_nanos")):
        assert totals[name.removesuffix("_nanos") + "_cents"] == money.cents(totals[name]), name
    assert totals["grand_total_cents"] == -25  # -25.0432111 cents
    assert sum(line["cents"] for line in doc["lines"]) == -26  # what adding rounded lines would say
    assert totals["usage_cents"] == 701  # 701.4999998 cents
    assert totals["charges_cents"] == 825 != sum(line["cents"] for line in doc["lines"][:4])  # 824
    assert (totals["due_cents"], totals["credit_remaining_cents"], item["total_cents"]) == (0, 25, 0)
    assert doc["carry_over"] == {
        "rule": reconcile.CARRY_RULE,
        "from_month": "2026-01",
        "carried_in_nanos": 0,
        "to_month": "2026-03",
        "carried_out_nanos": 250_432_111,
    }
    assert "Only paid-in credit carries over" in doc["carry_over"]["rule"]
    assert (doc["customer"]["plan"], doc["customer"]["included_credit_cents"]) == ("pro", 500)


def test_an_amount_due_is_the_charges_less_every_credit(admin, db, make_key):
    key = make_key(customer={"plan_id": _plan(db, "team", included_cents=100)})
    add_usage(db, key.customer_id, key.key_id, cost_nanos=2_000_000_000, sell_nanos=2_500_000_001)
    _topup(db, key.customer_id, 50, "manual", "2026-02-01")
    item = _snapshot(admin, key.customer_id)
    totals = item["snapshot"]["totals"]
    assert totals["grand_total_nanos"] == 2_500_000_001 - 150 * CENT == 1_000_000_001
    assert (totals["due_nanos"], totals["due_cents"], item["total_cents"]) == (1_000_000_001, 100, 100)
    assert (totals["credit_remaining_nanos"], totals["carried_out_nanos"]) == (0, 0)


# ----------------------------------------------------------------------------- a price change mid-month


def test_a_price_change_mid_month_shows_two_lines_with_their_own_unit_prices(admin, db, make_key):
    plan = _plan(db, "markup", included_cents=0)
    key = make_key(customer={"plan_id": plan})
    old = _price(db, "openai", "gpt-4o-mini")
    new = db.execute(
        "INSERT INTO model_prices (model_id, effective_from, input_nanos, output_nanos, cache_read_nanos, "
        "cache_write_5m_nanos, cache_write_1h_nanos, request_nanos, created_by) "
        "VALUES (%s, '2026-02-15T00:00:00Z', 200, 800, 100, 0, 0, 0, 'test') RETURNING *",
        (old["model_id"],),
    ).fetchone()
    markup = db.execute(
        "INSERT INTO sell_prices (plan_id, model_id, effective_from, kind, markup_bp, created_by) "
        "VALUES (%s, %s, '2026-02-15T00:00:00Z', 'markup', 2500, 'test') RETURNING id",
        (plan, old["model_id"]),
    ).fetchone()["id"]
    fixed = db.execute(
        "INSERT INTO sell_prices (customer_id, model_id, effective_from, kind, input_nanos, output_nanos, "
        "cache_read_nanos, cache_write_5m_nanos, cache_write_1h_nanos, request_nanos, created_by) "
        "VALUES (%s, %s, '2026-02-20T00:00:00Z', 'fixed', 300, 900, 0, 0, 0, 1000, 'test') RETURNING id",
        (key.customer_id, old["model_id"]),
    ).fetchone()["id"]
    before = 1_000 * old["input_nanos"] + 100 * old["output_nanos"]
    after = 1_000 * 200 + 100 * 800
    for _ in range(2):  # before the change: the old version, sold at cost
        add_usage(
            db,
            key.customer_id,
            key.key_id,
            input_tokens=1_000,
            output_tokens=100,
            cost_nanos=before,
            sell_nanos=before,
            price_version_id=old["id"],
            created_at="2026-02-10T12:00:00Z",
        )
    add_usage(
        db,
        key.customer_id,
        key.key_id,
        input_tokens=1_000,
        output_tokens=100,
        cost_nanos=after,
        sell_nanos=350_000,
        price_version_id=new["id"],
        sell_version_id=markup,
        created_at="2026-02-16T12:00:00Z",
    )
    add_usage(
        db,
        key.customer_id,
        key.key_id,
        input_tokens=1_000,
        output_tokens=100,
        cost_nanos=after,
        sell_nanos=391_000,
        price_version_id=new["id"],
        sell_version_id=fixed,
        created_at="2026-02-21T12:00:00Z",
    )

    doc = _snapshot(admin, key.customer_id)["snapshot"]
    lines = [line for line in doc["usage"] if line["model"] == "gpt-4o-mini"]
    assert [(line["price_version_id"], line["sell_version_id"], line["calls"]) for line in lines] == [
        (old["id"], None, 2),
        (new["id"], markup, 1),
        (new["id"], fixed, 1),
    ]
    at_cost = {
        "input_usd_per_mtok": _usd(old["input_nanos"]),
        "output_usd_per_mtok": _usd(old["output_nanos"]),
        "request_usd": "0",
    }
    assert at_cost == {"input_usd_per_mtok": "0.15", "output_usd_per_mtok": "0.6", "request_usd": "0"}
    assert lines[0]["cost_unit"] == lines[0]["sell_unit"] == at_cost
    new_cost = {"input_usd_per_mtok": "0.2", "output_usd_per_mtok": "0.8", "request_usd": "0"}
    assert lines[1]["cost_unit"] == lines[2]["cost_unit"] == new_cost
    assert lines[1]["sell_unit"] == {
        "input_usd_per_mtok": "0.25",
        "output_usd_per_mtok": "1",
        "request_usd": "0",
    }
    assert lines[2]["sell_unit"] == {
        "input_usd_per_mtok": "0.3",
        "output_usd_per_mtok": "0.9",
        "request_usd": "0.000001",
    }
    assert [(line["cost_nanos"], line["sell_nanos"]) for line in lines] == [
        (2 * before, 2 * before),
        (after, 350_000),
        (after, 391_000),
    ]
    assert lines[1]["prices_from"].startswith("2026-02-15") and lines[2]["prices_from"].startswith(
        "2026-02-20"
    )
    usage_lines = [line for line in doc["lines"] if line["kind"] == "usage"]
    assert [line["nanos"] for line in usage_lines] == [2 * before, 350_000, 391_000]
    assert f"price v{new['id']}, sell v{markup}" in usage_lines[1]["description"]
    assert doc["totals"]["margin_nanos"] == 350_000 + 391_000 - 2 * after


# ----------------------------------------------------------------------------- carry-over


def _carried_in(db, customer_id: int, month: str) -> int:
    row = db.execute(
        "SELECT carried_in_nanos FROM monthly_usage WHERE customer_id = %s AND month = %s",
        (customer_id, month),
    ).fetchone()
    return row["carried_in_nanos"] if row else 0


def _patch(admin, invoice_id: int, status: str):
    return admin.patch("admin-invoices", params={"id": invoice_id}, json={"status": status})


def test_paid_in_credit_carries_into_the_next_month_when_issued_and_back_when_voided(admin, db, make_key):
    key = make_key(customer={"plan_id": _plan(db, "carry", included_cents=200)})
    jan, feb = "2026-01", "2026-02"
    add_usage(db, key.customer_id, key.key_id, month=jan, cost_nanos=50 * CENT, sell_nanos=100 * CENT)
    _topup(db, key.customer_id, 1_000, "manual", "2026-01-02", month=jan)
    first = _snapshot(admin, key.customer_id, jan)
    totals = first["snapshot"]["totals"]
    # 11.00 left: the 1.00 of included credit not used does not carry; the 10.00 paid in does.
    assert (totals["credit_remaining_nanos"], totals["carried_out_nanos"]) == (1_100 * CENT, 1_000 * CENT)
    assert _carried_in(db, key.customer_id, feb) == 0  # a draft books nothing
    stale_feb = _snapshot(admin, key.customer_id, feb)
    assert stale_feb["snapshot"]["totals"]["carried_in_nanos"] == 0

    issued = ok(_patch(admin, first["id"], "issued"))["item"]
    assert issued["carried_out_nanos"] == 1_000 * CENT
    assert _carried_in(db, key.customer_id, feb) == 1_000 * CENT

    add_usage(db, key.customer_id, key.key_id, month=feb, cost_nanos=10 * CENT, sell_nanos=50 * CENT)
    refused = _patch(admin, stale_feb["id"], "issued")  # counted no carried credit: stale
    assert refused.status_code == 409 and refused.json()["code"] == "STALE_INVOICE", refused.text
    february = _snapshot(admin, key.customer_id, feb)
    lines = february["snapshot"]["lines"]
    assert {"kind": "carried_in", "description": "Credit carried in from 2026-01", "nanos": -1_000 * CENT,
            "cents": -1_000} in lines  # fmt: skip
    feb_totals = february["snapshot"]["totals"]
    assert feb_totals["carried_in_nanos"] == 1_000 * CENT
    # 10.00 carried + 2.00 included - 0.50 used = 11.50 left, of which the 10.00 paid in carries on.
    assert (feb_totals["credit_remaining_nanos"], feb_totals["carried_out_nanos"]) == (
        1_150 * CENT,
        1_000 * CENT,
    )

    live_feb = ok(_patch(admin, february["id"], "issued"))["item"]
    assert _carried_in(db, key.customer_id, "2026-03") == 1_000 * CENT
    blocked = _patch(admin, first["id"], "void")  # February counted January's credit
    assert blocked.status_code == 409 and blocked.json()["code"] == "NEXT_MONTH_ISSUED", blocked.text
    assert _carried_in(db, key.customer_id, feb) == 1_000 * CENT

    ok(_patch(admin, live_feb["id"], "void"))
    assert _carried_in(db, key.customer_id, "2026-03") == 0
    voided = ok(_patch(admin, first["id"], "void"))["item"]
    assert (voided["status"], voided["number"], voided["carried_out_nanos"]) == ("void", 1, 1_000 * CENT)
    assert _carried_in(db, key.customer_id, feb) == 0
    again = _snapshot(admin, key.customer_id, feb)["snapshot"]
    assert [line["kind"] for line in again["lines"]] == ["usage", "included_credit"]


# ----------------------------------------------------------------------------- the arithmetic itself

LINE_NANOS = st.integers(min_value=0, max_value=10**12)


@settings(max_examples=200, deadline=None)
@given(
    sells=st.lists(LINE_NANOS, max_size=6),
    push=LINE_NANOS,
    included_cents=st.integers(0, 10**5),
    carried_in=st.integers(0, 10**12),
    topups=st.lists(st.integers(-(10**5), 10**5).filter(bool), max_size=6),
)
def test_every_statement_adds_up_and_carries_only_paid_in_credit(
    sells, push, included_cents, carried_in, topups
):
    groups = [
        {"provider": "openai", "model": "m", "price_version_id": i, "sell_version_id": None, "calls": 1,
         "input_tokens": 1, "output_tokens": 1, "cost_nanos": sell // 2, "sell_nanos": sell}
        for i, sell in enumerate(sells)
    ]  # fmt: skip
    rows = [
        {
            "amount_cents": cents,
            "source": "manual" if cents > 0 else "stripe_reversal",
            "created_at": "2026-02-01",
        }
        for cents in topups
    ]
    pushes = [{"total_nanos": push, "deploys": 1}]
    usage = reconcile.usage_lines(groups)
    included = money.nanos(included_cents)
    lines = reconcile.statement(
        usage,
        pushes,
        rows,
        included_nanos=included,
        carried_in_nanos=carried_in,
        plan="p",
        previous_month="m",
    )
    totals = reconcile.totals(
        usage, lines, push_nanos=push, included_nanos=included, carried_in_nanos=carried_in, topups=rows
    )
    grand = sum(line["nanos"] for line in lines)
    assert (
        totals["grand_total_nanos"]
        == grand
        == sum(sells) + push - included - carried_in - money.nanos(sum(topups))
    )
    assert totals["grand_total_cents"] == money.cents(grand)
    assert all(line["cents"] == money.cents(line["nanos"]) for line in lines)
    assert abs(totals["grand_total_cents"] - sum(line["cents"] for line in lines)) <= len(lines) // 2 + 1
    assert totals["due_nanos"] - totals["credit_remaining_nanos"] == grand
    assert min(totals["due_nanos"], totals["credit_remaining_nanos"]) == 0
    paid_in = carried_in + money.nanos(sum(topups))
    assert 0 <= totals["carried_out_nanos"] <= totals["credit_remaining_nanos"]
    assert totals["carried_out_nanos"] <= max(0, paid_in)
    # Included credit is spent first: whatever paid-in credit the charges left is carried.
    spent_from_paid_in = max(0, sum(sells) + push - included)
    assert totals["carried_out_nanos"] == max(0, min(totals["credit_remaining_nanos"], paid_in))
    if spent_from_paid_in <= paid_in:
        assert totals["carried_out_nanos"] == paid_in - spent_from_paid_in


@pytest.mark.parametrize(
    ("remaining", "carried_in", "topups_net", "carried"),
    [
        (400, 0, 0, 0),  # only included credit left: nothing carries
        (300, 0, 1_000, 300),  # usage ate the included credit and some top-up
        (1_400, 0, 1_000, 1_000),  # included credit left over is dropped
        (0, 500, 0, 0),  # nothing left
        (50, 200, -300, 0),  # a refund took more than was left of the paid-in credit
    ],
)
def test_carried_out_takes_only_paid_in_credit(remaining, carried_in, topups_net, carried):
    assert reconcile.carried_out(remaining, carried_in, topups_net) == carried
