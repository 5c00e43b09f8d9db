"""The price book, plans and a customer's plan and limits in a real browser against the real
server and database: add a model and reprice it (a new version each time, the history shows
both), retire and restore it; create a plan with a markup, edit it, make it the default; put a
customer on it and see each setting's value in force with where it comes from; override and
clear the customer's markup. Screenshots of both panels."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import browser as browser_support
from tests.support.browser import ADMIN_PASSWORD, log_in, open_panel, screenshot

browser_support.require_chromium()

from playwright.sync_api import expect  # noqa: E402  (after the skip check)

browser = browser_support.browser
page = browser_support.page
console = browser_support.console
expect.set_options(timeout=10_000)

MODEL = "gpt-test-pricing"
EMAIL = "planned@example.com"


@pytest.fixture
def admin_env(configure: Any) -> None:
    configure(ADMIN_PASSWORD=ADMIN_PASSWORD)


def accept_next_dialog(page: Any) -> None:
    page.once("dialog", lambda dialog: dialog.accept())


def model_row(section: Any) -> Any:
    return section.locator("#models-table tbody tr", has_text=MODEL)


def plan_row(section: Any, name: str) -> Any:
    return section.locator("#plans-table tbody tr").filter(
        has=section.page.locator("td:first-child strong", has_text=name)
    )


def versions_of(db: Any) -> list[dict[str, Any]]:
    return db.execute(
        "SELECT p.input_nanos, p.output_nanos, p.cache_read_nanos FROM model_prices p "
        "JOIN models m ON m.id = p.model_id WHERE m.name = %s ORDER BY p.effective_from, p.id",
        (MODEL,),
    ).fetchall()


def test_price_book_add_reprice_history_retire_restore(page, server, db, console, admin_env) -> None:
    log_in(page)
    section = open_panel(page, "models")
    expect(section.locator("#models-table tbody tr", has_text="gpt-4o-mini")).to_be_visible()

    form = section.locator("#model-create")
    form.get_by_label("Provider", exact=True).select_option("openai")
    form.get_by_label("Model name", exact=True).fill(MODEL)
    form.get_by_label("Aliases (comma-separated)", exact=True).fill(f"{MODEL}-2026-01-01")
    form.get_by_label("Max input tokens", exact=True).fill("128000")
    form.get_by_label("Max output tokens", exact=True).fill("16000")
    form.get_by_label("Input price (USD / Mtok)", exact=True).fill("1.5")
    form.get_by_label("Output price (USD / Mtok)", exact=True).fill("6")
    form.get_by_label("Cache read price (USD / Mtok)", exact=True).fill("0.15")
    form.get_by_role("button", name="Add model").click()
    expect(form.locator(".status")).to_have_text(f"Added openai {MODEL} to the price book.")
    row = model_row(section)
    expect(row).to_contain_text(f"{MODEL}-2026-01-01")
    expect(row).to_contain_text("$1.5")
    expect(row).to_contain_text("$6")
    expect(row).to_contain_text("128,000 / 16,000")
    assert versions_of(db) == [{"input_nanos": 1500, "output_nanos": 6000, "cache_read_nanos": 150}]

    with console.allow("status of 4"):  # the API's own sentence, next to the button
        form.get_by_label("Model name", exact=True).fill(MODEL)
        form.get_by_label("Max input tokens", exact=True).fill("1000")
        form.get_by_label("Max output tokens", exact=True).fill("100")
        form.get_by_label("Input price (USD / Mtok)", exact=True).fill("1")
        form.get_by_label("Output price (USD / Mtok)", exact=True).fill("1")
        form.get_by_role("button", name="Add model").click()
        expect(form.locator(".status")).to_have_class("status error")
        expect(form.locator(".status")).not_to_be_empty()

    row.get_by_role("button", name=f"Change price of openai {MODEL}").click()
    price = section.locator("#model-price")
    expect(section.locator("#model-price-card")).to_contain_text("creates a new price version")
    expect(price.get_by_label("Input (USD / Mtok)", exact=True)).to_have_value("1.5")
    price.get_by_label("Input (USD / Mtok)", exact=True).fill("2")
    price.get_by_label("Output (USD / Mtok)", exact=True).fill("8")
    price.get_by_role("button", name="Save as a new version").click()
    expect(price.locator(".status")).to_contain_text(
        f"Saved a new price version for openai {MODEL}: input $2"
    )
    expect(row).to_contain_text("$2")
    expect(row).to_contain_text("$8")
    # Only the changed kinds were sent: the cache price carried over into the new version.
    assert versions_of(db) == [
        {"input_nanos": 1500, "output_nanos": 6000, "cache_read_nanos": 150},
        {"input_nanos": 2000, "output_nanos": 8000, "cache_read_nanos": 150},
    ]

    row.get_by_role("button", name=f"Price history of openai {MODEL}").click()
    history = section.locator("#model-versions tbody tr")
    expect(history).to_have_count(2)
    expect(history.nth(0)).to_contain_text("in force")
    expect(history.nth(0)).to_contain_text("$2")
    expect(history.nth(1)).to_contain_text("superseded")
    expect(history.nth(1)).to_contain_text("$1.5")

    # A price from a later date is scheduled: shown in the list, the history, not yet in force.
    price.get_by_label("Output (USD / Mtok)", exact=True).fill("9")
    price.get_by_label("Effective from (your time; empty: now)", exact=True).fill("2099-01-01T00:00")
    price.get_by_role("button", name="Save as a new version").click()
    expect(price.locator(".status")).to_contain_text("Scheduled a new price version")
    expect(row).to_contain_text("from 2099-01-01 00:00: in $2 / out $9")
    expect(history).to_have_count(3)
    expect(history.nth(0)).to_contain_text("scheduled")
    expect(row.locator("td").nth(4)).to_have_text("$8")  # still the price in force
    screenshot(page, "14-price-book")

    accept_next_dialog(page)
    row.get_by_role("button", name=f"Retire openai {MODEL}").click()
    expect(section.locator("#models-status")).to_have_text(f"Retired openai {MODEL}.")
    expect(row).to_have_count(0)  # retired models are hidden unless asked for
    retired = db.execute("SELECT retired_at FROM models WHERE name = %s", (MODEL,)).fetchone()
    assert retired["retired_at"] is not None
    section.get_by_label("Show retired", exact=True).check()
    expect(row).to_contain_text("retired")
    row.get_by_role("button", name=f"Restore openai {MODEL}").click()
    expect(section.locator("#models-status")).to_have_text(f"Restored openai {MODEL}.")
    expect(row).to_contain_text("offered")
    restored = db.execute("SELECT retired_at FROM models WHERE name = %s", (MODEL,)).fetchone()
    assert restored["retired_at"] is None

    section.get_by_label("Provider", exact=True).first.select_option("anthropic")
    expect(row).to_have_count(0)
    expect(section.locator("#models-table tbody tr").first).to_contain_text("anthropic")


def test_plans_and_a_customers_inherited_settings(page, server, db, console, admin_env) -> None:
    db.execute("INSERT INTO customers (email, plan_id) SELECT %s, id FROM plans WHERE is_default", (EMAIL,))
    log_in(page)
    section = open_panel(page, "plans")
    expect(plan_row(section, "starter")).to_contain_text("default")

    form = section.locator("#plan-form")
    form.get_by_label("Name", exact=True).fill("pro")
    form.get_by_label("Monthly cap (cents)", exact=True).fill("5000")
    form.get_by_label("RPM limit", exact=True).fill("120")
    form.get_by_label("Markup (%)", exact=True).fill("25")
    form.get_by_label("Included credit (cents / month)", exact=True).fill("100")
    form.get_by_label("anthropic", exact=True).check()
    form.get_by_role("button", name="Create plan").click()
    expect(form.locator(".status")).to_have_text("Created plan pro.")
    pro = plan_row(section, "pro")
    expect(pro).to_contain_text("$50.00")
    expect(pro).to_contain_text("25%")
    expect(pro).to_contain_text("anthropic")
    expect(pro).to_contain_text("$1.00")

    pro.get_by_role("button", name="Edit plan pro").click()
    expect(form.get_by_label("Monthly cap (cents)", exact=True)).to_have_value("5000")
    form.get_by_label("Monthly cap (cents)", exact=True).fill("7500")
    form.get_by_role("button", name="Save plan pro").click()
    expect(form.locator(".status")).to_have_text("Saved plan pro.")
    expect(pro).to_contain_text("$75.00")
    saved = db.execute("SELECT id, monthly_cap_cents, rpm_limit FROM plans WHERE name = 'pro'").fetchone()
    assert (saved["monthly_cap_cents"], saved["rpm_limit"]) == (7500, 120)
    rules = db.execute("SELECT markup_bp FROM sell_prices WHERE plan_id = %s", (saved["id"],)).fetchall()
    assert rules == [{"markup_bp": 2500}]  # the unchanged markup was not sent again

    # The customer editor: put the customer on pro; every empty field follows the plan.
    customers = open_panel(page, "customers")
    customers.locator("#customers-table tbody tr", has_text=EMAIL).locator("td").first.click()
    editor = customers.locator("#customer-edit")
    expect(editor).to_be_visible()
    expect(customers.locator("#customer-editor h3")).to_contain_text(EMAIL)
    editor.get_by_label("Customer's plan", exact=True).select_option(label="pro")
    editor.get_by_role("button", name="Save plan and limits").click()
    expect(editor.locator(".status")).to_contain_text("Saved the plan and limits")
    effective = editor.locator("output[data-effective=monthly_cap_cents]")
    expect(effective).to_have_text("7500 ¢ ($75.00) · from plan")
    expect(editor.locator("output[data-effective=rpm_limit]")).to_have_text("120 · from plan")
    expect(editor.locator("output[data-effective=rpd_limit]")).to_have_text("no limit · default")
    expect(editor.locator("output[data-effective=allowed_providers]")).to_contain_text(
        "anthropic · from plan"
    )
    markup = customers.locator("#customer-markup")
    expect(markup.locator("output")).to_have_text("In force: 25% · from plan")
    expect(customers.locator("#customers-table tbody tr", has_text=EMAIL)).to_contain_text("pro")
    expect(customers.locator("#customers-table tbody tr", has_text=EMAIL)).to_contain_text("$75.00")

    # The customer's own value wins; emptying it again means the plan's value (null).
    editor.get_by_label("Own RPM limit", exact=True).fill("30")
    editor.get_by_role("button", name="Save plan and limits").click()
    expect(editor.locator("output[data-effective=rpm_limit]")).to_have_text("30 · customer")
    customer = db.execute(
        "SELECT id, plan_id, rpm_limit, monthly_cap_cents FROM customers WHERE email = %s", (EMAIL,)
    )
    row = customer.fetchone()
    assert (row["plan_id"], row["rpm_limit"], row["monthly_cap_cents"]) == (saved["id"], 30, None)
    editor.get_by_label("Own RPM limit", exact=True).fill("")
    editor.get_by_role("button", name="Save plan and limits").click()
    expect(editor.locator("output[data-effective=rpm_limit]")).to_have_text("120 · from plan")
    assert (
        db.execute("SELECT rpm_limit FROM customers WHERE id = %s", (row["id"],)).fetchone()["rpm_limit"]
        is None
    )

    markup.get_by_label("Markup override (%)", exact=True).fill("10")
    markup.get_by_role("button", name="Set markup").click()
    expect(markup.locator("output")).to_have_text("In force: 10% · customer")
    screenshot(page, "02-customers-plan-editor")
    markup.get_by_role("button", name="Use the plan's markup").click()
    expect(markup.locator("output")).to_have_text("In force: 25% · from plan")
    kinds = db.execute(
        "SELECT kind, markup_bp FROM sell_prices WHERE customer_id = %s ORDER BY id", (row["id"],)
    ).fetchall()
    assert kinds == [{"kind": "markup", "markup_bp": 1000}, {"kind": "inherit", "markup_bp": None}]

    # Make pro the default: new customers get it, and the create form offers it first.
    section = open_panel(page, "plans")
    pro = plan_row(section, "pro")
    expect(pro.locator("td").nth(11)).to_have_text("1")  # the customer count
    with console.allow("status of 409"):  # a plan with customers cannot go
        accept_next_dialog(page)
        pro.get_by_role("button", name="Delete plan pro").click()
        expect(section.locator("#plans-status")).to_have_class("status error")
        expect(section.locator("#plans-status")).not_to_be_empty()
    expect(pro).to_have_count(1)
    pro.get_by_role("button", name="Make pro the default plan").click()
    expect(section.locator("#plans-status")).to_contain_text("pro is now the default plan")
    expect(pro).to_contain_text("default")
    assert db.execute("SELECT name FROM plans WHERE is_default").fetchone()["name"] == "pro"
    accept_next_dialog(page)
    plan_row(section, "starter").get_by_role("button", name="Delete plan starter").click()
    expect(section.locator("#plans-status")).to_have_text("Deleted plan starter.")
    expect(plan_row(section, "starter")).to_have_count(0)
    screenshot(page, "15-plans")

    customers = open_panel(page, "customers")
    create = customers.locator("#customer-create")
    create.get_by_label("Email", exact=True).fill("new@example.com")
    create.get_by_label("Plan", exact=True).select_option(label="pro (default)")
    create.get_by_role("button", name="Create customer + issue master key").click()
    expect(create.locator(".status")).to_contain_text("Created customer")
    created = db.execute("SELECT plan_id FROM customers WHERE email = 'new@example.com'").fetchone()
    assert created["plan_id"] == saved["id"]
