"""The first five minutes, in the browser (issue 20's acceptance): ``python -m shared.devserver``
on a fresh data folder, no provider key anywhere; log in with the password it printed, open
Integration, stream a reply from the demo model with the demo key it printed, then see the
call with its cost in Usage and its row in Monitor."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from shared import money
from shared.host import demo
from shared.providers.demo_model import answer, count_tokens
from tests.support import browser as browser_support
from tests.support.browser import LAPTOP, ConsoleLog, log_in, open_panel, screenshot, watched_tab
from tests.support.devserver import DEMO_KEY, PASSWORD, DevServer

browser_support.require_chromium()

from playwright.sync_api import expect  # noqa: E402  (after the skip check)

browser = browser_support.browser
expect.set_options(timeout=15_000)


@pytest.fixture
def devserver(tmp_path) -> Iterator[DevServer]:
    server = DevServer(tmp_path / "data", word_delay_s=0.01).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def page(browser: Any, devserver: DevServer) -> Iterator[Any]:
    """A laptop-sized tab on the dev server's admin screen that fails on any console error."""
    console = ConsoleLog()
    context = browser.new_context(viewport=LAPTOP, base_url=devserver.origin)
    context.set_default_timeout(15_000)
    yield from watched_tab(context, console)


def test_try_it_streams_the_demo_model_and_the_call_shows_in_usage_and_monitor(page, devserver):
    password, key = devserver.printed(PASSWORD), devserver.printed(DEMO_KEY)
    assert password and key, devserver.output
    reply = answer(demo.MODEL, "Hello")
    words = count_tokens(reply)
    exact_cents = (20_000 + words * 200_000) / money.NANOS_PER_CENT  # one input token, the demo price

    log_in(page, password)
    keys = open_panel(page, "keys")  # its allowlists take the demo provider like any other
    expect(keys.locator("#key-create").get_by_label("demo", exact=True)).to_have_count(1)
    section = open_panel(page, "integration")
    expect(section.locator("#example-curl")).to_contain_text(f'"provider":"demo","model":"{demo.MODEL}"')
    form = section.locator("#try-form")
    expect(form.get_by_label("Provider", exact=True)).to_have_value("demo")  # out of the box
    expect(form.get_by_label("Model", exact=True)).to_have_value(demo.MODEL)
    form.get_by_label("Kaixu key", exact=True).fill(key)
    form.get_by_role("button", name="Stream reply").click()
    expect(section.locator("#try-meta")).to_contain_text(f"demo · {demo.MODEL}")
    expect(section.locator("#try-reply")).to_have_text(reply)
    expect(section.locator("#try-usage")).to_contain_text(f"Usage: 1 input + {words} output tokens, 1¢.")
    screenshot(page, "20-first-five-minutes-try-it")

    customers = open_panel(page, "customers")
    customers.locator("#customers-table tbody tr", has_text=demo.EMAIL).click()
    usage = open_panel(page, "usage")
    call = usage.locator("#usage-table tbody tr")
    expect(call).to_have_count(1)
    expect(call).to_contain_text("demo")
    expect(call).to_contain_text(demo.MODEL)
    expect(call.locator("td.num").last).to_have_text(f"{exact_cents:.2f}")
    expect(usage.locator("#usage-totals")).to_contain_text("Calls1")
    screenshot(page, "21-first-five-minutes-usage")

    monitor = open_panel(page, "monitor")
    row = monitor.locator("#monitor-table tbody tr", has_text="gateway-stream")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(f"demo / {demo.MODEL}")
    expect(row).to_contain_text("200")
    screenshot(page, "22-first-five-minutes-monitor")
