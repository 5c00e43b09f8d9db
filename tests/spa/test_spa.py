"""The admin SPA in a real browser against the real server, database and a fake provider.

One journey walks every panel as an operator would (create a customer and see its master
key once, create a sub-key, call the gateway, watch Usage and Monitor, revoke a device and
a key and see the gateway refuse them, top up, snapshot an invoice, download a CSV,
register a KaixuPush project) and screenshots each panel; smaller tests cover the session
(wrong password, logout, expiry) and phone width.
"""

from __future__ import annotations

import base64
import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support import browser as browser_support
from tests.support.admin import chat
from tests.support.browser import ADMIN_PASSWORD, PHONE, log_in, open_panel, screenshot
from tests.support.database import hold_stale_reservation, wait_for

browser_support.require_chromium()

from playwright.sync_api import expect  # noqa: E402  (after the skip check)

browser = browser_support.browser
page = browser_support.page
console = browser_support.console

EMAIL = "ops@example.com"
KEY_PATTERN = re.compile(r"^kx_live_[A-Za-z0-9_-]{20,}$")
expect.set_options(timeout=10_000)


@pytest.fixture
def admin_env(configure: Any) -> None:
    configure(
        ADMIN_PASSWORD=ADMIN_PASSWORD,
        KAIXU_ENCRYPTION_KEYS="k1:" + base64.b64encode(bytes(range(32))).decode(),
    )


def accept_next_dialog(page: Any) -> None:
    page.once("dialog", lambda dialog: dialog.accept())


def row(section: Any, table: str, text: str) -> Any:
    return section.locator(f"#{table} tbody tr", has_text=text)


# ---------------------------------------------------------------------------- journey steps


def create_customer(page: Any, db: Any, console: Any) -> tuple[int, str]:
    section = open_panel(page, "customers")
    section.get_by_label("Email", exact=True).fill(EMAIL)
    section.get_by_label("Monthly cap (cents)", exact=True).fill("2000")
    section.get_by_role("button", name="Create customer + issue master key").click()
    secret_box = section.locator("#customer-secret")
    expect(secret_box).to_contain_text("shown only once")
    master = secret_box.locator("[data-secret]").inner_text()
    assert KEY_PATTERN.match(master), master
    secret_box.get_by_role("button", name="Copy key").click()
    expect(secret_box).to_contain_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == master
    customer_id = db.execute("SELECT id FROM customers WHERE email = %s", (EMAIL,)).fetchone()["id"]
    expect(row(section, "customers-table", EMAIL)).to_contain_text("$20.00")
    screenshot(page, "02-customers-master-key")
    secret_box.get_by_role("button", name="I have stored it").click()
    expect(secret_box.locator("[data-secret]")).to_have_count(0)
    assert master not in page.content()  # shown once: gone from the page
    with console.allow("status of 409"):  # the API's own sentence, next to the button
        section.get_by_label("Email", exact=True).fill(EMAIL)
        section.get_by_role("button", name="Create customer + issue master key").click()
        expect(section.locator("#customer-create .status")).to_have_text(
            f"A customer with email {EMAIL} already exists."
        )
    row(section, "customers-table", EMAIL).click()
    expect(page.locator("#selected-customer-label")).to_have_text(f"#{customer_id} {EMAIL}")
    return customer_id, master


def create_sub_key(page: Any) -> str:
    section = open_panel(page, "keys")
    expect(section.get_by_label("Customer ID", exact=True)).not_to_have_value("")
    expect(section.locator("#keys-table tbody tr")).to_have_count(1)  # the master key, loaded by itself
    expect(row(section, "keys-table", "master")).to_contain_text("role: owner")
    form = section.locator("#key-create")
    expect(form.get_by_label("Role", exact=True)).to_have_value("caller")  # least power unless asked
    form.get_by_label("Label", exact=True).fill("mobile")
    form.get_by_label("Cap override (cents)", exact=True).fill("500")
    form.get_by_label("openai", exact=True).check()
    models = form.locator("textarea[name=allowed_models]")
    models.fill('{"openai": ["gpt-unpriced"]}')
    expect(form.locator("[data-models-warning]")).to_contain_text("Not in the price book")
    models.fill("")
    form.get_by_label("Priced model to allow", exact=True).select_option("openai:gpt-4o-mini")
    form.get_by_role("button", name="Add model").click()
    expect(models).to_have_value('{"openai": ["gpt-4o-mini"]}')
    expect(form.locator("[data-models-warning]")).to_have_text("")
    form.get_by_role("button", name="Create sub-key").click()
    secret_box = section.locator("#keys-secret")
    expect(secret_box).to_contain_text("shown only once")
    sub_key = secret_box.locator("[data-secret]").inner_text()
    assert KEY_PATTERN.match(sub_key)
    mobile = row(section, "keys-table", "mobile")
    expect(mobile).to_contain_text("$5.00")
    expect(mobile).to_contain_text("openai: gpt-4o-mini")
    expect(mobile).to_contain_text("role: caller")
    screenshot(page, "03-keys")
    return sub_key


