"""A real browser for the end-to-end tests: Playwright driving Debian's chromium, nothing downloaded.

The browser is the system's (/usr/bin/chromium, or $E2E_CHROMIUM); `playwright install` is never
needed. Without chromium or the playwright package the tests are skipped, saying why, except where
PERSONALIZATION_REQUIRE_SERVICES=1 (CI): there a missing browser fails the run.
"""
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.db import connections

CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root, where chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


def unavailable(reason):
    """Skips the test, or fails it where CI promises that every service is there."""
    if os.environ.get("PERSONALIZATION_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (PERSONALIZATION_REQUIRE_SERVICES=1: the e2e test must run)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def browser(monkeypatch):
    """A headless chromium, open for one test only (it starts in about a second).

    While Playwright's sync API is open it keeps an asyncio event loop marked as running in this
    thread. Django then takes every ORM call the test makes (reading events, orders, coupons) for a
    call from async code and raises SynchronousOnlyOperation; nothing here is async (the test and
    the live server's threads each make plain blocking calls), so Django's check is switched off,
    and only while the browser is open: one kept open for the whole session would break the ORM
    calls of every test after it. The running loop also moves Django's connections from a
    thread-local to a context-local store (asgiref's Local), so the test talks to the database
    over a second connection; it is closed before the loop stops, else PostgreSQL would refuse to
    drop the test database at the end of the run.
    """
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed (pip install -r requirements.txt)")
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        unavailable(f"no chromium at {CHROMIUM} (apt-get install -y --no-install-recommends chromium)")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
            connections.close_all()


class Offline:
    """What a page tried to reach beyond this machine (aborted), and every server error it got."""

    def __init__(self):
        self.blocked = []
        self.failures = []

    def route(self, route):
        if urlsplit(route.request.url).hostname in LOCAL_HOSTS or route.request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def response(self, response):
        if response.status >= 400 and urlsplit(response.url).path != "/favicon.ico":
            self.failures.append(f"{response.status} {response.request.method} {response.url}")


@pytest.fixture
def page(browser):
    """A fresh browser context and page; any request leaving 127.0.0.1 is aborted and recorded in
    `page.offline.blocked`, any 4xx/5xx answer in `page.offline.failures`, script errors in
    `page.script_errors`."""
    # English pages whatever the host's locale: the test finds buttons and messages by their words.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.offline = Offline()
    page.script_errors = []
    page.route("**/*", page.offline.route)
    page.on("response", page.offline.response)
    page.on("pageerror", lambda error: page.script_errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def artifacts(tmp_path):
    """Where screenshots go: $E2E_ARTIFACTS when set (a folder to keep), else the test's temp dir."""
    folder = Path(os.environ["E2E_ARTIFACTS"]) if os.environ.get("E2E_ARTIFACTS") else tmp_path / "e2e"
    folder.mkdir(parents=True, exist_ok=True)
    return folder

