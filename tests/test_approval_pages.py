"""Four-eyes approval as people meet it: the inbox, the decision page, the run's page, the API,
the command line, curation and flows."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.management import call_command
from django.urls import reverse

from tests.api_support import ApiClient
from tests.flow_support import catalogue, make_flow, run_flow, step, steps_of
from tests.test_approvals import curated, run_for, sids
from workflows_app.models import (
    Approval,
    ApprovalState,
    BatchState,
    FlowRun,
    FlowRunStatus,
    ParameterDefinition,
    Run,
    RunStatus,
    StepState,
    WorkflowCuration,
)
from workflows_app.roles import Role
from workflows_app.services import api_tokens, approvals, dispatch, flow_engine
from workflows_app.services.curation import export_curation, import_curation
from workflows_app.services.runs import create_run
from workflows_app.targets import Target as Wanted
from workflows_app.targets import TargetKind

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def quiet(monkeypatch: pytest.MonkeyPatch, enqueued: list[int]) -> None:
    """No message leaves: batches are recorded by `enqueued`, notifications dropped."""
    monkeypatch.setattr(dispatch, "enqueue_notification", lambda *args: None)


@pytest.fixture
def held(helpdesk: Any, sim_workflow: Any) -> Run:
    """A helpdesk agent's run of a workflow whose runs admins approve, with a secret parameter."""
    workflow = curated(sim_workflow("#unlock_ad_account"))
    ParameterDefinition.objects.create(workflow=workflow, name="Pin", secret=True)
    return run_for(helpdesk, workflow, sids(150), Pin="4242")


def decide_url(run: Run) -> str:
    return reverse("approvals:decide", args=[Approval.objects.get(run=run).pk])


def detail_url(run: Run) -> str:
    return reverse("approvals:detail", args=[Approval.objects.get(run=run).pk])


def test_inbox_shows_admins_what_they_may_decide_with_a_count_in_the_navigation(
    client_for: Any, admin_user: Any, helpdesk: Any, held: Run
) -> None:
    page = client_for(admin_user).get(reverse("approvals:inbox"))
    html = page.content.decode()
    assert page.status_code == 200
    assert f'data-approval="{held.approval.pk}"' in html and "INC0042" in html
    assert 'data-testid="approvals-count">1<' in html and ">150<" in html
    # The requester sees it among their own requests, not among those to decide.
    mine = client_for(helpdesk).get(reverse("approvals:inbox")).content.decode()
    assert 'data-testid="no-pending"' in mine and 'data-testid="own-pending"' in mine
    assert 'data-testid="approvals-count"' not in mine


def test_anonymous_is_sent_to_sign_in_and_employees_get_403(
    client: Any, client_for: Any, employee: Any, held: Run
) -> None:
    for url in (reverse("approvals:inbox"), detail_url(held)):
        assert client.get(url).status_code == 302
    assert client.post(decide_url(held), {"decision": "approve"}).status_code == 302
    signed_in = client_for(employee)
    assert signed_in.get(reverse("approvals:inbox")).status_code == 403
    assert signed_in.post(decide_url(held), {"decision": "approve"}).status_code == 403
    assert Approval.objects.get(run=held).state == ApprovalState.PENDING


def test_helpdesk_cannot_decide_what_admins_approve(
    client_for: Any, make_user: Any, held: Run
) -> None:
    other = client_for(make_user("helpdesk-2", Role.HELPDESK))
    assert other.get(detail_url(held)).status_code == 403
    assert other.post(decide_url(held), {"decision": "approve"}).status_code == 403
    assert Approval.objects.get(run=held).state == ApprovalState.PENDING


def test_requester_is_offered_no_buttons_and_refused_whatever_their_role(
    client_for: Any, admin_user: Any, sim_workflow: Any
) -> None:
    run = run_for(admin_user, curated(sim_workflow("#unlock_ad_account")), sids(1))
    signed_in = client_for(admin_user)
    page = signed_in.get(detail_url(run)).content.decode()
    assert "someone else must approve it" in page and 'data-testid="approve"' not in page
    refused = signed_in.post(decide_url(run), {"decision": "approve"})
    assert refused.status_code == 403 and b"someone else must approve it" in refused.content
    assert Approval.objects.get(run=run).state == ApprovalState.PENDING