def stream_through_try_it(page: Any, sub_key: str) -> None:
    section = open_panel(page, "integration")
    expect(section.locator("#example-curl")).to_contain_text("gateway-stream")
    section.get_by_role("button", name="Copy").first.click()
    expect(section.locator("#copy-status")).to_have_text("Copied to the clipboard.")
    assert "curl -N -X POST" in page.evaluate("navigator.clipboard.readText()")
    form = section.locator("#try-form")
    form.get_by_label("Kaixu key", exact=True).fill(sub_key)
    expect(form.get_by_label("Model", exact=True)).to_have_value("gpt-4o-mini")
    form.get_by_label("x-kaixu-install-id", exact=True).fill("phone-1")
    form.get_by_role("button", name="Stream reply").click()
    expect(section.locator("#try-usage")).to_contain_text("Usage: 12 input + 5 output tokens")
    expect(section.locator("#try-reply")).to_have_text("Hello from openai!")
    expect(section.locator("#try-meta")).to_contain_text("openai · gpt-4o-mini")
    screenshot(page, "09-integration")


def check_usage(page: Any) -> None:
    section = open_panel(page, "usage")
    expect(section.locator("#usage-table tbody tr")).to_have_count(2)
    expect(section.locator("#usage-table tbody tr").first).to_contain_text("gpt-4o-mini")
    expect(section.locator("#usage-chart svg rect.bar")).to_have_count(1)  # both calls today
    expect(section.locator("#usage-totals")).to_contain_text("Calls2")
    screenshot(page, "04-usage")


def check_monitor(page: Any, server: str, sub_key: str) -> None:
    section = open_panel(page, "monitor")
    expect(row(section, "monitor-table", "gateway-stream").first).to_be_visible()
    section.get_by_role("button", name="Start live tail").click()
    expect(section.locator("#monitor-status")).to_contain_text("connected")
    assert chat(server, sub_key, install_id="tablet-1", app="tail-app").status_code == 200
    expect(row(section, "monitor-table", "tail-app").first).to_be_visible()
    section.get_by_role("button", name="Stop live tail").click()
    expect(section.locator("#monitor-status")).to_have_text("Live tail stopped.")
    section.get_by_label("Function", exact=True).fill("gateway-chat")
    section.get_by_role("button", name="Apply filters").click()
    rows = section.locator("#monitor-table tbody tr")
    expect(rows).to_have_count(2)  # the two gateway-chat calls, nothing else
    rows.first.click()
    expect(section.locator("#monitor-detail-json")).to_contain_text('"function_name": "gateway-chat"')
    screenshot(page, "10-monitor")


def revoke_device(page: Any, server: str, sub_key: str) -> None:
    section = open_panel(page, "devices")
    expect(section.locator("#devices-table tbody tr")).to_have_count(2)
    phone = row(section, "devices-table", "phone-1")
    accept_next_dialog(page)
    phone.get_by_role("button", name="Revoke").click()
    expect(phone).to_contain_text("revoked")
    expect(phone.get_by_role("button", name="Un-revoke")).to_be_visible()
    refused = chat(server, sub_key, install_id="phone-1")
    assert refused.status_code == 403, refused.text
    assert chat(server, sub_key, install_id="tablet-1").status_code == 200
    screenshot(page, "06-devices")


