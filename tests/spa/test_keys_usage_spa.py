"""Keys, Usage and Billing in a real browser against the real server and database: edit a key's
role and overrides (an empty field inherits), see where each key was last used; choose a
customer by email or ID in any panel's picker and find it chosen in the others; see which
calls were estimated, did not end ok, were clamped or stopped at the cap; read what an empty
RPM limit really means. Each with a screenshot, and the picker at phone width."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support import browser as browser_support
from tests.support.browser import ADMIN_PASSWORD, PHONE, log_in, open_panel, screenshot

browser_support.require_chromium()

from playwright.sync_api import expect  # noqa: E402  (after the skip check)

browser = browser_support.browser
page = browser_support.page
console = browser_support.console
expect.set_options(timeout=10_000)

MONTH = "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM')"


@pytest.fixture
def admin_env(configure: Any) -> None:
    configure(ADMIN_PASSWORD=ADMIN_PASSWORD)


def pick(section: Any, field_id: str, typed: str, email: str) -> None:
    """Type into a panel's Customer ID picker and choose the match with `email`."""
    field = section.locator(f"#{field_id}")
    field.fill(typed)
    option = section.get_by_role("option", name=email)
    expect(option).to_be_visible()
    option.click()


def chosen(page: Any) -> Any:
    """The top bar's "Customer:" line."""
    return page.locator("#selected-customer-label")


def test_edit_a_key_and_see_where_it_was_last_seen(page, server, db, make_key, admin_env) -> None:
    key = make_key(customer={"email": "keys-owner@example.com"}, label="phone-app", rpm_limit=30)
    quiet = make_key(customer_id=key.customer_id, label="never-used")
    db.execute(
        "UPDATE api_keys SET last_seen_at = now(), last_seen_install_id = 'tablet-7' WHERE id = %s",
        (key.key_id,),
    )
    log_in(page)
    section = open_panel(page, "keys")
    pick(section, "keys-customer", "keys-owner", "keys-owner@example.com")
    expect(section.get_by_label("Customer ID", exact=True)).to_have_value(str(key.customer_id))
    used = section.locator("#keys-table tbody tr", has_text="phone-app")
    expect(used.locator("td").last).to_contain_text("tablet-7")
    expect(section.locator("#keys-table tbody tr", has_text="never-used").locator("td").last).to_have_text(
        "never"
    )
    expect(used).to_contain_text("RPD inherit")

    section.get_by_role("button", name=f"Edit key {key.key_id} ", exact=False).click()
    form = section.locator("#key-edit")
    expect(form.get_by_label("Label", exact=True)).to_have_value("phone-app")
    expect(form.get_by_label("Role", exact=True)).to_have_value("caller")
    expect(form.get_by_label("RPM override", exact=True)).to_have_value("30")
    expect(form.get_by_label("RPD override", exact=True)).to_have_value("")
    form.get_by_label("Role", exact=True).select_option("deployer")
    form.get_by_label("RPM override", exact=True).fill("")  # back to the customer's limit
    form.get_by_label("RPD override", exact=True).fill("500")
    form.get_by_label("anthropic", exact=True).check()
    form.get_by_role("button", name="Save key").click()
    expect(form.locator(".status")).to_have_text(f"Saved key {key.key_id} (…{used_last4(db, key)}).")
    saved = db.execute(
        "SELECT role, rpm_limit, rpd_limit, allowed_providers, label FROM api_keys WHERE id = %s",
        (key.key_id,),
    ).fetchone()
    assert saved == {
        "role": "deployer",
        "rpm_limit": None,
        "rpd_limit": 500,
        "allowed_providers": ["anthropic"],
        "label": "phone-app",
    }
    expect(used).to_contain_text("role: deployer")
    expect(used).to_contain_text("RPD 500")
    screenshot(page, "21-keys-edit")

    # A sub-key can be created with its own RPD; a revoked key cannot be edited.
    create = section.locator("#key-create")
    create.get_by_label("Label", exact=True).fill("daily")
    create.get_by_label("RPD override", exact=True).fill("50")
    create.get_by_role("button", name="Create sub-key").click()
    expect(section.locator("#keys-secret")).to_contain_text("shown only once")
    assert db.execute("SELECT rpd_limit FROM api_keys WHERE label = 'daily'").fetchone()["rpd_limit"] == 50
    db.execute("UPDATE api_keys SET revoked_at = now() WHERE id = %s", (quiet.key_id,))
    section.locator("#keys-load button[type=submit]").click()
    expect(section.get_by_role("button", name=f"Edit key {quiet.key_id} ", exact=False)).to_be_disabled()


