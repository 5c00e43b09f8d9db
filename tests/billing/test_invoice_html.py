"""The printable invoice (GET admin-invoices?id=&format=html): the operator's header, the
number or a DRAFT mark, what the customer pays and why; everything escaped; never the cost
or the margin. (In a browser, as one A4 page: test_invoice_print.py.)"""

from __future__ import annotations

import re
from typing import Any

from tests.support import admin as admin_support
from tests.support.admin import ok
from tests.support.reports import add_usage

admin = admin_support.admin  # the fixture

MONTH = "2026-02"
TRICKY_EMAIL = 'o\'brien+<b>"x"</b>&co@example.com'


def arrange_invoice(db, make_key, *, email: str = "billing@customer.example") -> int:
    """A customer whose plan sells at cost + 25 %, with usage, a top-up and a refund, KaixuPush
    charges: every kind of line an invoice has. Returns the customer id."""
    key = make_key(customer={"email": email})
    markup = db.execute(
        "INSERT INTO sell_prices (plan_id, effective_from, kind, markup_bp, created_by) "
        "SELECT plan_id, '2026-01-01', 'markup', 2500, 'test' FROM customers WHERE id = %s RETURNING id",
        (key.customer_id,),
    ).fetchone()["id"]
    for model, cost, sell in (
        ("gpt-4o-mini", 80_000_000, 100_000_000),
        ("gpt-4o", 1_234_567_890, 1_543_209_863),
    ):
        price = db.execute(
            "SELECT p.id FROM model_prices p JOIN model_names n ON n.model_id = p.model_id "
            "WHERE n.provider = 'openai' AND n.name = %s",
            (model,),
        ).fetchone()
        add_usage(
            db,
            key.customer_id,
            key.key_id,
            model=model,
            cost_nanos=cost,
            sell_nanos=sell,
            price_version_id=price["id"],
            sell_version_id=markup,
            input_tokens=12_345,
            output_tokens=678,
        )
    db.execute(
        "INSERT INTO topups (customer_id, month, amount_cents, source, actor) VALUES (%s, %s, 100, 'stripe', "
        "'stripe'), (%s, %s, -50, 'stripe_reversal', 'stripe')",
        (key.customer_id, MONTH, key.customer_id, MONTH),
    )
    db.execute(
        "INSERT INTO push_invoices (customer_id, month, pricing_version, total_cents, total_nanos, deploys, "
        "bytes, breakdown) VALUES (%s, %s, 1, 35, 350000000, 3, 0, '{}')",
        (key.customer_id, MONTH),
    )
    return key.customer_id


def draft(admin, customer_id: int) -> dict[str, Any]:
    return ok(admin.post("admin-invoices", json={"customer_id": customer_id, "month": MONTH}), 201)["item"]


