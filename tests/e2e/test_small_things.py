"""Small things, in a real browser: pages fit a phone, the skip link works, times follow the
browser's zone, the dashboard draws, and the console follows "Sync now" without a reload."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection
from playwright.sync_api import expect

from workflows_app.models import Batch, BatchState, Run, Workflow
from workflows_app.roles import Role
from workflows_app.services import dashboard_counts, dispatch
from workflows_app.services.catalogue_sync import sync_catalogue

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}
LONG_VALUE = "A-VERY-LONG-DEVICE-NAME-THAT-NOBODY-WOULD-TYPE-0123456789-ABCDEFGHIJKLMNOP"


def runs_with_long_values(user, count: int = 3) -> None:
    """Runs as the history lists them, with long names and reasons that stretch a table."""
    workflow = Workflow.objects.filter(removed_at__isnull=True).order_by("nql_id").first()
    assert workflow is not None
    for n in range(count):
        run = Run.objects.create(
            created_by=user,
            role="Admin",
            source=Run.Source.HELPDESK,
            workflow=workflow,
            workflow_nql_id=workflow.nql_id,
            workflow_uuid=workflow.uuid,
            workflow_name=workflow.name,
            dependency=workflow.dependency,
            api_version="v2",
            target_count=12_345,
            reason=f"INC{n:07d} {LONG_VALUE}",
            outcome_counts={"success": 12_000, "failure": 345},
        )
        Batch.objects.create(
            run=run, number=1, state=BatchState.SUBMITTED, api_version="v2", target_count=12_345
        )


def document_overflow(page) -> int:
    """How many pixels the document is wider than the screen (0: no sideways scrolling)."""
    return page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )


def test_pages_fit_a_phone_and_wide_tables_scroll_inside_themselves(
    page, make_user, sign_in, synced_catalogue, shot
):
    admin = make_user("admin", Role.ADMIN)
    runs_with_long_values(admin)
    dashboard_counts.recount(full=True)
    page.set_viewport_size(PHONE)
    sign_in("admin")

    for url in ("/workflows/", "/runs/", "/console/", "/console/dashboard/"):
        page.goto(url)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        assert document_overflow(page) == 0, url
        shot(url.strip("/").replace("/", "-"))

    # The catalogue's table is wider than the phone: it scrolls sideways inside its own box.
    page.goto("/workflows/")
    table = page.get_by_test_id("workflow-table")
    widths = table.evaluate("t => [t.scrollWidth, t.clientWidth]")
    assert widths[0] > widths[1] <= PHONE["width"], widths
    table.evaluate("t => { t.scrollLeft = 200; }")
    assert table.evaluate("t => t.scrollLeft") > 0
    assert document_overflow(page) == 0


def test_the_skip_link_takes_the_keyboard_to_the_content(page, make_user, sign_in):
    make_user("employee", Role.EMPLOYEE)
    sign_in("employee")
    page.goto("/self-service/")

    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")

    assert page.evaluate("document.activeElement.id") == "content"
    expect(page.get_by_role("link", name="Self-service")).to_have_attribute("aria-current", "page")


def test_times_follow_the_browsers_zone(browser, live_server, make_user, role_groups, e2e_settings):
    make_user("helpdesk", Role.HELPDESK)
    context = browser.new_context(base_url=live_server.url, timezone_id="America/New_York")
    try:
        tab = context.new_page()
        tab.goto("/login/")  # the first page names the zone in a cookie
        tab.get_by_label("Username").fill("helpdesk")
        tab.get_by_label("Password").fill("pw-12345-test")
        tab.get_by_role("button", name="Sign in").click()

        expect(tab.get_by_test_id("time-zone")).to_have_text("Times in America/New_York")
        cookies = {c["name"]: c["value"] for c in context.cookies()}
        assert cookies["portal_tz"] == "America/New_York"
    finally:
        context.close()


def test_the_dashboard_draws_its_charts_with_their_figures(
    page, make_user, sign_in, synced_catalogue
):
    admin = make_user("admin", Role.ADMIN)
    runs_with_long_values(admin, count=2)
    sign_in("admin")
    page.goto("/console/dashboard/")
    page.get_by_role("button", name="Recount now").click()

    expect(page.get_by_test_id("tile-runs")).to_contain_text("2 runs in the last 30 days")
    chart = page.get_by_role("img", name="Runs per day by source")
    expect(chart).to_be_visible()
    assert chart.locator("rect").count() >= 1
    expect(page.get_by_role("img", name="Success rate per workflow")).to_be_visible()
    page.get_by_text("Every workflow").click()
    expect(page.get_by_test_id("workflows-table")).to_contain_text("24,000")
    page.get_by_test_id("nav-admin").click()  # admins' pages are grouped under "Admin"
    expect(page.get_by_role("link", name="Dashboard")).to_have_attribute("aria-current", "page")


def test_the_console_follows_sync_now_without_a_reload(
    page, make_user, sign_in, nexthink_settings, monkeypatch, shot
):
    """The worker starts the sync a moment after the click, as a real one would."""

    def worker(**kwargs) -> None:
        def later() -> None:
            try:
                time.sleep(1.5)
                sync_catalogue(trigger=kwargs["trigger"])
            finally:
                connection.close()

        threading.Thread(target=later, daemon=True).start()

    monkeypatch.setattr(dispatch, "enqueue_catalogue_sync", worker)
    make_user("admin", Role.ADMIN)
    sign_in("admin")
    expect(page.get_by_test_id("last-sync")).to_have_text("The catalogue has never been synced.")

    page.get_by_role("button", name="Sync now").click()
    expect(page.get_by_test_id("sync-awaited")).to_be_visible()
    page.evaluate("window.__e2eSameDocument = true")

    expect(page.get_by_test_id("last-sync")).to_contain_text("Succeeded", timeout=20_000)
    expect(page.get_by_role("button", name="Sync now")).to_be_enabled()
    assert page.evaluate("window.__e2eSameDocument === true"), "the page was reloaded"
    expect(page.get_by_test_id("workflow-counts")).not_to_contain_text("0 active")
    shot("synced")


@pytest.mark.parametrize("role", [Role.ADMIN, Role.HELPDESK])
def test_the_navigation_fits_one_line_on_a_1280_pixel_screen(page, make_user, sign_in, role, shot):
    make_user("jane.someone@example.com", role)
    page.set_viewport_size({"width": 1280, "height": 800})
    sign_in("jane.someone@example.com")
    links = page.get_by_role("navigation", name="Main").get_by_role("link")
    tops = {round(box["y"]) for box in (link.bounding_box() for link in links.all()) if box}
    bar = page.locator(".topbar").bounding_box()
    assert len(tops) == 1 and bar is not None and bar["height"] < 60, (tops, bar)
    shot(role.name.lower())
