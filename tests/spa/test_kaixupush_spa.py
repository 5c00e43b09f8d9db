"""The KaixuPush panel in a real browser: deploy history filtered by project and state, what a
finished chunk job received, retrying a failed job, the customer's push cap and pricing, the
Netlify token fallback in words, and the panel at phone width. The data is arranged with SQL
(the flows that make it are tested through HTTP in tests/kaixupush)."""

from __future__ import annotations

import base64
from collections.abc import Callable
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

FALLBACK = "falls back to NETLIFY_AUTH_TOKEN only for projects an admin registered"
RECEIVED, STAGED = 5, 6  # columns of the chunk jobs table


@pytest.fixture
def admin_env(configure: Any) -> None:
    configure(
        ADMIN_PASSWORD=ADMIN_PASSWORD,
        KAIXU_ENCRYPTION_KEYS="k1:" + base64.b64encode(bytes(range(32))).decode(),
    )


def _push(db: Any, customer_id: int, project: int, push_id: str, project_id: str, state: str) -> int:
    return db.execute(
        "INSERT INTO push_pushes (push_id, customer_id, project_row_id, project_id, netlify_site_id, "
        "branch, title, state, manifest, file_count) "
        "VALUES (%s, %s, %s, %s, 'site-' || %s, 'main', 'Deploy', %s, '{}', 1) RETURNING id",
        (push_id, customer_id, project, project_id, project_id, state),
    ).fetchone()["id"]


@pytest.fixture
def customer(db: Any, make_key: Callable[..., Any]) -> dict[str, int]:
    """A customer with an admin-registered project (a ready deploy, a delivered chunked file
    whose parts are gone) and a key-registered one (a failed deploy, a failed chunked file)."""
    customer_id = make_key().customer_id
    projects = {}
    for project_id, by in (("web", "admin"), ("blog", "key")):
        projects[project_id] = db.execute(
            "INSERT INTO push_projects (customer_id, project_id, name, netlify_site_id, registered_by) "
            "VALUES (%s, %s, %s, 'site-' || %s, %s) RETURNING id",
            (customer_id, project_id, project_id.title(), project_id, by),
        ).fetchone()["id"]
    ready = _push(db, customer_id, projects["web"], "push_ready1", "web", "ready")
    failed = _push(db, customer_id, projects["blog"], "push_error1", "blog", "error")
    db.execute(
        "INSERT INTO push_jobs (push_row_id, customer_id, sha1, path, parts, status, bytes, "
        "received_parts, staged_bytes) VALUES (%s, %s, 'aa11', '/video.mp4', 3, 'done', 9000, 3, 9000)",
        (ready, customer_id),
    )
    job = db.execute(
        "INSERT INTO push_jobs (push_row_id, customer_id, sha1, path, parts, status, attempts, last_error, "
        "received_parts, staged_bytes) VALUES (%s, %s, 'bb22', '/big.bin', 2, 'failed', 1, "
        "'Netlify answered 422: File type not allowed', 2, 3072) RETURNING id",
        (failed, customer_id),
    ).fetchone()["id"]
    for part, size in ((0, 2048), (1, 1024)):
        db.execute(
            "INSERT INTO push_parts (job_id, part, size, sha1, storage, data) "
            "VALUES (%s, %s, %s, 'ff', 'pg', '\\x00')",
            (job, part, size),
        )
    return {"id": customer_id, "failed_job": job}


def _jobs_row(section: Any, path: str) -> Any:
    return section.locator("#push-jobs-table tbody tr", has_text=path)


def _deploy_rows(section: Any) -> Any:
    return section.locator("#push-deploys-table tbody tr")


def _load(page: Any, customer_id: int) -> Any:
    section = open_panel(page, "kaixupush")
    section.locator("#push-customer").fill(str(customer_id))
    section.locator("#push-load").get_by_role("button", name="Load").click()
    return section


