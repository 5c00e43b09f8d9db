"""Browser tests of the admin SPA: headless Chromium (Debian's package) driven by Playwright.

A test module calls :func:`require_chromium` at import time (so it is skipped, with the
reason printed, where Chromium is not installed) and makes the fixtures its own::

    browser = browser_support.browser
    page = browser_support.page

``page`` fails the test on any console error or uncaught page error, except those a test
announces with ``console.allow(pattern)`` (e.g. the 401 of a deliberately wrong password:
Chromium logs every failed fetch to the console). Screenshots go to
``test-artifacts/screenshots/`` (git-ignored); the folder is printed once per run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
ADMIN_PASSWORD = "correct horse battery staple"
LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
_announced = False


def require_chromium() -> None:
    """Skip the calling module when Chromium or Playwright is missing."""
    if not CHROMIUM.exists():
        pytest.skip(
            f"browser tests need Chromium at {CHROMIUM} (Debian: apt-get install -y chromium)",
            allow_module_level=True,
        )
    pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")


@dataclass
class ConsoleLog:
    """Console errors and page errors seen by one page, minus the announced ones."""

    errors: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def record(self, text: str) -> None:
        if not any(pattern.search(text) for pattern in self.allowed):
            self.errors.append(text)

    @contextmanager
    def allow(self, pattern: str) -> Iterator[None]:
        """Tolerate console errors matching ``pattern`` inside the block (expected failures)."""
        compiled = re.compile(pattern)
        self.allowed.append(compiled)
        try:
            yield
        finally:
            self.allowed.remove(compiled)


def screenshot(page: Any, name: str, *, full_page: bool = True) -> Path:
    """Save ``<name>.png`` in the screenshots folder (printed once per run)."""
    global _announced
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    if full_page:  # from the top, or the sticky bar is drawn where the page was scrolled to
        page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(path), full_page=full_page)
    if not _announced:
        print(f"\nscreenshots: {SCREENSHOTS}")
        _announced = True
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def console() -> ConsoleLog:
    return ConsoleLog()


@pytest.fixture
def page(browser: Any, server: str, console: ConsoleLog, configure: Any) -> Iterator[Any]:
    """A fresh browser context (laptop size, downloads on, clipboard allowed) on the SPA.
    It asks for ``configure`` so that settings a test made stay until the page is closed: the
    screen's last requests must not meet a server whose ADMIN_PASSWORD was already unset."""
    context = browser.new_context(viewport=LAPTOP, accept_downloads=True, base_url=server)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
    context.set_default_timeout(10_000)
    yield from watched_tab(context, console)


def watched_tab(context: Any, console: ConsoleLog) -> Iterator[Any]:
    """A new tab of ``context`` whose console errors fail the test; the context is closed after."""
    tab = context.new_page()
    tab.on("console", lambda message: message.type == "error" and console.record(message.text))
    tab.on("pageerror", lambda error: console.record(f"page error: {error}"))
    try:
        yield tab
        tab.wait_for_timeout(50)  # let late console messages arrive before the check
        assert console.errors == [], f"console errors: {console.errors}"
    finally:
        context.close()


def log_in(page: Any, password: str = ADMIN_PASSWORD) -> None:
    page.goto("/")
    page.get_by_label("Admin password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    page.locator("#app-view").wait_for(state="visible")


def open_panel(page: Any, name: str) -> Any:
    """Click the nav link to a panel and return the visible panel section."""
    page.locator(f'#sidenav a[href="#{name}"]').click()
    section = page.locator(f"#panel-{name}")
    section.wait_for(state="visible")
    return section
