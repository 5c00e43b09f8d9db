"""The printable invoice in a real browser: a full month prints on ONE A4 page, and the
Billing panel issues, marks paid, voids and prints an invoice (Print / PDF opens the HTML,
fetched with the admin credential, in a new window from a Blob URL, styled)."""

from __future__ import annotations

import re
from typing import Any

from tests.support import admin as admin_support
from tests.support import browser as browser_support
from tests.support.admin import ok
from tests.support.browser import log_in, open_panel, screenshot
from tests.support.reports import add_usage

browser_support.require_chromium()

from playwright.sync_api import expect  # noqa: E402  (after the skip check)

admin = admin_support.admin
browser = browser_support.browser
page = browser_support.page
console = browser_support.console

MONTH = "2026-02"
PDF_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")
# Ten models, each at two price versions: a busy month, as long as a usual invoice gets.
MODELS = [
    ("openai", "gpt-4o-mini"),
    ("openai", "gpt-4o"),
    ("openai", "gpt-4.1"),
    ("openai", "gpt-4.1-mini"),
    ("openai", "text-embedding-3-small"),
    ("anthropic", "claude-sonnet-4-5-20250929"),
    ("anthropic", "claude-haiku-4-5-20251001"),
    ("gemini", "gemini-2.5-flash"),
    ("gemini", "gemini-2.5-pro"),
    ("gemini", "gemini-2.5-flash-lite"),
]


def busy_month(db, make_key) -> int:
    """A customer with a long invoice: 20 usage lines, KaixuPush, included credit, carried
    credit, five top-ups and two refunds. Returns the customer id."""
    plan = db.execute(
        "INSERT INTO plans (name, monthly_cap_cents, included_credit_cents) "
        "VALUES ('business', 500000, 2500) RETURNING id"
    ).fetchone()["id"]
    key = make_key(
        customer={"email": "accounts-payable@a-rather-long-customer-name.example", "plan_id": plan}
    )
    for n, (provider, model) in enumerate(MODELS):
        price = db.execute(
            "SELECT p.* FROM model_prices p JOIN model_names m ON m.model_id = p.model_id "
            "WHERE m.provider = %s AND m.name = %s",
            (provider, model),
        ).fetchone()
        assert price is not None, model
        newer = db.execute(
            "INSERT INTO model_prices (model_id, effective_from, input_nanos, output_nanos, "
            "cache_read_nanos, cache_write_5m_nanos, cache_write_1h_nanos, request_nanos, created_by) "
            "VALUES (%s, '2026-02-15', %s, %s, 0, 0, 0, 0, 'test') RETURNING id",
            (price["model_id"], price["input_nanos"] + 10, price["output_nanos"] + 40),
        ).fetchone()["id"]
        for version in (price["id"], newer):
            cost = 123_456_789 * (n + 1) + version
            add_usage(
                db, key.customer_id, key.key_id, provider=provider, model=model, price_version_id=version,
                cost_nanos=cost, sell_nanos=cost, input_tokens=1_234_567, output_tokens=89_012,
            )  # fmt: skip
    db.execute(
        "INSERT INTO monthly_usage (customer_id, month, carried_in_nanos) VALUES (%s, %s, 1234500000)",
        (key.customer_id, MONTH),
    )
    topups = [(5_000, "manual"), (2_500, "stripe"), (2_500, "stripe"), (1_000, "manual"), (10_000, "stripe")]
    for cents, source in [*topups, (-1_000, "stripe_reversal"), (-500, "stripe_reversal")]:
        db.execute(
            "INSERT INTO topups (customer_id, month, amount_cents, source, actor) "
            "VALUES (%s, %s, %s, %s, 'a')",
            (key.customer_id, MONTH, cents, source),
        )
    db.execute(
        "INSERT INTO push_invoices (customer_id, month, pricing_version, total_cents, total_nanos, deploys, "
        "bytes, breakdown) VALUES (%s, %s, 1, 412, 4123456789, 41, 0, '{}')",
        (key.customer_id, MONTH),
    )
    return key.customer_id


def issued_invoice(admin, customer_id: int) -> dict[str, Any]:
    item = ok(admin.post("admin-invoices", json={"customer_id": customer_id, "month": MONTH}), 201)["item"]
    return ok(admin.patch("admin-invoices", params={"id": item["id"]}, json={"status": "issued"}))["item"]


