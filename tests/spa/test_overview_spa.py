"""The Overview panel in a real browser: the month arranged with SQL (the same month as
tests/billing/test_overview.py, whose figures are checked there to the nanodollar), shown as
the operator sees it, downloaded as CSV and screenshotted."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shared.admin import accounts
from tests.support import browser as browser_support
from tests.support.browser import ADMIN_PASSWORD, log_in, open_panel, screenshot
from tests.support.overview import MONTH, arrange_month

browser_support.require_chromium()

from playwright.sync_api import expect  # noqa: E402  (after the skip check)

browser = browser_support.browser
page = browser_support.page
console = browser_support.console


@pytest.fixture
def month(db: Any, make_key: Callable[..., Any]) -> dict[str, int]:
    return arrange_month(db, make_key)


expect.set_options(timeout=10_000)


@pytest.fixture
def admin_env(configure: Any) -> None:
    configure(ADMIN_PASSWORD=ADMIN_PASSWORD)


def totals(section: Any) -> dict[str, str]:
    terms = section.locator("#overview-totals dt").all_text_contents()
    return dict(zip(terms, section.locator("#overview-totals dd").all_text_contents(), strict=True))


def test_the_overview_shows_the_months_figures_and_downloads_them(page, server, db, admin_env, month) -> None:
    log_in(page)
    assert page.locator("#sidenav a").first.inner_text() == "Overview"
    section = open_panel(page, "overview")
    expect(section.get_by_label("Month", exact=True)).to_have_value(accounts.current_month())
    expect(section.locator("#overview-customers tbody")).to_have_text("No customer was charged this month.")
    assert totals(section)["Margin %"] == "—"  # no revenue, no margin to speak of

    section.get_by_label("Month", exact=True).fill(MONTH)
    section.get_by_role("button", name="Show month").click()
    expect(section.locator("#overview-totals")).to_contain_text("$0.39")
    assert totals(section) == {
        "Revenue": "$0.39",
        "Provider cost": "$0.37",
        "Margin": "$0.02",
        "Margin %": "5.6 %",
        "KaixuPush": "$0.36",
        "Calls": "6",
    }
    expect(section.locator("#overview-chart svg rect.bar")).to_have_count(2)  # the 3rd and the 17th
    customers = section.locator("#overview-customers tbody tr")
    expect(customers).to_have_count(3)
    expect(customers.first).to_contain_text("=bob@example.com")  # text, never markup or a formula
    expect(customers.first).to_contain_text("-$0.01")
    expect(customers.first).to_contain_text("-2.0 %")
    expect(section.locator("#overview-models tbody tr")).to_have_count(3)
    expect(section.locator("#overview-providers tbody tr")).to_have_count(2)
    expect(section.locator("#overview-top tbody tr")).to_have_count(3)
    near = section.locator("#overview-near-cap tbody tr")
    expect(near).to_have_count(2)
    expect(near.first).to_contain_text("89.7 %")
    expect(section.locator("#overview-warn-pct")).to_have_text("(≥ 85 % of cap)")
    failures = section.locator("#overview-failures tbody tr")
    expect(failures).to_have_count(2)
    expect(failures.first).to_contain_text("Your card was declined.")
    expect(failures.first).to_contain_text("$25.00")
    screenshot(page, "00-overview")

    with page.expect_download() as info:
        section.get_by_role("button", name="Download CSV").click()
    download = info.value
    assert download.suggested_filename == f"kaixu-overview-{MONTH}.csv"
    lines = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert [line["email"] for line in lines] == [
        "'=bob@example.com",
        "alice@example.com",
        "carol@example.com",
        "",
    ]
    assert lines[-1]["row_type"] == "total" and lines[-1]["margin_nanos"] == "21956787"
    expect(section.locator("#overview-status")).to_contain_text(f"Saved kaixu-overview-{MONTH}.csv")

    customers.first.locator("td").first.click()  # a customer row selects the customer
    expect(page.locator("#selected-customer-label")).to_have_text(f"#{month['bob']} =bob@example.com")
