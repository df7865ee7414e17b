"""Flows in a real browser: an admin composes a three-step flow, a helpdesk agent runs it and
watches its steps go by on the live graph, each step linking to its run.

The portal runs as a live server; a real Celery worker sends each step's batch and real beat
follows it up through the simulator (tests/celery_fixtures.py), all on the test database.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from workflows_app.roles import Role

pytestmark = pytest.mark.e2e

FLOW_TIMEOUT_MS = 90_000


def test_admin_builds_a_three_step_flow_and_helpdesk_runs_it_and_watches_the_steps(
    page, make_user, sign_in, shot, simulator, synced_catalogue, celery_beat
):
    from workflows_app.models import Flow, FlowRun, FlowRunStatus

    simulator.execution_seconds = 1.0
    make_user("boss", Role.ADMIN)
    make_user("agent", Role.HELPDESK)

    sign_in("boss")
    page.get_by_test_id("nav-flows").click()
    page.get_by_test_id("new-flow").click()
    page.get_by_label("Name", exact=True).fill("Teams, then disk and spooler")
    rows = [
        ("clear", "#clear_teams_cache", ""),
        ("disk", "#free_up_disk_space", "clear"),
        ("spooler", "#restart_print_spooler", "clear"),
    ]
    for i, (step_id, workflow, depends_on) in enumerate(rows):
        page.locator(f"#step-{i}-id").fill(step_id)
        page.locator(f"#step-{i}-referrer").select_option(workflow)
        page.locator(f"#step-{i}-depends_on").fill(depends_on)
        if i < len(rows) - 1:
            page.get_by_test_id("add-step").click()
            expect(page.locator(f"#step-{i + 1}-id")).to_be_visible()
    page.locator("#step-2-on_failure").select_option("continue")
    shot("editor")
    page.get_by_test_id("save-flow").click()
    expect(page.get_by_test_id("flow-name")).to_have_text("Teams, then disk and spooler")
    graph = page.get_by_test_id("flow-graph")
    for step_id, _, _ in rows:
        expect(graph.locator(f'[data-step-node="{step_id}"]')).to_be_visible()
    shot("flow")
    flow = Flow.objects.get()
    assert [s["depends_on"] for s in flow.current.steps] == [[], ["clear"], ["clear"]]

    page.get_by_role("button", name="Sign out").click()
    sign_in("agent")
    page.get_by_test_id("nav-flows").click()
    page.locator("tr[data-flow='Teams, then disk and spooler']").get_by_role(
        "link", name="Run"
    ).click()
    page.get_by_label("Devices or users, one a line").fill("EMP-LT-0142\nKIOSK-LOBBY-01")
    page.get_by_label("Reason or ticket").fill("INC0012345")
    page.get_by_test_id("start-flow").click()
    expect(page.get_by_test_id("target-count")).to_have_text("2")
    page.get_by_test_id("run-now").click()
    expect(page).to_have_url(re.compile(r"/flows/runs/\d+/$"))

    steps = page.get_by_test_id("flow-run-steps")
    expect(steps).to_have_attribute("data-polling", "true")
    expect(steps.locator("tr[data-step='clear']")).to_have_attribute("data-state", "started")
    expect(steps.locator("tr[data-step='disk']")).to_have_attribute("data-state", "pending")
    page.evaluate("window.__e2eSameDocument = true")
    shot("running")
    # The steps after "clear" start once it ended; the page follows without being reloaded.
    expect(steps.locator("tr[data-step='disk']")).to_have_attribute(
        "data-state", "started", timeout=FLOW_TIMEOUT_MS
    )
    expect(page.get_by_test_id("flow-run-status")).to_have_text(
        "Succeeded", timeout=FLOW_TIMEOUT_MS
    )
    expect(page.get_by_test_id("flow-run-steps")).to_have_attribute("data-polling", "false")
    assert page.evaluate("window.__e2eSameDocument === true"), "the page was reloaded"
    shot("succeeded")
    flow_run = FlowRun.objects.get()
    assert flow_run.status == FlowRunStatus.SUCCEEDED
    for row in flow_run.steps.all():
        link = page.get_by_test_id(f"step-run-{row.step_id}")
        expect(link).to_have_attribute("href", f"/runs/{row.run_id}/")
    page.get_by_test_id("step-run-spooler").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+/$"))
    expect(page.get_by_test_id("run-status")).to_have_text("Succeeded")
