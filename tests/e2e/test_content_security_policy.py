"""The Content-Security-Policy in a real browser: the key pages, htmx polling included, run
without a single violation, and the time-zone script (a static file now) still sets its cookie."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.test_small_things import runs_with_long_values
from workflows_app.models import Run, Workflow, WorkflowCuration
from workflows_app.roles import Role

pytestmark = pytest.mark.e2e

# Reported to the console by the listener below; Chromium's own refusals say the words too.
LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline"));
});
"""


def test_key_pages_run_without_a_content_security_policy_violation(
    page, make_user, sign_in, synced_catalogue, shot
):
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    page.on("pageerror", lambda error: messages.append(f"page error: {error}"))
    page.add_init_script(LISTENER)
    admin = make_user("admin", Role.ADMIN)
    fix = Workflow.objects.get(nql_id="#clear_teams_cache")
    WorkflowCuration.objects.create(workflow=fix, self_service=True, category="Collaboration")
    runs_with_long_values(admin, count=1)
    run = Run.objects.get()  # queued, so its page polls the progress partial every 2 seconds

    sign_in("admin")
    assert any(c["name"] == "portal_tz" for c in page.context.cookies()), (
        "the time-zone script did not run"
    )

    page.goto("/self-service/")
    expect(page.get_by_role("heading", name="Collaboration")).to_be_visible()
    with page.expect_response(re.compile(r"/self-service/\?")):
        page.get_by_role("searchbox").fill("teams")  # htmx swaps the cards in
    expect(page.get_by_test_id("fix-card")).to_have_count(1)

    page.goto(f"/workflows/{fix.pk}/run/")
    expect(page.get_by_test_id("run-form")).to_be_visible()

    page.goto(f"/runs/{run.pk}/")
    expect(page.get_by_test_id("run-progress")).to_have_attribute("data-polling", "true")
    with page.expect_response(re.compile(rf"/runs/{run.pk}/progress/$")) as polled:
        pass
    assert polled.value.status == 200
    expect(page.locator("svg.progress rect.segment-succeeded")).to_have_count(1)
    shot("run-page")

    page.goto("/console/")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    page.goto("/console/dashboard/")
    expect(page.get_by_role("heading", level=1)).to_be_visible()

    refused = [m for m in messages if "Content Security Policy" in m or "CSP violation" in m]
    assert refused == [], refused
    assert not [m for m in messages if m.startswith("page error")], messages

    # The listener does see a violation: an inline script is refused and reported.
    with page.expect_console_message(lambda m: "CSP violation: script-src" in m.text):
        page.evaluate(
            "() => { const s = document.createElement('script'); s.textContent = 'window.x = 1';"
            " document.head.appendChild(s); }"
        )
    assert page.evaluate("() => window.x === undefined")