def used_last4(db: Any, key: Any) -> str:
    return db.execute("SELECT key_last4 FROM api_keys WHERE id = %s", (key.key_id,)).fetchone()["key_last4"]


def test_the_chosen_customer_follows_across_panels(page, server, db, make_key, admin_env) -> None:
    first = make_key(customer={"email": "alpha-picker@example.com"}, label="alpha-key")
    second = make_key(customer={"email": "beta-picker@example.com"}, label="beta-key")
    log_in(page)

    # By ID, with the keyboard: the match is first, Enter chooses it and loads the panel.
    usage = open_panel(page, "usage")
    field = usage.get_by_label("Customer ID", exact=True)
    field.fill(str(second.customer_id))
    expect(usage.get_by_role("option").first).to_contain_text("beta-picker@example.com")
    field.press("Enter")
    expect(field).to_have_value(str(second.customer_id))
    expect(chosen(page)).to_have_text(f"#{second.customer_id} beta-picker@example.com")
    expect(usage.locator("#usage-table tbody tr").first).to_have_text("No calls in this month.")

    # Every other panel has it, and loads it when opened.
    keys = open_panel(page, "keys")
    expect(keys.get_by_label("Customer ID", exact=True)).to_have_value(str(second.customer_id))
    expect(keys.locator("#keys-table tbody tr", has_text="beta-key")).to_be_visible()
    billing = open_panel(page, "billing")
    expect(billing.get_by_label("Customer ID", exact=True)).to_have_value(str(second.customer_id))
    devices = open_panel(page, "devices")
    expect(devices.get_by_label("Customer ID", exact=True)).to_have_value(str(second.customer_id))
    exports = open_panel(page, "exports")
    expect(exports.get_by_label("Customer ID", exact=True)).to_have_value(str(second.customer_id))
    push = open_panel(page, "kaixupush")
    push_field = push.get_by_label("Customer ID", exact=True)
    expect(push_field).to_have_value(str(second.customer_id))
    push_field.fill("alpha-picker")
    expect(push.get_by_role("option").first).to_contain_text("alpha-picker@example.com")
    push_field.press("Escape")
    push_field.fill(str(second.customer_id))

    # By an email fragment in Billing: no match says so; a match loads its policy.
    field = billing.get_by_label("Customer ID", exact=True)
    open_panel(page, "billing")
    field.fill("nobody-here")
    expect(billing.locator(".picker-list")).to_contain_text("No customer matches")
    field.press("Escape")
    pick(billing, "billing-customer", "alpha-pick", "alpha-picker@example.com")
    expect(billing.locator("#policy-form .status")).to_have_text("")
    expect(chosen(page)).to_have_text(f"#{first.customer_id} alpha-picker@example.com")
    keys = open_panel(page, "keys")
    expect(keys.locator("#keys-table tbody tr", has_text="alpha-key")).to_be_visible()
    expect(keys.locator("#keys-table tbody tr", has_text="beta-key")).to_have_count(0)

    # An ID typed by hand and loaded becomes the chosen customer too.
    field = keys.get_by_label("Customer ID", exact=True)
    field.fill(str(second.customer_id))
    keys.locator("#keys-load button[type=submit]").click()
    expect(keys.locator("#keys-table tbody tr", has_text="beta-key")).to_be_visible()
    expect(chosen(page)).to_have_text(f"#{second.customer_id} beta-picker@example.com")

    # At phone width the picker still fits and works.
    page.set_viewport_size(PHONE)
    field.fill("alpha")
    expect(keys.get_by_role("option", name="alpha-picker@example.com")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "22-phone-customer-picker", full_page=False)
    keys.get_by_role("option", name="alpha-picker@example.com").click()
    expect(keys.locator("#keys-table tbody tr", has_text="alpha-key")).to_be_visible()


