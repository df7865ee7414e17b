"""Four-eyes approval of runs: when a run is held, deciding it once, rejection, expiry."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from workflows_app import tasks
from workflows_app.models import (
    Approval,
    ApprovalState,
    AuditAction,
    AuditEvent,
    Batch,
    BatchState,
    Outcome,
    ParameterDefinition,
    Run,
    RunEvent,
    RunEventKind,
    RunnableKind,
    RunStatus,
    Target,
    Workflow,
    WorkflowCuration,
)
from workflows_app.roles import Role
from workflows_app.services import approvals, dispatch, submission, sweeper
from workflows_app.services.runs import create_run
from workflows_app.services.secrets import decrypt_dict
from workflows_app.targets import Target as Wanted
from workflows_app.targets import TargetKind

SID = "S-1-5-21-1004336348-1177238915-682003330-{}"


@pytest.fixture(autouse=True)
def published(
    monkeypatch: pytest.MonkeyPatch, enqueued: list[int]
) -> list[tuple[int, str, dict[str, Any]]]:
    """The notification events published (on commit), recorded instead of sent to a worker
    (after `enqueued`, which drops them)."""
    events: list[tuple[int, str, dict[str, Any]]] = []
    monkeypatch.setattr(
        dispatch,
        "enqueue_notification",
        lambda *args: events.append(args),  # type: ignore[arg-type]
    )
    return events


def sids(count: int) -> list[Wanted]:
    return [Wanted(TargetKind.USER_SID, SID.format(2000 + i), i + 1) for i in range(count)]


def curated(workflow: Workflow, approver_role: str = "") -> Workflow:
    WorkflowCuration.objects.update_or_create(
        workflow=workflow,
        defaults={"requires_approval": True, "approver_role": approver_role},
    )
    return Workflow.objects.select_related("curation").get(pk=workflow.pk)


def run_for(user: Any, workflow: Workflow, targets: list[Wanted], **params: str) -> Run:
    return create_run(
        user=user,
        workflow=workflow,
        targets=targets,
        params=params,
        reason="INC0042",
        source=Run.Source.HELPDESK,
    )


def events_of(run: Run) -> list[str]:
    return list(
        RunEvent.objects.filter(run=run).order_by("at", "id").values_list("kind", flat=True)
    )


@pytest.mark.django_db
def test_curated_workflow_is_held_nothing_queued_or_sent_and_secrets_kept(
    helpdesk: Any,
    admin_user: Any,
    make_user: Any,
    sim_workflow: Any,
    enqueued: list[int],
    published: list[Any],
    nexthink_settings: Any,
    simulator: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    workflow = curated(sim_workflow("#unlock_ad_account"), approver_role="Helpdesk")
    ParameterDefinition.objects.create(workflow=workflow, name="Pin", secret=True)
    other = make_user("helpdesk-2", Role.HELPDESK)
    make_user("someone", Role.EMPLOYEE)
    with django_capture_on_commit_callbacks(execute=True):
        run = run_for(helpdesk, workflow, sids(2), Pin="4242")

    run.refresh_from_db()
    assert run.status == RunStatus.AWAITING_APPROVAL
    assert list(run.batches.values_list("state", flat=True)) == [BatchState.HELD]
    assert decrypt_dict(run.secret_params) == {"Pin": "4242"}
    approval = Approval.objects.get(run=run)
    assert (approval.state, approval.approver_role) == (ApprovalState.PENDING, "Helpdesk")
    assert approval.expires_at - approval.requested_at == timedelta(hours=24)
    assert events_of(run) == [RunEventKind.CREATED, RunEventKind.APPROVAL_REQUESTED]
    assert [e[1] for e in published] == ["run.created", "run.awaiting_approval"]
    # Helpdesk and admins may approve it, never its requester.
    assert published[1][2]["approver_ids"] == sorted([admin_user.pk, other.pk])
    assert "4242" not in str(published)
    # Nothing leaves: no message, the sweeper leaves held batches alone, a stray message too.
    swept = sweeper.sweep(now=timezone.now() + timedelta(hours=1))
    submission.send_batch(run.batches.get().pk, claim_id="stray")
    assert enqueued == [] and swept.requeued == [] and swept.repaired == []
    assert simulator.state.executions == []
    run.refresh_from_db()
    assert run.status == RunStatus.AWAITING_APPROVAL


@pytest.mark.django_db
def test_size_rule_holds_runs_above_the_threshold_only(
    helpdesk: Any, sim_workflow: Any, enqueued: list[int], settings: Any
) -> None:
    settings.APPROVAL_ABOVE_TARGETS = 2
    workflow = sim_workflow("#unlock_ad_account")
    small = run_for(helpdesk, workflow, sids(2))
    large = run_for(helpdesk, workflow, sids(3))
    assert small.status == RunStatus.QUEUED and not Approval.objects.filter(run=small).exists()
    assert large.status == RunStatus.AWAITING_APPROVAL
    approval = Approval.objects.get(run=large)
    assert approval.approver_role == "Admin" and "3 targets" in approval.why


@pytest.mark.django_db
def test_remote_action_curated_for_approval_is_held(admin_user: Any, enqueued: list[int]) -> None:
    now = timezone.now()
    action = Workflow.objects.create(
        kind=RunnableKind.REMOTE_ACTION,
        nql_id="a" * 32,
        uuid="a" * 32,
        name="Restart service",
        status=Workflow.Status.ACTIVE,
        dependency="DEVICE",
        trigger_api=True,
        first_seen=now,
        last_seen=now,
    )
    action = curated(action)
    target = Wanted(TargetKind.DEVICE_CLASSIC_UID, uuid.uuid4().hex, 1)
    run = run_for(admin_user, action, [target])
    assert run.status == RunStatus.AWAITING_APPROVAL and enqueued == []
    assert "remote action" in Approval.objects.get(run=run).why


@pytest.mark.django_db
def test_approval_releases_the_batches_once_then_they_are_sent(
    helpdesk: Any,
    admin_user: Any,
    sim_workflow: Any,
    enqueued: list[int],
    published: list[Any],
    nexthink_settings: Any,
    simulator: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    workflow = curated(sim_workflow("#unlock_ad_account"))
    ParameterDefinition.objects.create(workflow=workflow, name="Pin", secret=True)
    run = run_for(helpdesk, workflow, sids(2), Pin="4242")
    approval = Approval.objects.get(run=run)

    with django_capture_on_commit_callbacks(execute=True):
        approvals.approve(approval, user=admin_user, comment="fine", ip="10.0.0.1")

    batch = run.batches.get()
    assert enqueued == [batch.pk]
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED
    approval.refresh_from_db()
    assert (approval.state, approval.decided_by, approval.comment) == (
        ApprovalState.APPROVED,
        admin_user,
        "fine",
    )
    assert events_of(run)[-1] == RunEventKind.APPROVED
    event = AuditEvent.objects.get(action=AuditAction.RUN_APPROVED)
    assert (event.actor, event.object_id, event.ip_address) == (admin_user, str(run.pk), "10.0.0.1")
    assert published[-1][1:] == ("run.approved", {"approver": "admin", "comment": "fine"})

    submission.send_batch(batch.pk, claim_id="task-1")
    (record,) = simulator.state.executions
    assert record.params == {"Pin": "4242"}
    with pytest.raises(approvals.AlreadyDecided, match="Already approved by admin"):
        approvals.reject(approval, user=admin_user, comment="too late")


@pytest.mark.django_db
def test_rejection_ends_the_run_not_sent_and_erases_its_secrets(
    helpdesk: Any,
    admin_user: Any,
    sim_workflow: Any,
    enqueued: list[int],
    published: list[Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    workflow = curated(sim_workflow("#unlock_ad_account"))
    ParameterDefinition.objects.create(workflow=workflow, name="Pin", secret=True)
    run = run_for(helpdesk, workflow, sids(3), Pin="4242")
    approval = Approval.objects.get(run=run)

    with pytest.raises(approvals.DecisionRefused) as refused:
        approvals.reject(approval, user=admin_user, comment="  ")
    assert refused.value.status == 400
    with django_capture_on_commit_callbacks(execute=True):
        approvals.reject(approval, user=admin_user, comment="wrong ticket.")

    run.refresh_from_db()
    assert (run.status, run.secret_params, enqueued) == (RunStatus.REJECTED, "", [])
    assert run.finished_at is not None and run.outcome_counts == {Outcome.NOT_SENT: 3}
    assert set(Target.objects.filter(run=run).values_list("outcome_details", flat=True)) == {
        "Not sent: rejected by admin: wrong ticket."
    }
    assert list(run.batches.values_list("state", flat=True)) == [BatchState.FAILED]
    assert events_of(run)[-1] == RunEventKind.REJECTED
    assert AuditEvent.objects.filter(action=AuditAction.RUN_REJECTED, actor=admin_user).exists()
    assert published[-1][1:] == ("run.rejected", {"approver": "admin", "comment": "wrong ticket."})
    assert run.events.order_by("pk").last().message == "Rejected by admin: wrong ticket."


@pytest.mark.django_db
def test_unanswered_request_expires_after_its_time_only(
    helpdesk: Any,
    admin_user: Any,
    sim_workflow: Any,
    enqueued: list[int],
    published: list[Any],
    django_capture_on_commit_callbacks: Any,
    settings: Any,
) -> None:
    run = run_for(helpdesk, curated(sim_workflow("#unlock_ad_account")), sids(1))
    approval = Approval.objects.get(run=run)

    assert approvals.expire_due(now=approval.expires_at - timedelta(seconds=1)) == []
    with django_capture_on_commit_callbacks(execute=True):
        expired = approvals.expire_due(now=approval.expires_at + timedelta(seconds=1))
    assert expired == [approval.pk]

    run.refresh_from_db()
    approval.refresh_from_db()
    assert (run.status, approval.state, enqueued) == (RunStatus.EXPIRED, ApprovalState.EXPIRED, [])
    assert Target.objects.get(run=run).outcome == Outcome.NOT_SENT
    assert events_of(run)[-1] == RunEventKind.APPROVAL_EXPIRED
    assert AuditEvent.objects.filter(action=AuditAction.RUN_APPROVAL_EXPIRED).exists()
    assert published[-1][1] == "run.expired"
    assert tasks.expire_approvals_task() == []  # beat's task: nothing left to expire
    assert settings.CELERY_BEAT_SCHEDULE["expire-approvals"]["task"] == dispatch.EXPIRE_APPROVALS
    with pytest.raises(approvals.AlreadyDecided, match="expired"):
        approvals.approve(approval, user=admin_user)


@pytest.mark.django_db
def test_requester_and_weaker_roles_may_not_decide(
    helpdesk: Any, admin_user: Any, make_user: Any, sim_workflow: Any, enqueued: list[int]
) -> None:
    workflow = curated(sim_workflow("#unlock_ad_account"))  # admins approve
    other_admin = make_user("admin-2", Role.ADMIN)
    by_admin = Approval.objects.get(run=run_for(admin_user, workflow, sids(1)))
    by_helpdesk = Approval.objects.get(run=run_for(helpdesk, workflow, sids(2)))

    with pytest.raises(approvals.DecisionRefused, match="someone else must approve"):
        approvals.approve(by_admin, user=admin_user)
    with pytest.raises(approvals.DecisionRefused, match="Only an admin"):
        approvals.approve(by_admin, user=make_user("helpdesk-2", Role.HELPDESK))
    approvals.approve(by_admin, user=other_admin)
    assert list(approvals.approvers(by_helpdesk)) == [admin_user, other_admin]
    by_helpdesk.refresh_from_db()
    assert by_helpdesk.state == ApprovalState.PENDING


@pytest.mark.django_db(transaction=True)
def test_two_approvers_at_once_send_the_run_once(
    helpdesk: Any, make_user: Any, sim_workflow: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[int] = []
    lock = threading.Lock()

    def record(batch_id: int, **_: Any) -> None:
        with lock:
            sent.append(batch_id)

    monkeypatch.setattr(dispatch, "enqueue_batch", record)
    approvers = [make_user(f"admin-{i}", Role.ADMIN) for i in range(2)]
    workflow = curated(sim_workflow("#unlock_ad_account"))
    run = run_for(helpdesk, workflow, sids(10_001))  # two batches
    approval_id = Approval.objects.get(run=run).pk
    start = threading.Barrier(2)
    answers: list[str] = []

    def click(user: Any) -> None:
        try:
            approval = Approval.objects.get(pk=approval_id)
            start.wait(timeout=10)
            approvals.approve(approval, user=user, comment="ok")
            answers.append("approved")
        except approvals.AlreadyDecided as exc:
            answers.append(exc.message)
        finally:
            connection.close()

    threads = [threading.Thread(target=click, args=(user,)) for user in approvers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(answers)[0].startswith("Already approved by admin-")
    assert sorted(answers)[1] == "approved"
    batches = sorted(Batch.objects.filter(run=run).values_list("pk", flat=True))
    assert sorted(sent) == batches and len(batches) == 2
    assert set(Batch.objects.filter(run=run).values_list("state", flat=True)) == {BatchState.QUEUED}
    assert RunEvent.objects.filter(run=run, kind=RunEventKind.APPROVED).count() == 1
    assert AuditEvent.objects.filter(action=AuditAction.RUN_APPROVED).count() == 1
