"""The Monitor's refusals, error rates and pruning, and the Audit panel, in a real browser
against the real server and database: what an operator sees after a refused call, how a
prune is confirmed before it deletes, and how the audit log is filtered and paged."""

from __future__ import annotations

from typing import Any

import pytest
from psycopg.types.json import Jsonb

from shared.errors import REFUSALS
from tests.support import browser as browser_support
from tests.support.admin import chat
from tests.support.browser import ADMIN_PASSWORD, PHONE, log_in, open_panel, screenshot
from tests.support.database import wait_for

browser_support.require_chromium()

from playwright.sync_api import expect  # noqa: E402  (after the skip check)

browser = browser_support.browser
page = browser_support.page
console = browser_support.console

expect.set_options(timeout=10_000)
CAP_SENTENCE = REFUSALS["CAP_REACHED"].format(scope="customer")


@pytest.fixture
def admin_env(configure: Any) -> None:
    configure(ADMIN_PASSWORD=ADMIN_PASSWORD)


def add_event(db: Any, summary: str, **values: object) -> None:
    row = {"level": "info", "function_name": "gateway-chat", "kind": "http", "summary": summary, **values}
    db.execute(
        f"INSERT INTO gateway_events ({', '.join(row)}) VALUES ({', '.join(['%s'] * len(row))})",
        list(row.values()),
    )


def add_audit(db: Any, actor: str, action: str, target: str, **details: object) -> None:
    db.execute(
        "INSERT INTO audit_events (actor, action, target, details) VALUES (%s, %s, %s, %s)",
        (actor, action, target, Jsonb(details)),
    )


def ancient_rows(db: Any) -> int:
    return db.execute("SELECT count(*) AS n FROM gateway_events WHERE summary = 'ancient'").fetchone()["n"]


def refused_call(server: str, db: Any, make_key: Any) -> str:
    """One gateway call refused for its customer's cap; returns its request id once monitored."""
    capped = make_key(customer={"monthly_cap_cents": 0})
    response = chat(server, capped.secret, app="capped-app")
    assert response.status_code == 402
    request_id = response.json()["request_id"]
    assert wait_for(
        lambda: db.execute("SELECT 1 FROM gateway_events WHERE request_id = %s", (request_id,)).fetchone()
    )
    return request_id