def test_usage_marks_estimated_calls_and_calls_that_did_not_end_ok(
    page, server, db, make_key, admin_env
) -> None:
    key = make_key(customer={"email": "usage-marks@example.com"})
    for model, outcome, estimated, clamped_to, stopped_code in (
        ("model-ok", "ok", False, None, None),
        ("model-failed", "upstream_error", False, None, None),
        ("model-dropped", "client_disconnect", True, None, None),
        ("model-clamped", "ok", False, 124, None),
        ("model-stopped", "stopped", True, None, "CAP_REACHED"),
    ):
        db.execute(
            "INSERT INTO usage_events (customer_id, api_key_id, month, provider, model, input_tokens,"
            f" output_tokens, cost_nanos, sell_nanos, outcome, estimated, clamped_to, stopped_code)"
            f" VALUES (%s, %s, {MONTH}, 'openai', %s, 10, 5, 1000, 1000, %s, %s, %s, %s)",
            (key.customer_id, key.key_id, model, outcome, estimated, clamped_to, stopped_code),
        )
    log_in(page)
    section = open_panel(page, "usage")
    pick(section, "usage-customer", "usage-marks", "usage-marks@example.com")
    rows = section.locator("#usage-table tbody tr")
    expect(rows).to_have_count(5)
    ok = rows.filter(has_text="model-ok")
    failed = rows.filter(has_text="model-failed")
    dropped = rows.filter(has_text="model-dropped")
    clamped = rows.filter(has_text="model-clamped")
    stopped = rows.filter(has_text="model-stopped")
    expect(ok).not_to_contain_text("not ok")
    expect(ok).not_to_contain_text("estimated")
    expect(ok).not_to_contain_text("clamped")
    expect(failed).to_contain_text("not ok: provider error")
    expect(failed).not_to_contain_text("estimated")
    expect(dropped).to_contain_text("not ok: client disconnected")
    expect(dropped).to_contain_text("estimated")
    expect(clamped).to_contain_text("clamped to 124 tokens")
    expect(clamped).not_to_contain_text("not ok")
    expect(clamped).to_have_class(re.compile(r"\bclamped\b"))
    expect(stopped).to_contain_text("stopped: CAP_REACHED")
    expect(stopped).to_contain_text("estimated")
    expect(stopped).not_to_contain_text("not ok")
    expect(stopped).to_have_class(re.compile(r"\bstopped\b"))
    screenshot(page, "23-usage-marks")


def test_an_empty_rpm_limit_says_what_applies(page, server, db, make_key, admin_env) -> None:
    plain = make_key(customer={"email": "default-rpm@example.com"})
    plan = db.execute(
        "INSERT INTO plans (name, monthly_cap_cents, rpm_limit, rpd_limit) VALUES ('slow', 1000, 45, 900)"
        " RETURNING id"
    ).fetchone()["id"]
    planned = make_key(customer={"email": "plan-rpm@example.com", "plan_id": plan})
    log_in(page)
    section = open_panel(page, "billing")
    policy = section.locator("#policy-form")
    rpm = policy.get_by_label("RPM limit", exact=True)
    expect(rpm).to_have_attribute("placeholder", "deployment default")
    expect(policy).to_contain_text("DEFAULT_RPM_LIMIT, 120/min unless set")
    expect(section).to_contain_text("Manual top-ups raise the chosen month's cap")

    pick(section, "billing-customer", str(plain.customer_id), "default-rpm@example.com")
    expect(rpm).to_have_value("")
    expect(rpm).to_have_attribute("placeholder", "120/min (deployment default)")
    expect(policy.locator('output[data-policy-effective="rpm_limit"]')).to_have_text(
        "In force: 120/min · deployment default"
    )

    pick(section, "billing-customer", "plan-rpm", "plan-rpm@example.com")
    expect(rpm).to_have_attribute("placeholder", "45/min (plan's)")
    expect(policy.get_by_label("RPD limit", exact=True)).to_have_attribute("placeholder", "900/day (plan's)")
    rpm.fill("15")
    policy.get_by_role("button", name="Save policy").click()
    expect(policy.locator(".status")).to_have_text(f"Saved the policy of customer #{planned.customer_id}.")
    expect(policy.locator('output[data-policy-effective="rpm_limit"]')).to_have_text(
        "In force: 15/min · customer"
    )
    screenshot(page, "24-billing-rpm")

    exports = open_panel(page, "exports")
    expect(exports).to_contain_text("Downloads carry your admin session")
