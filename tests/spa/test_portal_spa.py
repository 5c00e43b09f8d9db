"""The customer portal (/account) in a real browser against the real server, database, fake
providers and the Stripe fake.

One journey walks every panel as a customer would: sign in with the master key, read the
month (figures from real gateway calls, checked to the cent), filter the usage and download
it as CSV, create a key (its secret shown once), change and rotate it, revoke a device and see
the gateway refuse it, read and print an issued invoice, see KaixuPush history, set the alerts
webhook, top up through Stripe Checkout and see the credit arrive when the signed webhook
lands, then check the phone layout and sign out. Smaller tests cover a wrong key, a key whose
role is too low, and a session the server ends.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.admin import accounts
from tests.support import admin as admin_support
from tests.support import browser as browser_support
from tests.support.admin import chat, new_customer, new_key, ok
from tests.support.browser import PHONE, screenshot
from tests.support.database import wait_for
from tests.support.fakes.stripe_api import FakeStripe, serve_fake_stripe

browser_support.require_chromium()

from playwright.sync_api import expect  # noqa: E402  (after the skip check)

browser = browser_support.browser
page = browser_support.page
console = browser_support.console
admin = admin_support.admin

EMAIL = "alice@example.com"
KEY_PATTERN = re.compile(r"^kx_live_[A-Za-z0-9_-]{20,}$")
WEBHOOK_SECRET = "whsec_test_portal_0123456789abcdef0123456789"
PANELS = ("month", "usage", "invoices", "keys", "devices", "kaixupush", "topup", "alerts")
expect.set_options(timeout=10_000)


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def stripe_server() -> Iterator[FakeStripe]:
    yield from serve_fake_stripe()


@pytest.fixture
def portal_env(server: str, admin: Any, configure: Any, stripe_server: FakeStripe) -> FakeStripe:
    """Stripe (the fake), its webhook secret, this server as the public origin, and sealing
    keys for the customer's webhook secret."""
    stripe_server.reset()
    configure(
        STRIPE_SECRET_KEY=stripe_server.secret_key,
        STRIPE_API_BASE=stripe_server.url,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        PUBLIC_APP_ORIGIN=server,
        KAIXU_ENCRYPTION_KEYS="k1:" + base64.b64encode(bytes(range(32))).decode(),
    )
    return stripe_server


@pytest.fixture
def account(server: str, admin: Any, upstreams: Any, db: Any, portal_env: FakeStripe) -> dict[str, Any]:
    """Alice, made by the operator: a $10.00 cap, 60 RPM, a sub-key labelled like a formula,
    three gateway calls of 1.5006 cents each from three devices, a $2.50 top-up, an issued
    invoice and a KaixuPush deploy and charge."""
    customer = new_customer(admin, EMAIL, monthly_cap_cents=1_000, rpm_limit=60)
    sub = new_key(admin, customer["id"], label="=cmd phone")
    upstreams.script("openai", input_tokens=100_000, output_tokens=10)  # 1.5006 cents a call
    for key, install in ((customer["key"], "laptop"), (sub["key"], "phone"), (sub["key"], "tablet")):
        assert chat(server, key, install_id=install, app="web").status_code == 200
    ok(admin.post("admin-topups", json={"customer_id": customer["id"], "amount_cents": 250}), 201)
    month = accounts.current_month()
    draft = ok(admin.post("admin-invoices", json={"customer_id": customer["id"], "month": month}), 201)
    ok(admin.patch("admin-invoices", params={"id": draft["item"]["id"]}, json={"status": "issued"}))
    db.execute(
        "INSERT INTO push_pushes (push_id, customer_id, project_id, netlify_site_id, branch, title, state,"
        " url, manifest, file_count) VALUES ('push_a', %s, 'site-a', 'n1', 'main', 'first deploy',"
        " 'ready', 'https://a.example', '{}', 3)",
        (customer["id"],),
    )
    db.execute(
        "INSERT INTO push_invoices (customer_id, month, pricing_version, total_cents, total_nanos, deploys,"
        " bytes, breakdown) VALUES (%s, %s, 1, 35, 350000000, 1, 2048, '{}')",
        (customer["id"], month),
    )
    return {"id": customer["id"], "master": customer["key"], "sub": sub, "month": month}


