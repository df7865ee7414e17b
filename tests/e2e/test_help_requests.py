"""Getting help in a real browser: from a fix that did not work to the helpdesk's reference."""

from __future__ import annotations

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from workflows_app.roles import Role

pytestmark = pytest.mark.e2e


def test_employee_asks_for_help_with_a_failed_fix_and_reads_what_happens_next(
    page, make_user, sign_in, shot, settings, monkeypatch
):
    from workflows_app.models import HelpRequest, Run, RunStatus, Workflow, WorkflowCuration
    from workflows_app.nexthink.models import Dependency
    from workflows_app.services import dispatch
    from workflows_app.services.runs import create_run
    from workflows_app.targets import Target, TargetKind

    settings.HELPDESK_EMAIL = "it-helpdesk@example.com"
    published: list[str] = []
    monkeypatch.setattr(dispatch, "enqueue_batch", lambda *args, **kwargs: None)
    monkeypatch.setattr(dispatch, "enqueue_notification", lambda run_id, e, d: published.append(e))
    now = timezone.now()
    workflow = Workflow.objects.create(
        nql_id="#clear_teams_cache",
        uuid="uuid-teams",
        name="Clear Teams cache",
        status=Workflow.Status.ACTIVE,
        dependency=Dependency.DEVICE,
        trigger_api=True,
        first_seen=now,
        last_seen=now,
    )
    WorkflowCuration.objects.create(workflow=workflow, self_service=True, title="Fix Teams")
    employee = make_user("employee", Role.EMPLOYEE)
    run = create_run(
        user=employee,
        workflow=workflow,
        targets=[Target(TargetKind.DEVICE_NAME, "PC-ERIN", 1)],
        params={},
        reason="Self-service on PC-ERIN",
        source=Run.Source.SELF_SERVICE,
    )
    Run.objects.filter(pk=run.pk).update(status=RunStatus.FAILED, finished_at=now)
    published.clear()  # the run's own run.created: only what the employee sets off counts

    sign_in("employee")
    page.goto(f"/runs/{run.pk}/")
    shot("offer")
    page.get_by_test_id("get-help").click()
    page.get_by_label("Anything the helpdesk should know?").fill("Teams shows a white window")
    page.evaluate("window.__e2eSameDocument = true")
    page.get_by_role("button", name="Send to the helpdesk").click()

    confirmation = page.get_by_test_id("help-confirmation")
    expect(confirmation).to_contain_text("The IT helpdesk received your request")
    reference = HelpRequest.objects.get(run=run).reference
    expect(page.get_by_test_id("help-reference")).to_have_text(reference)
    expect(page.get_by_test_id("contact-email")).to_have_text("employee@example.com")
    assert page.evaluate("window.__e2eSameDocument === true"), "htmx swapped the form in place"
    assert published == ["run.help_requested"]
    shot("confirmation")

    page.goto(f"/runs/{run.pk}/")
    expect(page.get_by_test_id("help-requested")).to_contain_text(reference)
