"""Browser tests: Playwright driving Debian's Chromium against pytest-django's live server.

Fixtures for every browser test (later features add full flows here):

- `live_server`: pytest-django's live server; on SQLite it answers one request at a time (see
  `OneRequestAtATime`).
- `browser`: one headless Chromium for all tests in tests/browser (package scope).
- `context` / `page`: a fresh browser context per test (own cookies, so own session), with
  `base_url` set to the live server, so `page.goto("/patients/")` works.
  The page fails the test at teardown on a JavaScript error, a CSP violation, or a failed
  sub-resource (CSS/JS/image answering >= 400), so a broken layout cannot pass unnoticed.
- `sign_in(page, user)`: the real login page, password, then a TOTP code.
- `screenshot(page, name)`: saves a PNG only when KETACLINIC_SCREENSHOT_DIR is set.

Never run `playwright install`: the tests use /usr/bin/chromium (`make chromium` installs it).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Request,
    Response,
    expect,
    sync_playwright,
)
from pytest_django.live_server_helper import LiveServer

from ketaclinic.accounts.models import User
from tests.factories import PASSWORD

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# A local server answers in milliseconds, but CI runs two test processes on two cores beside
# Chromium and the live server, and a sign-in hashes a password: 5 s timed out under that load.
TIMEOUT_MS = 20_000


# Held by the live server for each request on SQLite, and by the test for each of its queries.
SQLITE_TURN = threading.Lock()


class OneRequestAtATime:
    """A WSGI app that runs the app it wraps for one request at a time.

    The SQLite test database lives in memory, and the live server's threads reach it through
    SQLite's shared cache. Shared-cache table locks fail at once ("database table is locked")
    instead of waiting, so two requests at once fail each other: a session save's
    DatabaseError is answered with 400 ("session interrupted"), another query's with 500. A
    page sends such requests by itself (an htmx preview on `change` while its form is being
    submitted), and the failures came and went. The response is read to its end inside the
    lock, since a streamed response still queries as it is read. The test's own queries take
    the same lock (`sqlite_turns`). On PostgreSQL every thread has its own connection and
    waits for row locks, so requests run side by side there.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with SQLITE_TURN:
            response = self.app(environ, start_response)
            try:
                return [b"".join(response)]
            finally:
                close = getattr(response, "close", None)
                if close is not None:
                    close()


@pytest.fixture(scope="session")
def live_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """pytest-django's `live_server`, one request at a time on SQLite."""
    addr = (
        request.config.getvalue("liveserver")
        or os.getenv("DJANGO_LIVE_TEST_SERVER_ADDRESS")
        or "localhost"
    )
    server = LiveServer(addr, start=False)
    # Decided here, not from the connection's name: this runs before the test database exists.
    if connection.vendor == "sqlite":
        wrap_static = server.thread.static_handler
        server.thread.static_handler = lambda app: OneRequestAtATime(wrap_static(app))
    server.start()
    yield server
    server.stop()


def _query_in_turn(execute: Callable[..., Any], *args: Any) -> Any:
    with SQLITE_TURN:
        return execute(*args)


@pytest.fixture(autouse=True)
def sqlite_turns() -> Iterator[None]:
    """The test's queries wait while the live server answers a request (a page's poll, say)."""
    if connection.vendor != "sqlite":
        yield
        return
    with connection.execute_wrapper(_query_in_turn):
        yield


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium` (never `playwright install`)")
    # Playwright's sync API runs an asyncio event loop in this (the test) thread for as long as
    # it is started, and Django then refuses ORM calls here with SynchronousOnlyOperation
    # ("You cannot call this from an async context"). Our ORM calls (fixtures, TOTP devices,
    # audit assertions, the live server's database flush) are ordinary blocking code that
    # never runs inside the loop, so the check is a false alarm here. Allow it only while the
    # browser runs: package scope stops Playwright after the last test in tests/browser, so the
    # rest of the suite keeps Django's protection.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            expect.set_options(timeout=TIMEOUT_MS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def context(browser: Browser, live_server: Any) -> Iterator[BrowserContext]:
    # A tablet-ish landscape viewport: the layout must work at chair side.
    ctx = browser.new_context(
        base_url=live_server.url,
        viewport={"width": 1280, "height": 900},
        locale="en-US",
        timezone_id="UTC",
    )
    ctx.set_default_timeout(TIMEOUT_MS)
    ctx.set_default_navigation_timeout(2 * TIMEOUT_MS)
    yield ctx
    ctx.close()


@pytest.fixture
def page_problems() -> list[str]:
    """What went wrong in the page (JS errors, CSP violations, failed CSS/JS/images)."""
    return []


@pytest.fixture
def page(context: BrowserContext, page_problems: list[str]) -> Iterator[Page]:
    page = context.new_page()

    def on_console(message: ConsoleMessage) -> None:
        # "Failed to load resource" duplicates on_response; a 404 document is often the point.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            page_problems.append(f"console error: {message.text}")

    def on_response(response: Response) -> None:
        if response.request.resource_type != "document" and response.status >= 400:
            page_problems.append(
                f"{response.status} for {response.request.resource_type} {response.url}"
            )

    def on_request_failed(request: Request) -> None:
        page_problems.append(f"request failed: {request.url} ({request.failure})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: page_problems.append(f"page error: {error}"))
    page.on("response", on_response)
    page.on("requestfailed", on_request_failed)
    yield page
    if page_problems:
        pytest.fail("problems in the browser:\n" + "\n".join(page_problems))


def totp_code(device: TOTPDevice) -> str:
    """The code an authenticator app shows for this device right now.

    `TOTP.token()` is an int: zero-pad it, or one code in ten (leading zero) is 5 digits long.
    """
    token = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift).token()
    return f"{token:0{device.digits}d}"


_device_numbers = count(1)


def sign_in(page: Page, user: User, *, password: str = PASSWORD) -> None:
    """Sign in through the real pages: username + password, then a TOTP code.

    Each call gives the user a new confirmed TOTP device: django-otp accepts a device's code
    only once per 30-second step (replay protection), so signing the same user in twice within
    a step with one device would fail. The code is computed just before it is typed; the
    default tolerance of one step covers a step boundary passing meanwhile.
    """
    device = TOTPDevice.objects.create(
        user=user, name=f"browser test {next(_device_numbers)}", confirmed=True
    )
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(user.get_username())
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/accounts/mfa/verify/"))
    page.get_by_label("6-digit code").fill(totp_code(device))
    page.get_by_role("button", name="Continue").click()
    expect(page).not_to_have_url(re.compile(r"/accounts/(login|mfa)/"))
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


@pytest.fixture(name="sign_in")
def sign_in_fixture() -> Callable[..., None]:
    return sign_in


def screenshot(page: Page, name: str) -> Path | None:
    """Full-page PNG into $KETACLINIC_SCREENSHOT_DIR (for looking at pages), else nothing."""
    folder = os.environ.get("KETACLINIC_SCREENSHOT_DIR")
    if not folder:
        return None
    path = Path(folder) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture(name="screenshot")
def screenshot_fixture() -> Callable[[Page, str], Path | None]:
    return screenshot
