"""Flows in a real browser: an admin composes a three-step flow, a helpdesk agent runs it (after
its confirmation page) and watches its steps go by on the live graph, each step linking to its
run; an employee runs a flow offered for self-service on their own device and sees it end.

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


def test_employee_runs_a_self_service_flow_on_their_device_in_one_click_and_sees_it_end(
    page, make_user, sign_in, shot, simulator, synced_catalogue, celery_beat
):
    from workflows_app.models import FlowRun, FlowRunStatus
    from workflows_app.services import flows

    simulator.execution_seconds = 1.0  # long enough to see the flow run on its way
    steps = [
        {"id": "clear", "referrer": "#clear_teams_cache"},
        {"id": "disk", "referrer": "#free_up_disk_space", "depends_on": ["clear"]},
    ]
    admin = make_user("boss", Role.ADMIN)
    data = {"name": "Teams and disk", "self_service": True, "steps": steps}
    flows.create_flow(user=admin, data=data)
    make_user("employee", Role.EMPLOYEE)  # employee@example.com: three devices in the simulator
    mine = {d.name: d for d in simulator.inventory.devices_of("employee@example.com")}
    newest = mine["EMP-LT-0142"]

    sign_in("employee")
    expect(page).to_have_url(re.compile(r"/self-service/$"))
    page.get_by_test_id("flow-fixes").get_by_role("link", name="Teams and disk").click()
    expect(page.get_by_role("radio", name=newest.name)).to_be_checked()
    page.get_by_test_id("run-fix").click()

    expect(page).to_have_url(re.compile(r"/flows/runs/\d+/$"))
    status = page.get_by_test_id("flow-run-status")
    expect(status).to_have_text("In progress")
    page.evaluate("window.__e2eSameDocument = true")
    expect(status).to_have_text("Succeeded", timeout=FLOW_TIMEOUT_MS)
    expect(page.get_by_test_id("flow-run-steps")).to_have_attribute("data-polling", "false")
    assert page.evaluate("window.__e2eSameDocument === true"), "the page was reloaded"
    shot("succeeded")
    flow_run = FlowRun.objects.get()
    assert (flow_run.source, flow_run.status) == ("self_service", FlowRunStatus.SUCCEEDED)
    for step in flow_run.steps.select_related("run"):
        sent = list(step.run.targets.values_list("value", flat=True))
        assert sent == [newest.collector_uid.lower()], (step.step_id, sent)
