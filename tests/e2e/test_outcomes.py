"""Outcomes in a real browser: a fix that ends "Fixed", a waiting execution resumed from the inbox.

The portal runs as a live server; a real Celery worker sends the batches and real beat follows
them up through the simulator's saved NQL queries (every half second, tests/celery_fixtures.py),
all sharing the test database (transactional tests).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.celery_fixtures import wait_until
from workflows_app.roles import Role

pytestmark = pytest.mark.e2e

# Sending, a few seconds of simulated execution, then the follow-up's next check.
OUTCOME_TIMEOUT_MS = 45_000


class RecentFixesWatch:
    """Proves the recent fixes updated in place: htmx polled them and the page was not reloaded."""

    def __init__(self, page) -> None:
        self.page = page
        self.polls: list[str] = []
        page.on("request", self._seen)

    def _seen(self, request) -> None:
        if request.headers.get("hx-request") == "true" and "/self-service/recent/" in request.url:
            self.polls.append(request.url)

    def mark_document(self) -> None:
        self.page.evaluate("window.__e2eSameDocument = true")

    def assert_updated_in_place(self) -> None:
        assert self.page.evaluate("window.__e2eSameDocument === true"), "the page was reloaded"
        assert self.polls, "htmx never asked for the recent fixes"


def test_employee_sees_their_fix_go_from_running_to_fixed_without_reloading(
    page, make_user, sign_in, shot, simulator, synced_catalogue, celery_beat, slow_execute
):
    from workflows_app.models import Run, RunStatus, Workflow, WorkflowCuration

    WorkflowCuration.objects.create(
        workflow=Workflow.objects.get(nql_id="#clear_teams_cache"),
        self_service=True,
        title="Fix Microsoft Teams",
        category="Collaboration",
    )
    make_user("employee", Role.EMPLOYEE)

    sign_in("employee")
    card = page.get_by_test_id("fix-card").filter(has_text="Fix Microsoft Teams")
    card.get_by_role("link", name="Fix it").click()
    card.get_by_role("button", name="Yes, run it").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+/$"))

    page.goto("/self-service/")
    watch = RecentFixesWatch(page)
    area = page.get_by_test_id("recent-fixes-area")
    fix = area.get_by_test_id("recent-run").filter(has_text="Fix Microsoft Teams")
    expect(fix.get_by_test_id("fix-status")).to_have_text("Running")
    expect(area).to_have_attribute("data-polling", "true")
    watch.mark_document()
    shot("running")

    expect(fix.get_by_test_id("fix-status")).to_have_text("Fixed", timeout=OUTCOME_TIMEOUT_MS)
    expect(area).to_have_attribute("data-polling", "false")
    shot("fixed")
    watch.assert_updated_in_place()
    run = Run.objects.get()
    assert run.status == RunStatus.SUCCEEDED
    # Nothing of the machinery on the employee's page: no request or execution ids, no batches.
    html = page.content()
    assert run.batches.get().request_uuid not in html
    assert run.targets.get().execution_uuid not in html
    assert "batch" not in page.get_by_test_id("recent-fixes-area").inner_text().lower()


def test_helpdesk_resumes_a_waiting_execution_from_the_inbox_and_the_run_succeeds(
    page, make_user, sign_in, shot, simulator, synced_catalogue, celery_beat
):
    from workflows_app.models import Outcome, Resumption, Run, RunStatus, Workflow
    from workflows_app.services.runs import create_run
    from workflows_app.targets import Target as Wanted
    from workflows_app.targets import TargetKind

    agent = make_user("helpdesk", Role.HELPDESK)
    workflow = Workflow.objects.get(nql_id="#reset_mfa")  # pauses on a "wait for event" step
    run = create_run(
        user=agent,
        workflow=workflow,
        targets=[Wanted(TargetKind.USER_UPN, "employee@example.com", 1)],
        params={},
        reason="INC-5150 MFA reset approved by the manager",
        source=Run.Source.HELPDESK,
    )
    # The worker sends it, the simulator runs it up to its wait step, the follow-up sees that.
    wait_until(
        lambda: run.targets.filter(outcome=Outcome.WAITING).exists(),
        timeout=OUTCOME_TIMEOUT_MS / 1000,
        what="the execution to be waiting for its event",
        explain=lambda: str(list(run.targets.values("outcome", "status", "status_details"))),
    )
    execution_uuid = run.targets.get().execution_uuid

    sign_in("helpdesk")
    page.get_by_test_id("nav-waiting").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Waiting executions")
    item = page.get_by_test_id("waiting-item").filter(has_text="employee@example.com")
    expect(item).to_have_attribute("data-execution", execution_uuid)
    item.get_by_label("Name 1").fill("Approved")
    item.get_by_label("Value 1").fill("yes")
    shot("inbox")

    item.get_by_role("button", name="Resume").click()

    resumption = wait_until(Resumption.objects.first, timeout=10, what="the resumption row")
    expect(page.get_by_role("status").filter(has_text="resumed")).to_contain_text(
        resumption.request_uuid
    )
    expect(page.get_by_test_id("no-waiting")).to_be_visible()
    expect(page.get_by_test_id("resumption")).to_contain_text("Approved")
    shot("resumed")
    upstream = simulator.state.find_execution(execution_uuid)
    assert upstream.trigger_params == {"Approved": "yes"}

    wait_until(
        lambda: Run.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED,
        timeout=OUTCOME_TIMEOUT_MS / 1000,
        what="the run to succeed once resumed",
        explain=lambda: str(list(run.targets.values("outcome", "status", "status_details"))),
    )
    page.goto(f"/runs/{run.pk}/")
    expect(page.get_by_test_id("run-status")).to_have_text("Succeeded")
    shot("run-succeeded")