def test_decision_page_shows_targets_by_pages_and_masks_secrets(
    client_for: Any, admin_user: Any, held: Run
) -> None:
    signed_in = client_for(admin_user)
    page = signed_in.get(detail_url(held)).content.decode()
    assert "4242" not in page and "Pin" in page and "helpdesk" in page
    assert page.count("S-1-5-21-") == 100 and 'data-testid="targets-next"' in page
    rest = signed_in.get(detail_url(held) + "?after=99").content.decode()
    assert rest.count("S-1-5-21-") == 50 and 'data-testid="targets-next"' not in rest


def test_approving_on_the_page_sends_it_and_a_second_click_is_told_who_was_first(
    client_for: Any,
    admin_user: Any,
    make_user: Any,
    held: Run,
    enqueued: list[int],
    django_capture_on_commit_callbacks: Any,
) -> None:
    second = make_user("admin-2", Role.ADMIN)
    assert client_for(admin_user).get(decide_url(held)).status_code == 405
    with django_capture_on_commit_callbacks(execute=True):
        answer = client_for(admin_user).post(decide_url(held), {"decision": "approve"})
    assert answer.status_code == 302 and answer.url == reverse("runs:detail", args=[held.pk])
    held.refresh_from_db()
    assert held.status == RunStatus.QUEUED and enqueued == [held.batches.get().pk]

    late = client_for(second).post(decide_url(held), {"decision": "reject", "comment": "no"})
    assert late.status_code == 302
    followed = client_for(second).get(late.url).content.decode()
    assert "Already approved by admin" in followed
    run_page = client_for(second).get(reverse("runs:detail", args=[held.pk])).content.decode()
    assert 'data-state="approved"' in run_page and 'data-event="approval.approved"' in run_page
    assert 'data-testid="open-approval"' not in run_page  # nothing left to decide


def test_rejecting_needs_a_comment_and_then_ends_the_run(
    client_for: Any, admin_user: Any, held: Run, enqueued: list[int]
) -> None:
    signed_in = client_for(admin_user)
    bare = signed_in.post(decide_url(held), {"decision": "reject", "comment": " "})
    assert bare.status_code == 400 and b'data-testid="comment-error"' in bare.content
    assert signed_in.post(decide_url(held), {"decision": "maybe"}).status_code == 400
    signed_in.post(decide_url(held), {"decision": "reject", "comment": "wrong ticket"})
    held.refresh_from_db()
    assert held.status == RunStatus.REJECTED and enqueued == []
    page = signed_in.get(reverse("runs:detail", args=[held.pk])).content.decode()
    assert "wrong ticket" in page and "Not sent: rejected by admin: wrong ticket." in page
    assert 'data-testid="rerun"' not in page  # nothing failed: "Run again" is the offer


def test_run_page_says_who_must_approve_it_and_until_when(
    client_for: Any, helpdesk: Any, held: Run
) -> None:
    page = client_for(helpdesk).get(reverse("runs:detail", args=[held.pk])).content.decode()
    assert "Awaiting approval by an admin until" in page
    assert 'data-event="approval.requested"' in page and 'data-testid="open-approval"' not in page
    assert "unanswered by then, it ends “expired”" in page
    assert f'href="{detail_url(held)}" data-testid="view-approval"' in page
    assert client_for(helpdesk).get(detail_url(held)).status_code == 200  # read-only for them
    assert ">Queued<" not in page and "Held for approval" in page  # nothing is queued yet
    listed = client_for(helpdesk).get(reverse("runs:list")).content.decode()
    assert f'href="/runs/{held.pk}/"' in listed and "Awaiting approval" in listed
    assert "Held for approval 150<" in listed