def plan_and_limits(page: Any, db: Any, customer_id: int) -> None:
    """The selected customer's plan (a <select> of the plans) and own limits, in Customers."""
    section = open_panel(page, "customers")
    editor = section.locator("#customer-edit")
    expect(editor.get_by_label("Customer's plan", exact=True)).to_have_value(
        str(db.execute("SELECT id FROM plans WHERE is_default").fetchone()["id"])
    )
    expect(editor.locator("output[data-effective=monthly_cap_cents]")).to_have_text(
        "2000 ¢ ($20.00) · customer"
    )
    editor.get_by_label("Own RPM limit", exact=True).fill("60")
    editor.get_by_role("button", name="Save plan and limits").click()
    expect(editor.locator(".status")).to_have_text(f"Saved the plan and limits of customer #{customer_id}.")
    expect(editor.locator("output[data-effective=rpm_limit]")).to_have_text("60 · customer")
    saved = db.execute(
        "SELECT p.name AS plan, c.rpm_limit FROM customers c JOIN plans p ON p.id = c.plan_id "
        "WHERE c.id = %s",
        (customer_id,),
    ).fetchone()
    assert saved == {"plan": "starter", "rpm_limit": 60}


def billing_and_invoice(page: Any, db: Any, console: Any, customer_id: int) -> None:
    section = open_panel(page, "billing")
    policy = section.locator("#policy-form")
    expect(policy.get_by_label("Monthly cap (cents)", exact=True)).to_have_value("2000")
    policy.locator("textarea[name=allowed_models]").fill("{not json")
    policy.get_by_role("button", name="Save policy").click()
    expect(policy.locator(".status")).to_contain_text("Allowed models must be JSON")
    policy.locator("textarea[name=allowed_models]").fill("")

    topup = section.locator("#topup-form")
    topup.get_by_label("Amount (cents)", exact=True).fill("1000")
    topup.get_by_role("button", name="Add manual top-up").click()
    expect(topup.locator(".status")).to_contain_text("Credited $10.00")
    expect(section.locator("#topups-table tbody tr")).to_have_count(1)
    topup.get_by_label("Amount (cents)", exact=True).fill("500")
    with console.allow("status of 501"):
        topup.get_by_role("button", name="Stripe checkout").click()
        expect(topup.locator(".status")).to_contain_text("Stripe checkout is not available on this server")

    invoice = section.locator("#invoice-form")
    invoice.get_by_role("button", name="Take snapshot").click()
    expect(section.locator("#invoice-status")).to_contain_text("Stored version 1")
    view = section.locator("#invoice-view")
    expect(view).to_contain_text("version 1")
    expect(view).to_contain_text("Amount owed")
    expect(view.locator("table").nth(1)).to_contain_text("gpt-4o-mini")
    expect(section.locator("#invoices-table tbody tr")).to_have_count(1)
    stored = db.execute("SELECT count(*) AS n FROM invoice_snapshots WHERE customer_id = %s", (customer_id,))
    assert stored.fetchone()["n"] == 1
    screenshot(page, "05-billing")


def download_usage_csv(page: Any, db: Any, customer_id: int) -> None:
    section = open_panel(page, "exports")
    with page.expect_download() as info:
        section.get_by_role("button", name="Usage CSV").click()
    download = info.value
    assert re.match(r"kaixu-usage-\d{4}-\d{2}\.csv$", download.suggested_filename)
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    events = db.execute("SELECT count(*) AS n FROM usage_events WHERE customer_id = %s", (customer_id,))
    assert len(rows) == events.fetchone()["n"] >= 3
    assert {r["customer_id"] for r in rows} == {str(customer_id)}
    assert {r["model"] for r in rows} == {"gpt-4o-mini"}
    expect(section.locator("#export-status")).to_contain_text(f"Saved {download.suggested_filename}")
    screenshot(page, "07-exports")


def revoke_and_rotate(page: Any, server: str, db: Any, sub_key: str) -> None:
    section = open_panel(page, "keys")
    mobile = row(section, "keys-table", "mobile")
    accept_next_dialog(page)
    mobile.get_by_role("button", name="Revoke").click()
    expect(section.locator("#keys-action-status")).to_contain_text("is revoked")
    expect(mobile.get_by_role("button", name="Revoke")).to_be_disabled()
    expect(mobile).to_contain_text("revoked")
    refused = chat(server, sub_key, install_id="tablet-1")
    assert refused.status_code == 401, refused.text
    master = row(section, "keys-table", "master")
    master_id = db.execute("SELECT id FROM api_keys WHERE kind = 'master'").fetchone()["id"]
    accept_next_dialog(page)
    master.get_by_role("button", name="Rotate").click()
    replaced = f"(replaces key {master_id})"  # the new box, not the sub-key's one still shown
    expect(section.locator("#keys-secret")).to_contain_text(replaced)
    new_secret = section.locator("#keys-secret [data-secret]").inner_text()
    assert KEY_PATTERN.match(new_secret)
    assert chat(server, new_secret).status_code == 200
    expect(section.locator("#keys-table tbody tr")).to_have_count(3)
    screenshot(page, "03-keys-after-revoke-and-rotate")