# ---------------------------------------------------------------------------- helpers


def accept_dialogs(page: Any) -> list[str]:
    """Accept every confirm() and keep its question."""
    asked: list[str] = []

    def accept(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    return asked


def sign_in(page: Any, key: str) -> None:
    page.goto("/account")
    page.get_by_label("Your Kaixu key", exact=True).fill(key)
    page.get_by_role("button", name="Sign in").click()


def open_panel(page: Any, name: str) -> Any:
    page.locator(f'#sidenav a[href="#{name}"]').click()
    section = page.locator(f"#panel-{name}")
    section.wait_for(state="visible")
    return section


def totals(node: Any) -> dict[str, str]:
    terms = node.locator("dt").all_text_contents()
    return dict(zip(terms, node.locator("dd").all_text_contents(), strict=True))


def row(section: Any, table: str, text: str) -> Any:
    return section.locator(f"#{table} tbody tr", has_text=text)


def closed_port() -> int:
    """A loopback port nothing listens on (the test alert then fails fast)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def deliver_stripe_event(server: str, event: dict[str, Any]) -> httpx.Response:
    """POST the event to stripe-webhook signed as Stripe signs: t=<ts>,v1=HMAC(secret, "<ts>.<body>")."""
    payload = json.dumps(event).encode()
    stamp = int(time.time())
    digest = hmac.new(WEBHOOK_SECRET.encode(), f"{stamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return httpx.post(
        f"{server}/.netlify/functions/stripe-webhook",
        content=payload,
        headers={"stripe-signature": f"t={stamp},v1={digest}", "content-type": "application/json"},
        timeout=30,
    )


def stored_values(page: Any) -> str:
    """Everything this page keeps in sessionStorage and localStorage, as one string."""
    return page.evaluate("JSON.stringify([Object.entries(sessionStorage), Object.entries(localStorage)])")


# ---------------------------------------------------------------------------- journey steps


def read_the_month(page: Any, account: dict[str, Any]) -> None:
    section = page.locator("#panel-month")
    expect(section).to_be_visible()
    expect(page.locator("#signed-in-label")).to_contain_text(EMAIL)
    expect(page.locator('#sidenav a[href="#month"]')).to_have_attribute("aria-current", "page")
    expect(section.locator("#month-meter")).to_have_text("$0.05 of $12.50 spent (0.4 %) · $12.45 left")
    assert section.locator("meter").get_attribute("value") == "5"
    assert section.locator("meter").get_attribute("max") == "1250"
    assert totals(section.locator("#month-totals")) == {
        "Spent": "$0.05",  # 3 calls of 1.5006 cents, rounded once
        "Remaining": "$12.45",
        "Cap this month": "$12.50",
        "Base cap": "$10.00",
        "Top-ups": "$2.50",
        "In flight": "$0.00",
        "Included credit": "$0.00",
        "Calls": "3",
        "Tokens in / out": "300,000 / 30",
    }
    expect(section.locator("#month-plan")).to_contain_text("Plan: starter.")
    expect(section.locator("#month-chart svg rect.bar")).to_have_count(1)  # all three calls today
    keys = section.locator("#month-keys tbody tr")
    expect(keys).to_have_count(2)
    sub = row(section, "month-keys", "=cmd phone")  # a label is text, never markup or a formula
    expect(sub).to_contain_text(f"{account['sub']['id']} (…{account['sub']['key_last4']})")
    expect(sub.locator("td")).to_have_text(
        [re.compile("=cmd phone"), "sub", "active", "2", "200,020", "$0.03"]
    )
    expect(page.locator('#sidenav a[href="#topup"]')).to_be_visible()  # the starter plan takes top-ups
    screenshot(page, "portal-01-month")


def filter_and_download_usage(page: Any, account: dict[str, Any]) -> None:
    section = open_panel(page, "usage")
    calls = section.locator("#usage-table tbody tr")
    expect(calls).to_have_count(3)
    expect(calls.first).to_contain_text("gpt-4o-mini")
    expect(calls.first).to_contain_text("1.5¢")  # the exact charge of one call
    expect(calls.first).to_contain_text("tablet")
    sub_id = str(account["sub"]["id"])
    section.get_by_label("Key", exact=True).select_option(sub_id)
    section.get_by_role("button", name="Show calls").click()
    expect(calls).to_have_count(2)
    expect(calls.nth(1)).to_contain_text("phone")
    screenshot(page, "portal-02-usage")

    section.get_by_label("Key", exact=True).select_option("")
    with page.expect_download() as info:
        section.get_by_role("button", name="Download CSV").click()
    download = info.value
    assert download.suggested_filename == f"kaixu-usage-{account['month']}.csv"
    lines = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert [line["install_id"] for line in lines] == ["laptop", "phone", "tablet"]
    assert {line["sell_nanos"] for line in lines} == {"15006000"}
    expect(section.locator("#usage-status")).to_contain_text(f"Saved kaixu-usage-{account['month']}.csv")


def read_and_print_the_invoice(page: Any) -> None:
    section = open_panel(page, "invoices")
    listed = section.locator("#invoices-table tbody tr")
    expect(listed).to_have_count(1)
    expect(listed.first).to_contain_text("No. 1")
    expect(listed.first).to_contain_text("issued")
    listed.first.get_by_role("button", name=re.compile("^View invoice No. 1")).click()
    detail = section.locator("#invoice-detail")
    expect(detail.locator("h3")).to_contain_text("Invoice No. 1")
    expect(detail).to_contain_text("Statement")
    assert "cost" not in detail.inner_text().lower()  # never the operator's side of the ledger
    screenshot(page, "portal-03-invoices")

    with page.expect_popup() as opened:
        listed.first.get_by_role("button", name=re.compile("^Print invoice No. 1")).click()
    printable = opened.value
    expect(printable.locator("h1")).to_contain_text("No. 1")
    expect(printable.locator("body")).to_contain_text(EMAIL)
    assert printable.url.startswith("blob:")
    printable.wait_for_function("getComputedStyle(document.body).maxWidth !== 'none'")
    expect(section.locator("#invoices-status")).to_contain_text("Opened invoice No. 1")
    printable.close()


def manage_keys(page: Any, console: Any, asked: list[str]) -> None:
    section = open_panel(page, "keys")
    keys = section.locator("#keys-table tbody tr")
    expect(keys).to_have_count(2)
    master = row(section, "keys-table", "signed in with this key")
    expect(master).to_contain_text("owner")
    expect(master.get_by_role("button", name=re.compile("^Revoke"))).to_be_disabled()  # rotate it instead

    form = section.locator("#key-create")
    expect(form.get_by_label("Role", exact=True)).to_have_value("caller")
    assert form.get_by_label("Role", exact=True).locator("option").all_inner_texts() == [
        "viewer: reads only, never spends",
        "caller: calls models",
        "deployer: calls models, deploys sites",
        "admin: also manages this account",
    ]  # never owner
    form.get_by_label("Label", exact=True).fill("ci bot")
    form.get_by_label("Role", exact=True).select_option("deployer")
    form.get_by_label("Monthly cap ($)", exact=True).fill("5")
    form.get_by_label("Requests per minute", exact=True).fill("61")
    with console.allow("status of 403"):  # the server's sentence, next to the form
        form.get_by_role("button", name="Create key").click()
        expect(form.locator(".status")).to_have_text("rpm_limit may be at most 60, your account's limit.")
    expect(form.get_by_label("Requests per minute", exact=True)).to_have_attribute("aria-invalid", "true")
    form.get_by_label("Requests per minute", exact=True).fill("30")
    form.get_by_role("button", name="Create key").click()

    secret_box = section.locator("#keys-secret")
    expect(secret_box).to_contain_text("shown only once")
    secret = secret_box.locator("[data-secret]").inner_text()
    assert KEY_PATTERN.match(secret), secret
    secret_box.get_by_role("button", name="Copy key").click()
    expect(secret_box).to_contain_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    bot = row(section, "keys-table", "ci bot")
    expect(bot).to_contain_text("deployer")
    expect(bot).to_contain_text("$5.00")
    expect(bot).to_contain_text(f"…{secret[-4:]}")  # afterwards only its last four characters
    screenshot(page, "portal-04-keys-new-secret")
    secret_box.get_by_role("button", name="I have stored it").click()
    expect(secret_box.locator("[data-secret]")).to_have_count(0)
    assert secret not in page.content()

    bot.get_by_role("button", name=re.compile("^Edit")).click()
    edit = section.locator("#key-edit")
    expect(edit.get_by_label("Monthly cap ($)", exact=True)).to_have_value("5")
    edit.get_by_label("Label", exact=True).fill("ci bot 2")
    edit.get_by_label("Monthly cap ($)", exact=True).fill("4.50")
    edit.get_by_role("button", name="Save key").click()
    expect(section.locator("#keys-status")).to_contain_text("Saved key")
    bot = row(section, "keys-table", "ci bot 2")
    expect(bot).to_contain_text("$4.50")
    expect(section.locator("#key-edit-card")).to_be_hidden()

    bot.get_by_role("button", name=re.compile("^Rotate")).click()
    assert "stops working at once" in asked[-1]
    expect(secret_box).to_contain_text("replaces key")
    rotated = secret_box.locator("[data-secret]").inner_text()
    assert KEY_PATTERN.match(rotated) and rotated != secret
    expect(keys).to_have_count(4)
    expect(row(section, "keys-table", "ci bot 2").filter(has_text="revoked")).to_have_count(1)
    secret_box.get_by_role("button", name="I have stored it").click()
    screenshot(page, "portal-04-keys")


def revoke_a_device(page: Any, server: str, account: dict[str, Any], asked: list[str]) -> None:
    section = open_panel(page, "devices")
    devices = section.locator("#devices-table tbody tr")
    expect(devices).to_have_count(3)
    tablet = row(section, "devices-table", "tablet")
    expect(tablet).to_contain_text("=cmd phone")
    tablet.get_by_role("button", name=re.compile("^Revoke device tablet")).click()
    assert "tablet" in asked[-1]
    expect(section.locator("#devices-status")).to_contain_text("is revoked")
    expect(tablet).to_contain_text("revoked")
    expect(tablet.get_by_role("button")).to_have_text("Let back in")
    refused = chat(server, account["sub"]["key"], install_id="tablet")
    assert refused.status_code == 403 and refused.json()["code"] == "DEVICE_REVOKED"
    screenshot(page, "portal-05-devices")


def see_kaixupush(page: Any) -> None:
    section = open_panel(page, "kaixupush")
    deploys = section.locator("#push-deploys tbody tr")
    expect(deploys).to_have_count(1)
    expect(deploys.first).to_contain_text("push_a")
    expect(deploys.first).to_contain_text("ready")
    expect(deploys.first.get_by_role("link", name="https://a.example")).to_be_visible()
    charges = section.locator("#push-charges tbody tr")
    expect(charges).to_have_count(1)
    expect(charges.first).to_contain_text("$0.35")
    expect(charges.first).to_contain_text("2.0 KB")
    screenshot(page, "portal-06-kaixupush")


def set_the_alerts_webhook(page: Any) -> None:
    section = open_panel(page, "alerts")
    expect(section.locator("#alerts-current")).to_contain_text("none set")
    expect(section.get_by_role("button", name="Send a test alert")).to_be_disabled()
    url = f"http://127.0.0.1:{closed_port()}/kaixu-alerts"
    section.get_by_label("Webhook URL (https)", exact=True).fill(url)
    section.get_by_role("button", name="Save webhook").click()
    secret_box = section.locator("#alerts-secret")
    expect(secret_box).to_contain_text("this signing secret is shown only once")
    secret = secret_box.locator("[data-secret]").inner_text()
    assert secret.startswith("whsec_")
    expect(section.locator("#alerts-current")).to_contain_text(f"…{secret[-4:]}")
    secret_box.get_by_role("button", name="I have stored it").click()
    section.get_by_role("button", name="Send a test alert").click()
    expect(section.locator("#alerts-form .status")).to_contain_text("Sent a test alert (failed")
    delivered = section.locator("#alerts-deliveries tbody tr")
    expect(delivered).to_have_count(1)
    expect(delivered.first).to_contain_text("test")
    expect(delivered.first).to_contain_text("failed")  # nothing listens there
    screenshot(page, "portal-07-alerts")


def top_up_through_stripe(page: Any, server: str, stripe_api: FakeStripe, account: dict[str, Any]) -> None:
    section = open_panel(page, "topup")
    expect(section.locator("#topup-totals")).to_contain_text("$2.50")
    amount = section.get_by_label("Amount ($)", exact=True)
    amount.fill("12.3456")
    section.get_by_role("button", name="Continue to payment").click()
    expect(section.locator("#topup-status")).to_contain_text("at most two decimals")
    assert stripe_api.requests == []
    screenshot(page, "portal-08-topup")

    # Stripe's hosted page is not reachable offline: the browser gets a stand-in.
    stand_in = "<!doctype html><title>Checkout</title>Pay"
    page.route(
        "https://checkout.stripe.com/**", lambda route: route.fulfill(content_type="text/html", body=stand_in)
    )
    amount.fill("12.34")  # 12.34 dollars, exactly 1234 cents
    section.get_by_role("button", name="Continue to payment").click()
    page.wait_for_url(re.compile(r"^https://checkout\.stripe\.com/"))
    form = stripe_api.requests[-1].form
    assert form["line_items"][0]["price_data"]["unit_amount"] == "1234"
    session_id = re.search(r"/pay/(cs_test_[^#/?]+)", page.url).group(1)
    assert form["success_url"] == f"{server}/account?topup=success&session_id={{CHECKOUT_SESSION_ID}}"

    page.goto(form["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id))  # as Stripe returns
    banner = page.locator("#topup-return-status")
    expect(banner).to_have_text("Payment received; your credit appears when Stripe confirms it.")
    assert page.evaluate("location.search") == ""  # the query is gone from the address bar
    event = stripe_api.event(session_id, "checkout.session.completed", payment_status="paid")
    assert ok(deliver_stripe_event(server, event))["credited"] is True
    expect(banner).to_contain_text("Credit added: $12.34.", timeout=15_000)
    month = page.locator("#panel-month")
    expect(month.locator("#month-totals")).to_contain_text("$14.84")  # $2.50 + $12.34
    assert totals(month.locator("#month-totals"))["Cap this month"] == "$24.84"
    screenshot(page, "portal-09-topup-credited")

    page.goto("/account?topup=cancel")
    expect(banner).to_have_text("Top-up cancelled; nothing was charged.")
    assert page.evaluate("location.search") == ""


def check_the_phone_view(page: Any) -> None:
    page.set_viewport_size(PHONE)
    for name in PANELS:
        page.evaluate(f"location.hash = '#{name}'")
        page.locator(f"#panel-{name}").wait_for(state="visible")
        page.wait_for_timeout(150)  # tables and the chart settle
        fits = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert fits, f"the {name} panel scrolls sideways at phone width"
    page.evaluate("location.hash = '#month'")
    expect(page.locator("#month-chart svg")).to_be_visible()
    screenshot(page, "portal-10-phone-month")
    page.evaluate("location.hash = '#keys'")
    screenshot(page, "portal-10-phone-keys")
    page.get_by_role("button", name="Menu").click()
    expect(page.locator("#sidenav")).to_be_visible()
    screenshot(page, "portal-10-phone-menu", full_page=False)
    page.locator('#sidenav a[href="#usage"]').click()
    expect(page.locator("#panel-usage")).to_be_visible()
    expect(page.locator("#sidenav")).to_be_hidden()


# ---------------------------------------------------------------------------- tests


def test_a_customer_reads_its_account_manages_keys_and_devices_and_tops_up(
    page, server, console, account, portal_env
) -> None:
    asked = accept_dialogs(page)
    sign_in(page, account["master"])
    read_the_month(page, account)
    assert account["master"] not in stored_values(page)  # the session token only, never the key
    assert "KAIXU_PORTAL_TOKEN" in stored_values(page)
    assert "KAIXU_ADMIN_TOKEN" not in stored_values(page)
    filter_and_download_usage(page, account)
    read_and_print_the_invoice(page)
    manage_keys(page, console, asked)
    revoke_a_device(page, server, account, asked)
    see_kaixupush(page)
    set_the_alerts_webhook(page)
    top_up_through_stripe(page, server, portal_env, account)
    check_the_phone_view(page)

    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#login-view")).to_be_visible()
    expect(page.locator("#login-form .status")).to_have_text("You are signed out.")
    expect(page.get_by_label("Your Kaixu key", exact=True)).to_be_focused()
    assert "KAIXU_PORTAL_TOKEN" not in stored_values(page)
    page.reload()  # nothing left to resume
    expect(page.locator("#login-view")).to_be_visible()


def test_a_wrong_key_or_a_low_role_is_refused_with_the_servers_sentence(page, server, admin, console) -> None:
    customer = new_customer(admin, "bob@example.com")
    caller = new_key(admin, customer["id"], label="app", role="caller")
    page.goto("/account")
    status = page.locator("#login-form .status")
    with console.allow("status of 401"):
        page.get_by_label("Your Kaixu key", exact=True).fill("kx_live_" + "x" * 40)
        page.get_by_role("button", name="Sign in").click()
        expect(status).to_have_text("This key is not known here, or it has been revoked.")
    expect(page.get_by_label("Your Kaixu key", exact=True)).to_have_value("")  # not kept, even there
    with console.allow("status of 403"):
        page.get_by_label("Your Kaixu key", exact=True).fill(caller["key"])
        page.get_by_role("button", name="Sign in").click()
        expect(status).to_have_text(
            "Sign in with your master key or a key with the admin role; this key is a caller."
        )
    expect(page.locator("#app-view")).to_be_hidden()
    assert "KAIXU_PORTAL_TOKEN" not in stored_values(page)
    screenshot(page, "portal-00-sign-in-refused")


def test_a_session_the_server_ends_returns_to_the_sign_in_form(page, server, admin, console) -> None:
    customer = new_customer(admin, "carol@example.com")
    helper = new_key(admin, customer["id"], label="ops", role="admin")
    sign_in(page, helper["key"])  # an admin-role key may sign in too
    expect(page.locator("#signed-in-label")).to_have_text(f"carol@example.com (key …{helper['key_last4']})")
    expect(page.locator("#month-totals")).to_contain_text("$0.00")
    ok(admin.delete("admin-keys", params={"id": helper["id"]}))  # the operator revokes it
    with console.allow("status of 401"):
        open_panel_link = page.locator('#sidenav a[href="#keys"]')
        open_panel_link.click()
        expect(page.locator("#login-view")).to_be_visible()
        expect(page.locator("#login-form .status")).to_have_text(
            "The key this session signed in with was revoked; sign in again."
        )
    assert "KAIXU_PORTAL_TOKEN" not in stored_values(page)


def test_the_pages_own_errors_are_reported_as_the_portal(page, server, db, console) -> None:
    """Errors of this page reach the monitor tagged kaixu-portal: an uncaught one, and one an
    action meets (shown next to it and reported by the ui.js both pages share)."""
    page.goto("/account")
    expect(page.locator("#login-view")).to_be_visible()
    with console.allow("deliberate"):
        page.evaluate("setTimeout(() => { throw new Error('deliberate page failure'); })")
        page.evaluate(
            "import('/assets/js/ui.js')"
            ".then((ui) => ui.run({}, () => { throw new Error('deliberate action failure'); }))"
        )
        page.wait_for_timeout(100)

    def reported() -> Any:
        query = "SELECT app, build, summary FROM gateway_events WHERE kind = 'client_error'"
        rows = db.execute(query).fetchall()
        return rows if len(rows) >= 2 else None

    rows = wait_for(reported)
    assert rows and {(row["app"], row["build"]) for row in rows} == {("kaixu-portal", "portal-spa-1")}, rows
    summaries = " ".join(row["summary"] for row in rows)
    assert "deliberate page failure" in summaries and "deliberate action failure" in summaries