def test_employee_fix_waiting_for_approval_says_so(
    client_for: Any, employee: Any, admin_user: Any, sim_workflow: Any
) -> None:
    workflow = curated(sim_workflow("#clear_teams_cache", self_service=True), "Helpdesk")
    device = Wanted(TargetKind.DEVICE_NAME, "LAPTOP-1", 1)
    run = create_run(
        user=employee,
        workflow=workflow,
        targets=[device],
        params={},
        reason="",
        source=Run.Source.SELF_SERVICE,
    )
    assert Approval.objects.get(run=run).approver_role == "Helpdesk"
    page = client_for(employee).get(reverse("runs:detail", args=[run.pk]))
    assert page.status_code == 200 and b"Waiting for approval" in page.content
    until = Approval.objects.get(run=run).expires_at.strftime("%Y-%m-%d %H:%M")
    assert f"An IT approver must accept this fix before {until}" in page.content.decode()
    assert "if nobody does, it will not run." in page.content.decode()
    approvals.reject(Approval.objects.get(run=run), user=admin_user, comment="Disk is fine")
    page = client_for(employee).get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert "admin did not approve it: “Disk is fine”" in page and "Not sent:" not in page


def test_one_click_fix_needing_approval_tells_the_employee_it_waits(
    client_for: Any,
    employee: Any,
    sim_workflow: Any,
    nexthink_settings: Any,
    simulator: Any,
    enqueued: list[int],
) -> None:
    workflow = curated(sim_workflow("#clear_teams_cache", self_service=True), "Helpdesk")
    device = simulator.inventory.devices_of("employee@example.com")[0]
    signed_in = client_for(employee)
    answer = signed_in.post(
        reverse("self_service:run", args=[workflow.pk]), {"device": device.collector_uid}
    )
    run = Run.objects.get(created_by=employee)
    assert answer.status_code == 302 and run.status == RunStatus.AWAITING_APPROVAL
    page = signed_in.get(answer.url).content.decode()
    assert "is waiting for approval: it runs once someone approves it" in page
    assert 'data-testid="run-status">Waiting for approval<' in page and enqueued == []


def test_confirmation_of_a_run_needing_approval_asks_for_it_and_shows_no_template_comment(
    client_for: Any, helpdesk: Any, sim_workflow: Any
) -> None:
    workflow = curated(sim_workflow("#clear_teams_cache"))
    page = client_for(helpdesk).post(
        reverse("runs:start", args=[workflow.pk]), {"targets_text": "PC-1", "reason": "x"}
    )
    text = page.content.decode()
    assert 'data-testid="approval-needed"' in text and "{#" not in text
    assert 'data-testid="run-now">Ask for approval<' in text


def test_self_service_confirmation_says_the_fix_waits_for_approval(
    client_for: Any, employee: Any, sim_workflow: Any, nexthink_settings: Any, simulator: Any
) -> None:
    workflow = curated(sim_workflow("#clear_teams_cache", self_service=True), "Helpdesk")
    page = client_for(employee).get(reverse("self_service:confirm", args=[workflow.pk]))
    assert b'data-testid="approval-needed"' in page.content


def test_the_demo_shows_approvals_by_either_role_and_a_fix_that_fails() -> None:
    from workflows_app.management.commands.demo import DEMO_CURATION, DEMO_FAILING_FIXES

    entries = json.loads(DEMO_CURATION.read_text(encoding="utf-8"))["workflows"]
    held = {
        e["nql_id"]: (e["approver_role"], e["self_service"])
        for e in entries
        if e.get("requires_approval")
    }
    assert {role for role, _ in held.values()} == {"", "Helpdesk"}
    assert any(offered for _, offered in held.values())  # an employee's fix waits too
    offered = {e["nql_id"] for e in entries if e["self_service"]} - set(held)
    assert DEMO_FAILING_FIXES and set(DEMO_FAILING_FIXES) <= offered
    (flow,) = json.loads(DEMO_CURATION.read_text(encoding="utf-8"))["flows"]
    assert any(step["referrer"] in held for step in flow["steps"])  # its runs wait for an admin