def arrange_push_history(db: Any, customer_id: int) -> None:
    """A finished deploy, a chunk job with one staged part and a push invoice (read-only data
    for the lists; the KaixuPush flow itself is tested by its own suite)."""
    push = db.execute(
        "INSERT INTO push_pushes (push_id, customer_id, project_id, netlify_site_id, branch, title, "
        "state, url, manifest, file_count, required) VALUES ('push_abc123', %s, 'marketing-site', "
        "'site-123', 'main', 'Deploy', 'ready', 'https://marketing.example.netlify.app', '{}', 2, "
        "ARRAY['a1b2c3'])  RETURNING id",
        (customer_id,),
    ).fetchone()["id"]
    job = db.execute(
        "INSERT INTO push_jobs (push_row_id, customer_id, sha1, path, parts, status) "
        "VALUES (%s, %s, 'a1b2c3d4e5', '/assets/app.js', 3, 'receiving') RETURNING id",
        (push, customer_id),
    ).fetchone()["id"]
    db.execute(
        "INSERT INTO push_parts (job_id, part, size, sha1, storage, data) "
        "VALUES (%s, 0, 2048, 'ff', 'pg', '\\x00')",
        (job,),
    )
    db.execute(
        "INSERT INTO push_invoices (customer_id, month, pricing_version, total_cents, total_nanos, "
        "deploys, bytes, breakdown) VALUES (%s, '2026-01', 1, 35, 350000000, 1, 1073741824, '{}')",
        (customer_id,),
    )


def kaixupush_project(page: Any, db: Any, customer_id: int) -> None:
    arrange_push_history(db, customer_id)
    section = open_panel(page, "kaixupush")
    deploy = row(section, "push-deploys-table", "push_abc123")
    expect(deploy).to_contain_text("ready")
    expect(deploy.get_by_role("link", name="https://marketing.example.netlify.app")).to_be_visible()
    expect(row(section, "push-jobs-table", "/assets/app.js")).to_contain_text("2.0 KB")
    expect(row(section, "push-invoices-table", "2026-01")).to_contain_text("$0.35")
    form = section.locator("#push-project-form")
    form.get_by_label("Project ID", exact=True).fill("marketing-site")
    form.get_by_label("Name", exact=True).fill("Marketing site")
    form.get_by_label("Netlify Site ID", exact=True).fill("site-123")
    form.get_by_role("button", name="Save project").click()
    project = row(section, "push-projects-table", "marketing-site")
    expect(project).to_contain_text("site-123")
    project.locator("td").first.click()  # a row click loads it into the form
    expect(form.get_by_label("Name", exact=True)).to_have_value("Marketing site")
    form.get_by_label("Name", exact=True).fill("Marketing (prod)")
    form.get_by_role("button", name=re.compile(r"^Save project \d+$")).click()
    expect(project).to_contain_text("Marketing (prod)")
    saved = db.execute("SELECT name, customer_id FROM push_projects WHERE project_id = 'marketing-site'")
    assert saved.fetchone() == {"name": "Marketing (prod)", "customer_id": customer_id}

    screenshot(page, "08-kaixupush")

    # The panel links to the one Netlify token form (in Customers), cursor in the token field.
    section.get_by_role("link", name="Set, clear or check it in Customers").click()
    token_form = page.locator("#panel-customers form[data-netlify-token-form]")
    token_field = token_form.get_by_label("Netlify personal access token", exact=True)
    expect(token_field).to_be_focused()
    expect(token_form.get_by_label("Customer ID", exact=True)).to_have_value(str(customer_id))
    token_field.fill("nfp_secret_token_value")
    token_form.get_by_role("button", name="Save Netlify token").click()
    expect(token_form.locator(".status")).to_contain_text(f"Customer #{customer_id} has a Netlify token")
    assert "nfp_secret_token_value" not in page.content()


