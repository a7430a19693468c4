"""Browser tests: Debian's chromium driven by Playwright against the real stack the suite starts (uvicorn serving
config.asgi on the test database, the test Redis, a real Celery worker where a test asks for one).

Every page a test opens is watched: a console error, an uncaught exception, a failed request or an answer of 400 or
more fails the test at its end, unless the test said it expects that answer (`watch.expect(status, path)`).
`shoot(page, name)` saves the page at desktop width and at 390 px under SCREENSHOTS.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REPO, WebServer

# Where the pages' screenshots go (the README names this folder); DISTILLERY_SCREENSHOTS moves it.
SCREENSHOTS = Path(os.environ.get("DISTILLERY_SCREENSHOTS", REPO / "var" / "screenshots"))
DESKTOP = {"width": 1280, "height": 900}
NARROW = {"width": 390, "height": 844}  # a phone held upright
PASSWORD = "a-browser-test-password"


def chromium_path() -> str:
    """Debian's chromium binary (not its wrapper script, which prints shell noise); `make install` installs it."""
    for candidate in (os.environ.get("DISTILLERY_CHROMIUM"), "/usr/lib/chromium/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.fail("chromium is not installed: `make install` installs Debian's package (apt-get install chromium)")


@pytest.fixture(scope="module")
def browser():
    """One headless chromium per test module. Playwright's sync API keeps an asyncio loop running in this thread
    while it is started, which Django takes for an async context: its ORM is allowed here, in the browser
    modules only, and Playwright is stopped before any other module runs."""
    from playwright.sync_api import sync_playwright

    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(executable_path=chromium_path())
            try:
                yield launched
            finally:
                launched.close()
    finally:
        if before is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


def serve(server, watch):
    """Run a web server for a test; the watch stops listening before it stops (pytest may stop the server while
    the test's pages are still open: a page's websocket then fails to reach it, which the test did not do)."""
    try:
        server.wait_until_it_answers()
        yield server
    finally:
        watch.close()
        server.stop()


@pytest.fixture
def site(settings, tmp_path, tiny_bert, watch):
    """The web server as `make up` runs it (uvicorn, config.asgi), on the test database, the test Redis and the
    media folder the worker shares; tiny_bert's folder on the model allow-list. Tests using it commit:
    django_db(transaction=True)."""
    server = WebServer(Path(settings.MEDIA_ROOT), tmp_path / "web.log", DISTILLERY_MODEL_ROOTS=str(tiny_bert.parent))
    yield from serve(server, watch)


@dataclass
class Watch:
    """What went wrong in a page: console errors, uncaught exceptions, failed requests, 4xx/5xx answers."""

    problems: list[str] = field(default_factory=list)
    expected: list[tuple[int, re.Pattern]] = field(default_factory=list)
    aborted: list[str] = field(default_factory=list)  # pages (documents) whose load was aborted
    downloads: set[str] = field(default_factory=set)
    closed: bool = False  # set as the server stops: what pages say of a server going away is not a problem

    def close(self) -> None:
        """Stop listening (the server is about to stop under pages still open, which then fail to reach it)."""
        self.closed = True

    def expect(self, status: int, path: str) -> None:
        """An answer the test provokes on purpose (a 400 for a bad form): `path` is a regex searched in the URL."""
        self.expected.append((status, re.compile(path)))

    def attach(self, page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"uncaught: {exc}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._answered)
        page.on("download", lambda download: self.downloads.add(download.url))

    def _console(self, message) -> None:
        if self.closed or message.type != "error":
            return
        # Chromium logs an answer of 400 or more as an error too: one the test expects is not a problem.
        status = re.match(r"Failed to load resource: the server responded with a status of (\d+)", message.text)
        url = message.location.get("url", "")
        if status and any(s == int(status[1]) and p.search(url) for s, p in self.expected):
            return
        self.problems.append(f"console: {message.text} ({message.location})")

    def _failed(self, request) -> None:
        if self.closed:
            return
        failure = request.failure or ""
        # A navigation the page itself starts (a link, a reload, a form) aborts what the old page was fetching.
        if failure == "net::ERR_ABORTED" and request.resource_type in ("fetch", "xhr", "eventsource"):
            return
        if failure == "net::ERR_ABORTED" and request.resource_type == "document":
            self.aborted.append(request.url)  # a download ends its navigation so: fine if it became one
            return
        self.problems.append(f"failed: {request.method} {request.url} {failure}")

    def report(self) -> list[str]:
        """Everything that went wrong, once the pages are closed."""
        return self.problems + [
            f"failed: {url} (aborted, no download)" for url in self.aborted if url not in self.downloads
        ]

    def _answered(self, response) -> None:
        if self.closed or response.status < 400:
            return
        if any(s == response.status and p.search(response.url) for s, p in self.expected):
            return
        self.problems.append(f"answer: {response.status} {response.request.method} {response.url}")


@pytest.fixture
def watch():
    return Watch()


@pytest.fixture
def context(browser, watch):
    """A fresh browser context (cookies, storage) at desktop size; its pages are watched."""
    ctx = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    ctx.set_default_timeout(30_000)
    ctx.on("page", watch.attach)
    yield ctx
    ctx.close()
    assert watch.report() == [], "\n".join(watch.report())


@pytest.fixture
def page(context):
    return context.new_page()


@pytest.fixture
def browser_user(django_user_model):
    return django_user_model.objects.create_user("ada", password=PASSWORD)


def log_in(page, site, user) -> None:
    """Log in through the login form, as a person does; lands on the dashboard."""
    page.goto(site.url + "/accounts/login/")
    page.get_by_label("Username").fill(user.get_username())
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name=re.compile("log in", re.I)).click()
    page.wait_for_url(site.url + "/")


@pytest.fixture
def signed_in(page, site, browser_user):
    """A page logged in as browser_user, on the dashboard."""
    log_in(page, site, browser_user)
    return page


def shoot(page, name: str) -> list[Path]:
    """Save the page whole at desktop width and at 390 px (then back to desktop): SCREENSHOTS/<name>-<width>.png.
    At 390 px the page must not scroll sideways: what is wider than a phone scrolls inside its own box."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    saved = []
    for size in (DESKTOP, NARROW):
        page.set_viewport_size(size)
        page.evaluate("window.scrollTo(0, 0)")  # a sticky header is drawn where the page was scrolled to
        path = SCREENSHOTS / f"{name}-{size['width']}.png"
        page.screenshot(path=str(path), full_page=True)
        saved.append(path)
        if size is NARROW:
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 1, f"{name} scrolls sideways by {overflow}px at 390 px wide"
    page.set_viewport_size(DESKTOP)
    return saved