def test_the_kaixupush_panel_closes_the_last_gaps(page, db, admin_env, customer) -> None:
    log_in(page)
    section = _load(page, customer["id"])

    # Lists that are not per month say so.
    expect(section.locator("#push-deploys-table caption")).to_have_text("Deploys, all time, newest first")
    expect(section.locator("#push-jobs-table caption")).to_contain_text("all time")
    expect(section.locator("#push-projects-table tbody tr", has_text="blog")).to_contain_text(
        "key-registered"
    )
    expect(section.locator("#push-token-hint")).to_contain_text(FALLBACK.replace("falls", "it falls"))

    # A delivered file shows what it received, though its parts were deleted.
    done = _jobs_row(section, "/video.mp4")
    expect(done.locator("td").nth(RECEIVED)).to_have_text("3")
    expect(done.locator("td").nth(STAGED)).to_have_text("8.8 KB")
    expect(done.get_by_role("button", name="Retry")).to_have_count(0)

    # The cap and pricing in force, where the cap is set.
    billing = section.locator("#push-billing")
    expect(billing).to_contain_text(
        "Now: no cap; pricing version 1 ($0.10 a ready deploy + $0.25 a GiB uploaded)"
    )
    expect(billing).to_contain_text("never set")
    expect(section.get_by_label("Pricing version", exact=True)).to_have_value("1")
    expect(section.get_by_label("Push cap (cents / month)", exact=True)).to_have_value("")

    # Deploy history filters: state, then project.
    expect(_deploy_rows(section)).to_have_count(2)
    section.get_by_label("State", exact=True).select_option("error")
    expect(_deploy_rows(section)).to_have_count(1)
    expect(_deploy_rows(section).first).to_contain_text("push_error1")
    section.get_by_label("State", exact=True).select_option("")
    section.get_by_label("Project", exact=True).fill("web")
    section.locator("#push-deploy-filters").get_by_role("button", name="Filter").click()
    expect(_deploy_rows(section)).to_have_count(1)
    expect(_deploy_rows(section).first).to_contain_text("push_ready1")
    screenshot(page, "30-kaixupush-filters-cap-jobs")

    # Retry a failed job: nothing happens until the operator confirms.
    failed = _jobs_row(section, "/big.bin")
    page.once("dialog", lambda dialog: dialog.dismiss())
    failed.get_by_role("button", name="Retry /big.bin").click()
    status_of = "SELECT status FROM push_jobs WHERE id = %s"
    assert db.execute(status_of, (customer["failed_job"],)).fetchone()["status"] == "failed"
    page.once("dialog", lambda dialog: dialog.accept())
    failed.get_by_role("button", name="Retry /big.bin").click()
    expect(section.locator("#push-status")).to_have_text("Queued /big.bin again.")
    requeued = _jobs_row(section, "/big.bin")
    expect(requeued).to_contain_text("queued")
    expect(requeued.get_by_role("button", name="Retry /big.bin")).to_have_count(0)
    expect(requeued.locator("td").nth(RECEIVED)).to_have_text("2")
    assert db.execute(status_of, (customer["failed_job"],)).fetchone()["status"] == "queued"

    # Setting the cap shows the new figures at once.
    section.get_by_label("Push cap (cents / month)", exact=True).fill("500")
    section.get_by_role("button", name="Save push cap").click()
    expect(section.locator("#push-invoice-status")).to_contain_text("a cap of $5.00 a month")
    expect(billing).to_contain_text("Now: a cap of $5.00 a month; pricing version 1")
    expect(billing).not_to_contain_text("never set")

    # The token form says when the operator's token applies.
    customers = open_panel(page, "customers")
    form = customers.locator("form[data-netlify-token-form]")
    form.get_by_label("Customer ID", exact=True).fill(str(customer["id"]))
    form.get_by_role("button", name="Check").click()
    expect(form.locator(".status")).to_have_text(
        f"Customer #{customer['id']} has no Netlify token: KaixuPush {FALLBACK}; "
        "projects registered with a key cannot deploy."
    )


def test_the_kaixupush_panel_at_phone_width(page, db, admin_env, customer) -> None:
    page.set_viewport_size(PHONE)
    log_in(page)
    page.goto("/#kaixupush")
    section = page.locator("#panel-kaixupush")
    section.wait_for(state="visible")
    section.locator("#push-customer").fill(str(customer["id"]))
    section.locator("#push-load").get_by_role("button", name="Load").click()
    expect(section.locator("#push-billing")).to_contain_text("pricing version 1")
    retry = _jobs_row(section, "/big.bin").get_by_role("button", name="Retry /big.bin")
    expect(retry).to_be_attached()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    filters = section.locator("#push-deploy-filters")
    filters.scroll_into_view_if_needed()
    expect(filters.get_by_role("button", name="Filter")).to_be_in_viewport()
    section.get_by_label("State", exact=True).select_option("ready")
    expect(_deploy_rows(section)).to_have_count(1)
    screenshot(page, "31-kaixupush-phone")