def test_admin_journey_through_every_panel(page, server, db, console, admin_env, upstreams) -> None:
    log_in(page)
    customer_id, _master = create_customer(page, db, console)
    sub_key = create_sub_key(page)
    stream_through_try_it(page, sub_key)
    assert chat(server, sub_key, install_id="tablet-1", app="test-app").status_code == 200
    check_usage(page)
    check_monitor(page, server, sub_key)
    revoke_device(page, server, sub_key)
    plan_and_limits(page, db, customer_id)
    billing_and_invoice(page, db, console, customer_id)
    download_usage_csv(page, db, customer_id)
    revoke_and_rotate(page, server, db, sub_key)
    kaixupush_project(page, db, customer_id)
    section = open_panel(page, "customers")
    expect(row(section, "customers-table", EMAIL)).to_contain_text("set")  # the Netlify token column
    screenshot(page, "02-customers")


# ---------------------------------------------------------------------------- session


def test_login_errors_logout_and_expiry(page, server, console, admin_env) -> None:
    page.goto("/")
    screenshot(page, "01-login")
    with console.allow("status of 401"):
        page.get_by_label("Admin password", exact=True).fill("wrong password")
        page.get_by_role("button", name="Log in").click()
        expect(page.locator("#login-form .status")).to_have_text("The admin password is wrong.")
    log_in(page)
    assert page.evaluate("sessionStorage.getItem('KAIXU_ADMIN_TOKEN')")
    page.get_by_role("button", name="Log out").click()
    expect(page.locator("#login-form .status")).to_have_text("You are logged out.")
    assert page.evaluate("sessionStorage.getItem('KAIXU_ADMIN_TOKEN')") is None

    log_in(page)  # a token the server no longer accepts: the next call goes back to login
    page.evaluate("sessionStorage.setItem('KAIXU_ADMIN_TOKEN', 'kxa1.forged.token')")
    with console.allow("status of 401"):
        page.locator("#customer-search").get_by_role("button", name="Search").click()
        expect(page.locator("#login-view")).to_be_visible()
    expect(page.locator("#login-form .status")).to_contain_text("no longer valid")

    log_in(page)  # an expired token: back to login on the next load, with the reason
    page.evaluate("sessionStorage.setItem('KAIXU_ADMIN_TOKEN_EXPIRES_AT', '2000-01-01T00:00:00Z')")
    page.reload()
    expect(page.locator("#login-form .status")).to_have_text("Your admin session expired; log in again.")
    assert page.evaluate("sessionStorage.getItem('KAIXU_ADMIN_TOKEN')") is None


def test_page_errors_are_reported_to_the_monitor(page, server, db, console, admin_env) -> None:
    page.goto("/")
    with console.allow("deliberate failure"):
        page.evaluate("setTimeout(() => { throw new Error('deliberate failure in a test'); })")
        page.wait_for_timeout(100)

    def reported() -> Any:
        return db.execute(
            "SELECT app, build, summary FROM gateway_events WHERE kind = 'client_error'"
        ).fetchone()

    row_seen = wait_for(reported)
    assert row_seen and row_seen["app"] == "kaixu-admin", row_seen
    assert "deliberate failure in a test" in row_seen["summary"]