def test_api_approve_and_reject_answer_each_case(
    helpdesk: Any, admin_user: Any, make_user: Any, held: Run, sim_workflow: Any
) -> None:
    def api_for(user: Any) -> ApiClient:
        return ApiClient(api_tokens.create_token(user=user, name="t").secret)

    admin, agent = api_for(admin_user), api_for(helpdesk)
    other_agent = api_for(make_user("helpdesk-2", Role.HELPDESK))
    url = f"/api/v1/runs/{held.pk}"
    assert agent.post(url + "/approve", {}).status_code == 403  # their own request
    assert other_agent.post(url + "/approve", {}).status_code == 403  # admins approve it
    assert admin.post("/api/v1/runs/999999/approve", {}).status_code == 404
    assert admin.post(url + "/reject", {"comment": ""}).status_code == 400
    assert agent.get(url).json()["approval"]["state"] == "pending"

    approved = admin.post(url + "/approve", {"comment": "ok"})
    assert approved.status_code == 200
    assert (approved.json()["state"], approved.json()["decided_by"]) == ("approved", "admin")
    late = admin.post(url + "/reject", {"comment": "no"})
    assert late.status_code == 409 and "Already approved by admin" in late.json()["message"]
    device = Wanted(TargetKind.DEVICE_NAME, "LAPTOP-1", 1)
    plain = run_for(helpdesk, sim_workflow("#clear_teams_cache"), [device])
    assert admin.post(f"/api/v1/runs/{plain.pk}/approve", {}).status_code == 409
    assert agent.get(url).json()["approval"]["comment"] == "ok"


def test_command_line_says_the_run_waits_for_approval(helpdesk: Any, held: Run) -> None:
    out = io.StringIO()
    call_command(
        "run_workflow",
        "#unlock_ad_account",
        "--targets",
        "-",
        "--user",
        "helpdesk",
        "--param",
        "Pin=1",
        "--reason",
        "INC9",
        stdin=io.StringIO("S-1-5-21-1004336348-1177238915-682003330-9999\n"),
        stdout=out,
    )
    said = out.getvalue()
    assert "awaiting approval" in said and "Nothing is sent until an admin" in said


def test_curation_page_and_document_carry_the_approval_choice(
    client_for: Any, admin_user: Any, sim_workflow: Any
) -> None:
    workflow = sim_workflow("#clear_teams_cache")
    form = {
        "title": "Clear Teams",
        "requires_approval": "on",
        "approver_role": "Helpdesk",
        "parameters-TOTAL_FORMS": "0",
        "parameters-INITIAL_FORMS": "0",
    }
    answer = client_for(admin_user).post(reverse("curation:edit", args=[workflow.pk]), form)
    assert answer.status_code == 302, answer.content.decode()[:3000]
    shown = client_for(admin_user).get(reverse("catalogue:detail", args=[workflow.pk]))
    assert b"Each run waits for approval by the helpdesk or an admin" in shown.content
    (entry,) = export_curation()["workflows"]
    assert (entry["requires_approval"], entry["approver_role"]) == (True, "Helpdesk")

    document = export_curation()
    document["workflows"][0]["approver_role"] = "Employee"
    with pytest.raises(Exception, match="problem"):
        import_curation(document, user=admin_user)
    document["workflows"][0].update(requires_approval=False, approver_role="")
    import_curation(document, user=admin_user)
    assert not WorkflowCuration.objects.get(workflow=workflow).requires_approval