def test_monitor_shows_refusals_rates_and_prunes_after_confirmation(
    page, server, db, make_key, upstreams, admin_env
) -> None:
    refused_call(server, db, make_key)
    add_event(db, "upstream failed", status=502, level="error", code="UPSTREAM_ERROR")
    add_event(db, "ancient", kind="test", status=200, created_at="2020-01-01T00:00:00Z")
    log_in(page)
    section = open_panel(page, "monitor")

    rates = section.locator("#monitor-rates-table tbody tr", has_text="gateway-chat")
    expect(rates).to_have_count(1)
    expect(rates).to_contain_text("100.0 %")  # the 402 and the 502: both failed

    refusal = section.locator("#monitor-table tbody tr", has_text="capped-app")
    expect(refusal).to_contain_text("CAP_REACHED")
    expect(refusal).to_contain_text(CAP_SENTENCE)
    expect(refusal.locator(".badge", has_text="warn")).to_be_visible()

    section.get_by_label("Level", exact=True).select_option("warn")
    section.get_by_role("button", name="Apply filters").click()
    rows = section.locator("#monitor-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("CAP_REACHED")
    section.get_by_label("Level", exact=True).select_option("")
    section.get_by_label("Code", exact=True).fill("UPSTREAM_ERROR")
    section.get_by_role("button", name="Apply filters").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("upstream failed")
    section.get_by_label("Code", exact=True).fill("")
    section.get_by_role("button", name="Apply filters").click()
    expect(section.locator("#monitor-table tbody tr", has_text="ancient")).to_have_count(1)
    screenshot(page, "20-monitor-refusals-and-rates")

    prune = section.locator("#monitor-prune")
    prune.get_by_label("Delete events older than (days)").fill("30")
    page.once("dialog", lambda dialog: dialog.dismiss())
    prune.get_by_role("button", name="Prune…").click()
    expect(section.locator("#monitor-prune-status")).to_have_text("Nothing was deleted.")
    assert ancient_rows(db) == 1

    questions: list[str] = []

    def accept(dialog: Any) -> None:
        questions.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    prune.get_by_role("button", name="Prune…").click()
    expect(section.locator("#monitor-prune-status")).to_have_text("Deleted 1 event older than 30 days.")
    assert questions == ["Delete every monitor event older than 30 days? This cannot be undone."]
    expect(section.locator("#monitor-table tbody tr", has_text="ancient")).to_have_count(0)
    expect(section.locator("#monitor-table tbody tr", has_text="capped-app")).to_have_count(1)
    assert ancient_rows(db) == 0
    screenshot(page, "20-monitor-pruned")


def test_audit_panel_filters_pages_and_narrows_by_a_clicked_value(page, server, db, admin_env) -> None:
    for n in range(60):
        add_audit(db, "cli", "key.rotate", f"key:{n}", customer_id=7)
    add_audit(db, "admin", "topup.create", "customer:7", amount_cents=100, note={"by": "ops"})
    log_in(page)
    section = open_panel(page, "audit")
    rows = section.locator("#audit-table tbody tr")
    expect(rows).to_have_count(50)
    expect(rows.first).to_contain_text("admin.login")  # this sign-in, newest
    expect(rows.nth(1)).to_contain_text("topup.create")
    expect(rows.nth(1)).to_contain_text("amount_cents: 100")
    expect(rows.nth(1)).to_contain_text('note: {"by":"ops"}')  # jsonb orders the keys its own way

    section.get_by_label("Actor", exact=True).fill("cli")
    section.get_by_role("button", name="Apply filters").click()
    expect(rows.first).to_contain_text("key:59")
    section.get_by_role("button", name="More").click()
    expect(rows).to_have_count(60)
    expect(rows.last).to_contain_text("key:0")
    expect(section.get_by_role("button", name="More")).to_be_hidden()
    screenshot(page, "21-audit-paged")

    section.get_by_label("Actor", exact=True).fill("")
    section.get_by_role("button", name="Apply filters").click()
    section.get_by_role("button", name="customer:7").click()  # a target narrows the list to it
    expect(section.get_by_label("Target", exact=True)).to_have_value("customer:7")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("topup.create")

    section.get_by_label("Target", exact=True).fill("")
    section.get_by_label("Since", exact=True).fill("2999-01-01T00:00")
    section.get_by_role("button", name="Apply filters").click()
    expect(rows).to_have_text(["No audit events match these filters."])
    screenshot(page, "21-audit-filtered")


def test_monitor_and_audit_at_phone_width(page, server, db, make_key, upstreams, admin_env) -> None:
    refused_call(server, db, make_key)
    add_audit(db, "admin", "monitor.prune", "gateway_events", days=30, deleted=12)
    page.set_viewport_size(PHONE)
    log_in(page)
    page.get_by_role("button", name="Menu").click()
    page.locator('#sidenav a[href="#monitor"]').click()
    expect(page.locator("#sidenav")).to_be_hidden()
    section = page.locator("#panel-monitor")
    expect(section.locator("#monitor-table tbody tr", has_text="CAP_REACHED")).to_have_count(1)
    expect(section.locator("#monitor-rates-table tbody tr", has_text="gateway-chat")).to_have_count(1)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scroll
    expect(section.get_by_role("button", name="Prune…")).to_be_visible()
    screenshot(page, "22-phone-monitor")
    page.get_by_role("button", name="Menu").click()
    page.locator('#sidenav a[href="#audit"]').click()
    expect(page.locator("#sidenav")).to_be_hidden()
    audit = page.locator("#panel-audit")
    expect(audit.locator("#audit-table tbody tr", has_text="monitor.prune")).to_have_count(1)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "22-phone-audit")