def test_a_busy_month_prints_on_one_a4_page(page, admin, db, make_key, configure) -> None:
    configure(
        OPERATOR_NAME="Kaixu Cloud Ltd",
        OPERATOR_ADDRESS="4 Harbour Road\\nSuite 12\\nDublin D02 XY45\\nIreland",
    )
    invoice = issued_invoice(admin, busy_month(db, make_key))
    assert len(invoice["snapshot"]["lines"]) == 20 + 1 + 1 + 1 + 7
    response = admin.get("admin-invoices", params={"id": invoice["id"], "format": "html"})
    assert response.status_code == 200, response.text

    page.set_viewport_size({"width": 794, "height": 1123})  # A4 at 96 dpi
    page.set_content(response.text)
    expect(page.locator("h1")).to_contain_text("No. 1")
    assert page.evaluate("getComputedStyle(document.querySelector('table')).borderCollapse") == "collapse"
    screenshot(page, "12-invoice-printable")
    pdf = page.pdf(format="A4", prefer_css_page_size=True)
    assert pdf.startswith(b"%PDF")
    assert len(PDF_PAGE.findall(pdf)) == 1, "the invoice must print on one page"


def test_the_billing_panel_issues_pays_voids_and_prints_an_invoice(
    page, admin, db, make_key, console
) -> None:
    key = make_key(customer={"email": "print@example.com"})
    add_usage(db, key.customer_id, key.key_id, cost_nanos=100_000_000, sell_nanos=123_456_789)
    ok(admin.post("admin-invoices", json={"customer_id": key.customer_id, "month": MONTH}), 201)
    dialogs: list[str] = []

    def accept(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    log_in(page)
    section = open_panel(page, "billing")
    section.get_by_label("Customer ID", exact=True).fill(str(key.customer_id))
    section.locator("#billing-load").get_by_role("button", name="Load").click()
    listed = section.locator("#invoices-table tbody tr")
    expect(listed).to_have_count(1)
    expect(listed.first).to_contain_text("draft")
    listed.first.get_by_role("button", name=re.compile("View version 1")).click()
    view = section.locator("#invoice-view")
    expect(view).to_contain_text("Invoice Draft")
    actions = view.locator("[data-invoice-actions]")
    expect(actions.get_by_role("button")).to_have_text(["Print / PDF", "Issue"])

    actions.get_by_role("button", name="Issue").click()
    status = section.locator("#invoice-status")
    expect(status).to_contain_text(f"Issued: invoice No. 1 of {MONTH}")
    assert "takes the next invoice number" in dialogs[-1]
    expect(view.locator("h4").first).to_contain_text("Invoice No. 1")
    expect(listed.first).to_contain_text("issued")
    expect(listed.first).to_contain_text("No. 1")
    expect(actions.get_by_role("button")).to_have_text(["Print / PDF", "Mark paid", "Void"])
    screenshot(page, "12-invoice-billing-issued")

    with page.expect_popup() as opened:
        actions.get_by_role("button", name="Print / PDF").click()
    printable = opened.value
    expect(printable.locator("h1")).to_contain_text("No. 1")
    expect(printable.locator("body")).to_contain_text("print@example.com")
    assert printable.url.startswith("blob:")
    # Styled, although a blob document inherits the admin page's CSP (no inline <style>).
    printable.wait_for_function("getComputedStyle(document.body).maxWidth !== 'none'")
    expect(status).to_contain_text("Opened invoice No. 1")
    screenshot(printable, "12-invoice-print-window")
    printable.close()

    actions.get_by_role("button", name="Mark paid").click()
    expect(status).to_contain_text("Marked paid: invoice No. 1")
    expect(view.locator("h4").first).to_contain_text("paid")
    view.locator("[data-invoice-actions]").get_by_role("button", name="Void").click()
    expect(status).to_contain_text("Voided: invoice No. 1")
    assert "cannot be undone" in dialogs[-1]
    expect(view.locator("[data-invoice-actions]").get_by_role("button")).to_have_text(["Print / PDF"])
    row = db.execute(
        "SELECT status, number FROM invoice_snapshots WHERE customer_id = %s", (key.customer_id,)
    )
    assert row.fetchone() == {"status": "void", "number": 1}
