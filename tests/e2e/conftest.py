"""Browser fixtures: one headless Chromium per e2e package, a fresh page per test, screenshots.

Playwright's sync API keeps an asyncio loop running in this thread while it is started, so
Django's async-safety check would refuse the test's own ORM calls; DJANGO_ALLOW_ASYNC_UNSAFE is
set only while the browser is up and restored afterwards, so the rest of the suite keeps the check.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import Group

from workflows_app.roles import Role

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
]
PASSWORD = "pw-12345-test"  # what tests/conftest.py's make_user gives every account
# Generous enough for a loaded CI box; every wait is an explicit expect/wait_for, never a sleep.
STEP_TIMEOUT_MS = 10_000


def _chromium_path() -> str:
    path = os.environ.get("PORTAL_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail(
            f"The browser tests need Chromium ({path} not found): "
            "apt-get install chromium, or set PORTAL_CHROMIUM to its path."
        )
    return path


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """Remember each phase's report on the item so the page fixture can see a failure."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    """A headless Chromium shared by the e2e package."""
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(
            executable_path=_chromium_path(), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="package", autouse=True)
def live_server_sends_at_once() -> Iterator[None]:
    """TCP_NODELAY on the live server's connections.

    Django's handler writes an answer's headers and its body in two writes; on the browser's
    keep-alive connections Nagle's algorithm held the body until the browser's delayed ACK of
    the headers: 40 ms on every page, stylesheet, script and htmx partial.
    """
    from django.core.servers.basehttp import WSGIRequestHandler

    saved = WSGIRequestHandler.disable_nagle_algorithm
    WSGIRequestHandler.disable_nagle_algorithm = True
    yield
    WSGIRequestHandler.disable_nagle_algorithm = saved


@pytest.fixture
def e2e_settings(settings):
    """Plain-HTTP live server: cookies must not be Secure-only for the browser to send them."""
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    return settings


@pytest.fixture
def role_groups(transactional_db) -> None:
    """The role groups: an earlier transactional test's flush may have removed them."""
    for role in Role:
        Group.objects.get_or_create(name=role.value)


def _artefact_stem(item: pytest.Item) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", item.name).strip("-")


@pytest.fixture
def page(browser, live_server, e2e_settings, role_groups, request) -> Iterator[object]:
    """A new browser context and page for one test; screenshot on failure."""
    from playwright.sync_api import expect

    expect.set_options(timeout=STEP_TIMEOUT_MS)
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(STEP_TIMEOUT_MS)
    tab = context.new_page()
    stem = _artefact_stem(request.node)
    for old in ARTIFACTS.glob(f"{stem}-*.png"):
        old.unlink()
    try:
        yield tab
    finally:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            try:
                tab.screenshot(path=str(ARTIFACTS / f"{stem}-failure.png"), full_page=True)
            except Exception as exc:  # noqa: BLE001 - a failed screenshot must not hide the failure
                print(f"could not take the failure screenshot: {exc}")
        context.close()


@pytest.fixture
def shot(page, request) -> Callable[[str], Path]:
    """Save a full-page screenshot named `<test>-<step>.png` in test-artifacts/e2e/."""
    stem = _artefact_stem(request.node)

    def take(step: str) -> Path:
        path = ARTIFACTS / f"{stem}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def sign_in(page) -> Callable[[str], None]:
    """Sign in through the login page as the given username (password from make_user)."""
    from playwright.sync_api import expect

    def login(username: str, password: str = PASSWORD) -> None:
        page.goto("/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_test_id("whoami")).to_contain_text(username)

    return login


@pytest.fixture
def synced_catalogue(nexthink_settings, role_groups):
    """The portal's catalogue, synced from the simulator the way the scheduled sync does it."""
    from workflows_app.models import CatalogueSync
    from workflows_app.services.catalogue_sync import sync_catalogue

    sync = sync_catalogue(trigger="manual")
    assert sync.status == CatalogueSync.Status.SUCCEEDED, (sync.status, sync.error, sync.problems)
    return sync


@pytest.fixture
def slow_execute(simulator):
    """Hold each execute answer back a moment, so the run page is seen before it is submitted."""
    simulator.faults.configure(
        latency=2.0, paths=["/api/v1/workflows/execute", "/api/v2/workflows/execute"]
    )
    yield
    simulator.faults.clear()