def printable(admin, invoice_id: int) -> str:
    response = admin.get("admin-invoices", params={"id": invoice_id, "format": "html"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in response.headers["content-security-policy"]  # no script runs in it
    assert response.headers["x-content-type-options"] == "nosniff"
    return response.text


def test_an_issued_invoice_prints_the_operator_number_lines_and_amount(admin, db, make_key, configure):
    configure(
        OPERATOR_NAME="Acme & Sons <Cloud>",
        OPERATOR_ADDRESS="1 Main Street\\nSpringfield 12345\\nUSA",
        OPERATOR_EMAIL="billing@acme.example",
    )
    customer_id = arrange_invoice(db, make_key)
    item = draft(admin, customer_id)
    ok(admin.patch("admin-invoices", params={"id": item["id"]}, json={"status": "issued"}))
    html = printable(admin, item["id"])

    assert html.startswith("<!doctype html>") and "<script" not in html
    assert "Acme &amp; Sons &lt;Cloud&gt;" in html and "<Cloud>" not in html
    assert "1 Main Street\nSpringfield 12345\nUSA\nbilling@acme.example" in html
    assert "No. 1" in html and "DRAFT" not in html and ">Issued<" in html
    assert "billing@customer.example (#" in html and "February 2026" in html
    assert "@page { size: A4;" in html
    # Usage at its sell price with its sell unit prices, KaixuPush, the credits and the total.
    assert "openai gpt-4o-mini" in html and "$0.1875 in / $0.75 out per 1M tokens" in html
    assert "openai gpt-4o" in html and "$3.125 in / $12.5 out per 1M tokens" in html
    assert ">$0.10<" in html and ">$1.54<" in html  # 0.1 and 1.543209863 USD
    assert "KaixuPush: 3 deploys" in html and ">$0.35<" in html
    assert "Top-up, Stripe" in html and ">\u2212$1.00<" in html
    assert "Stripe refund or dispute taken back" in html and ">$0.50<" in html
    # 0.10 + 1.543209863 + 0.35 - 1.00 + 0.50 = 1.493209863 USD due.
    assert re.search(r"Amount due</td><td class=\"num\">\$1\.49<", html), html
    assert "Only paid-in credit carries over" in html


def test_the_customer_never_sees_cost_or_margin(admin, db, make_key):
    customer_id = arrange_invoice(db, make_key)
    item = draft(admin, customer_id)
    html = printable(admin, item["id"])
    totals = item["snapshot"]["totals"]
    assert totals["cost_cents"] == 131 and totals["margin_cents"] == 33  # in the operator's document
    text = re.sub(r"<style>.*?</style>", "", html, flags=re.S).lower()  # CSS has margins of its own
    assert "cost" not in text and "margin" not in text, text
    assert "$1.31" not in html and "$0.33" not in html  # the cost and the margin
    assert "$0.15 in" not in html and "$2.5 in" not in html  # the cost unit prices


def test_escaping_and_the_draft_and_void_marks(admin, db, make_key):
    customer_id = arrange_invoice(db, make_key, email=TRICKY_EMAIL)
    item = draft(admin, customer_id)
    html = printable(admin, item["id"])
    assert "o&#x27;brien+&lt;b&gt;&quot;x&quot;&lt;/b&gt;&amp;co@example.com" in html
    assert "<b>" not in html
    assert 'Invoice <span class="status">DRAFT</span>' in html and 'class="watermark"' in html
    assert ">Draft<" in html and "No. " not in html
    assert "Kaixu Gateway" in html  # the default OPERATOR_NAME
    ok(admin.patch("admin-invoices", params={"id": item["id"]}, json={"status": "issued"}))
    ok(admin.patch("admin-invoices", params={"id": item["id"]}, json={"status": "void"}))
    void = printable(admin, item["id"])
    assert ">VOID</div>" in void and "No. 1" in void and ">Voided</dt>" in void


def test_a_snapshot_taken_before_reconciliation_is_refused_not_half_printed(admin, db, make_key):
    customer_id = make_key().customer_id
    old = db.execute(
        "INSERT INTO invoice_snapshots (customer_id, month, version, snapshot, total_cents, created_by) "
        "VALUES (%s, %s, 1, '{\"totals\": {\"total_cents\": 0}}', 0, 'admin') RETURNING id",
        (customer_id, MONTH),
    ).fetchone()["id"]
    for response in (
        admin.get("admin-invoices", params={"id": old, "format": "html"}),
        admin.patch("admin-invoices", params={"id": old}, json={"status": "issued"}),
    ):
        assert response.status_code == 409 and response.json()["code"] == "SNAPSHOT_OUTDATED", response.text
    assert (
        db.execute("SELECT status FROM invoice_snapshots WHERE id = %s", (old,)).fetchone()["status"]
        == "draft"
    )


def test_unknown_invoice_is_404(admin):
    response = admin.get("admin-invoices", params={"id": 424242, "format": "html"})
    assert response.status_code == 404 and response.json()["code"] == "NOT_FOUND"