def test_lists_page_with_more_and_search(page, server, db, admin_env) -> None:
    db.execute(
        "INSERT INTO customers (email, plan_id) SELECT 'c' || n || '@example.com', p.id"
        " FROM generate_series(1, 60) n, plans p WHERE p.is_default"
    )
    log_in(page)
    rows = page.locator("#customers-table tbody tr")
    expect(rows).to_have_count(50)
    expect(rows.first).to_contain_text("c60@example.com")  # newest first
    page.locator("#panel-customers").get_by_role("button", name="More").click()
    expect(rows).to_have_count(60)
    expect(page.locator("#panel-customers").get_by_role("button", name="More")).to_be_hidden()
    page.get_by_label("Search by email", exact=True).fill("c42@")
    page.get_by_label("Search by email", exact=True).press("Enter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("c42@example.com")
    page.get_by_label("Search by email", exact=True).fill("nobody")
    page.get_by_label("Search by email", exact=True).press("Enter")
    expect(rows.first).to_have_text("No customers match.")


def test_phone_width_layout(page, server, db, admin_env) -> None:
    db.execute(
        "INSERT INTO customers (email, plan_id) SELECT 'phone@example.com', id FROM plans WHERE is_default"
    )
    page.set_viewport_size(PHONE)
    log_in(page)
    expect(page.locator("#customers-table tbody tr", has_text="phone@example.com")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scroll
    screenshot(page, "11-phone-customers")
    page.get_by_role("button", name="Menu").click()
    expect(page.locator("#sidenav")).to_be_visible()
    screenshot(page, "11-phone-menu", full_page=False)
    page.locator('#sidenav a[href="#billing"]').click()
    expect(page.locator("#sidenav")).to_be_hidden()
    expect(page.locator("#panel-billing")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "11-phone-billing")


def test_streams_open_on_the_deployments_stream_origin(page, server, db, configure, admin_env) -> None:
    """Deployed, config.json names the streaming function's origin: the live tail, CSV exports
    and the stream examples use it (Netlify's proxy would cut them), everything else this site."""
    stream_origin = server.replace("127.0.0.1", "localhost")  # another origin, the same server
    configure(ALLOWED_ORIGINS=server)
    db.execute(
        "INSERT INTO customers (email, plan_id) SELECT 'streams@example.com', id FROM plans WHERE is_default"
    )
    page.route("**/config.json", lambda route: route.fulfill(json={"stream_origin": stream_origin + "/"}))
    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.url))
    log_in(page)
    section = open_panel(page, "monitor")
    section.get_by_role("button", name="Start live tail").click()
    expect(section.locator("#monitor-status")).to_contain_text("connected")
    section.get_by_role("button", name="Stop live tail").click()
    section = open_panel(page, "exports")
    with page.expect_download() as info:
        section.get_by_role("button", name="Customers CSV").click()
    assert "streams@example.com" in Path(info.value.path()).read_text(encoding="utf-8")
    section = open_panel(page, "integration")
    expect(section.locator("#example-curl")).to_contain_text(
        f"{stream_origin}/.netlify/functions/gateway-stream"
    )
    expect(section.locator("#example-curl-chat")).to_contain_text(f"{server}/.netlify/functions/gateway-chat")
    functions = [url for url in sent if "/.netlify/functions/" in url]
    assert any(
        url.startswith(f"{stream_origin}/.netlify/functions/admin-monitor?tail=1") for url in functions
    )
    assert any(url.startswith(f"{stream_origin}/.netlify/functions/admin-export") for url in functions)
    assert any(url.startswith(f"{server}/.netlify/functions/admin-customers") for url in functions)


def test_estimated_charges_are_marked_in_the_usage_list(page, server, db, make_key, admin_env) -> None:
    key = make_key()
    hold_stale_reservation(db, key)
    db.execute("SELECT kx_release_reservation(id) FROM reservations")  # what maintenance does
    log_in(page)
    section = open_panel(page, "usage")
    section.get_by_label("Customer ID", exact=True).fill(str(key.customer_id))
    section.locator("#usage-load button[type=submit]").click()
    expect(section.locator("#usage-table tbody tr").first).to_contain_text("not ok: abandoned")
    expect(section.locator("#usage-table tbody tr").first).to_contain_text("estimated")


def test_panels_reload_when_a_customer_is_chosen(page, server, db, make_key, admin_env) -> None:
    """A customer-scoped panel loads once per customer, and choosing a customer in Customers
    (another one, or the same one again) makes it load afresh the next time it is opened."""
    first = make_key(customer={"email": "first@example.com"}, label="first-key")
    second = make_key(customer={"email": "second@example.com"}, label="second-key")
    log_in(page)

    def choose(email: str) -> None:
        row(open_panel(page, "customers"), "customers-table", email).locator("td").first.click()

    choose("first@example.com")
    keys = open_panel(page, "keys")
    expect(row(keys, "keys-table", "first-key")).to_be_visible()
    choose("second@example.com")
    keys = open_panel(page, "keys")
    expect(keys.get_by_label("Customer ID", exact=True).first).to_have_value(str(second.customer_id))
    expect(row(keys, "keys-table", "second-key")).to_be_visible()
    expect(row(keys, "keys-table", "first-key")).to_have_count(0)

    choose("first@example.com")
    keys = open_panel(page, "keys")
    expect(row(keys, "keys-table", "first-key")).to_be_visible()
    make_key(customer_id=first.customer_id, label="added-elsewhere")
    choose("second@example.com")
    choose("first@example.com")  # the same customer as Keys last loaded: still reloads
    keys = open_panel(page, "keys")
    expect(row(keys, "keys-table", "added-elsewhere")).to_be_visible()