def test_flow_requiring_approval_starts_no_step_until_approved(
    client_for: Any,
    admin_user: Any,
    helpdesk: Any,
    sim_workflow: Any,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    advances: list[int] = []
    monkeypatch.setattr(dispatch, "enqueue_flow_advance", advances.append)
    catalogue(sim_workflow)
    flow = make_flow(admin_user, "Tidy", step("clear"), step("disk", "clear"))
    flow.requires_approval = True
    flow.save()
    flow_run = run_flow(helpdesk, flow, "PC-1")
    assert flow_run.status == FlowRunStatus.AWAITING_APPROVAL
    flow_engine.advance(flow_run.pk)  # a sweep or stray message starts nothing either
    assert all(s.run_id is None for s in steps_of(flow_run).values())
    review = reverse("approvals:detail", args=[flow_run.approval.pk])
    page = client_for(admin_user).get(review).content.decode()
    assert "PC-1" in page and "the flow &#x27;Tidy&#x27; requires approval" in page
    flow_page = client_for(admin_user).get(reverse("flows:run", args=[flow_run.pk]))
    assert b'data-testid="open-approval"' in flow_page.content
    assert b"Waiting for the steps it depends on" not in flow_page.content  # for approval
    admin = ApiClient(api_tokens.create_token(user=admin_user, name="t").secret)

    with django_capture_on_commit_callbacks(execute=True):
        answer = admin.post(f"/api/v1/flow-runs/{flow_run.pk}/approve", {})
    assert answer.status_code == 200
    shown = admin.get(f"/api/v1/flow-runs/{flow_run.pk}").json()["approval"]
    assert (shown["state"], shown["decided_by"]) == ("approved", "admin")
    flow_run.refresh_from_db()
    assert flow_run.status == FlowRunStatus.IN_PROGRESS and advances == [flow_run.pk]
    flow_engine.advance(flow_run.pk)  # what the message queued on approval does
    assert steps_of(flow_run)["clear"].run.batches.get().state == BatchState.QUEUED

    rejected = run_flow(helpdesk, flow, "PC-2")
    admin.post(f"/api/v1/flow-runs/{rejected.pk}/reject", {"comment": "not today"})
    rejected.refresh_from_db()
    assert rejected.status == FlowRunStatus.REJECTED and "not today" in rejected.stop_reason
    assert {s.state for s in steps_of(rejected).values()} == {StepState.NOT_STARTED}


def test_flow_above_the_size_threshold_waits_and_editor_keeps_the_flag(
    client_for: Any, admin_user: Any, helpdesk: Any, sim_workflow: Any, settings: Any
) -> None:
    catalogue(sim_workflow)
    settings.APPROVAL_ABOVE_TARGETS = 1
    flow = make_flow(admin_user, "Tidy", step("clear"))
    assert run_flow(helpdesk, flow, "PC-1").status == FlowRunStatus.IN_PROGRESS
    assert run_flow(helpdesk, flow, "PC-1", "PC-2").status == FlowRunStatus.AWAITING_APPROVAL
    page = client_for(admin_user).get(reverse("flows:edit", args=[flow.pk]))
    assert b'data-testid="flow-requires-approval"' in page.content
    asked = client_for(helpdesk).post(
        reverse("flows:start", args=[flow.pk]), {"targets_text": "PC-1\nPC-2", "reason": "x"}
    )
    assert b'data-testid="approval-needed"' in asked.content and b"an admin" in asked.content
    (waiting,) = FlowRun.objects.filter(status=FlowRunStatus.AWAITING_APPROVAL)
    assert approvals.expire_due(now=waiting.approval.expires_at) == [waiting.approval.pk]
    waiting.refresh_from_db()
    assert waiting.status == FlowRunStatus.EXPIRED and waiting.finished_at is not None


def test_pages_awaiting_approval_poll_every_30_seconds_and_every_2_once_approved(
    client_for: Any, admin_user: Any, helpdesk: Any, held: Run, sim_workflow: Any
) -> None:
    signed_in = client_for(helpdesk)
    progress = reverse("runs:progress", args=[held.pk])
    assert 'hx-trigger="every 30s"' in signed_in.get(progress).content.decode()
    catalogue(sim_workflow)
    flow = make_flow(admin_user, "Tidy", step("clear"))
    flow.requires_approval = True
    flow.save()
    flow_run = run_flow(helpdesk, flow, "PC-1")
    flow_page = signed_in.get(reverse("flows:run", args=[flow_run.pk])).content.decode()
    assert 'hx-trigger="every 30s"' in flow_page and "Updating every 30 seconds" in flow_page
    approvals.approve(Approval.objects.get(run=held), user=admin_user, comment="")
    assert 'hx-trigger="every 2s"' in signed_in.get(progress).content.decode()
