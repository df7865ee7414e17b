"""Creating a run: what is written in one transaction, what is refused, and the run's status."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from workflows_app.models import (
    Batch,
    BatchState,
    Outcome,
    ParameterDefinition,
    PortalSettings,
    Run,
    RunStatus,
    Target,
)
from workflows_app.services import submission
from workflows_app.services.lifecycle import derive_status, recount, refresh_run_status
from workflows_app.services.params import MASK
from workflows_app.services.runs import RunRefused, create_run
from workflows_app.services.secrets import decrypt_dict
from workflows_app.targets import Target as Wanted
from workflows_app.targets import TargetKind, parse_text

pytestmark = pytest.mark.django_db
SID = "S-1-5-21-1004336348-1177238915-682003330-{}"


def collectors(count: int) -> list[Wanted]:
    return [Wanted(TargetKind.DEVICE_COLLECTOR, str(uuid.uuid4()), i + 1) for i in range(count)]


def sids(count: int) -> list[Wanted]:
    return [Wanted(TargetKind.USER_SID, SID.format(2000 + i), i + 1) for i in range(count)]


def run_for(user: Any, workflow: Any, targets: list[Wanted], **extra: Any) -> Run:
    fields: dict[str, Any] = {
        "params": {},
        "reason": "ticket INC0001",
        "source": Run.Source.HELPDESK,
        **extra,
    }
    return create_run(user=user, workflow=workflow, targets=targets, **fields)


def test_run_batches_and_targets_are_written_in_bulk(
    helpdesk: Any, sim_workflow: Any, enqueued: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    workflow = sim_workflow("#repair_outlook_profile")
    targets = collectors(10_001) + sids(3)
    with (
        CaptureQueriesContext(connection) as queries,
        django_capture_on_commit_callbacks(execute=True),
    ):
        run = run_for(helpdesk, workflow, targets, duplicate_count=7)

    assert len(queries) < 30  # 10,004 targets in a few multi-row INSERTs
    run.refresh_from_db()
    assert (run.role, run.source, run.status) == ("Helpdesk", "helpdesk", RunStatus.QUEUED)
    assert (run.workflow_nql_id, run.workflow_uuid) == (workflow.nql_id, workflow.uuid)
    assert (run.workflow_name, run.dependency) == (workflow.name, "USER_AND_DEVICE")
    assert (run.target_count, run.duplicate_count, run.api_version) == (10_004, 7, "v1")
    assert run.reason == "ticket INC0001" and len(run.target_fingerprint) == 64
    batches = list(run.batches.order_by("number"))
    assert [(b.number, b.target_count, b.state) for b in batches] == [
        (1, 10_003, BatchState.QUEUED),
        (2, 1, BatchState.QUEUED),
    ]
    assert enqueued == [b.pk for b in batches]
    rows = list(Target.objects.filter(run=run).order_by("position"))
    assert [(r.kind, r.value) for r in rows] == [(t.kind.value, t.value) for t in targets]
    assert [r.position for r in rows] == list(range(10_004))
    assert rows[10_000].batch_id == batches[1].pk and rows[10_001].batch_id == batches[0].pk


def test_nothing_is_queued_before_the_transaction_commits(
    helpdesk: Any, sim_workflow: Any, enqueued: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run_for(helpdesk, sim_workflow("#clear_teams_cache"), collectors(2))
    # The batch's message and the run.created notification, both once the run is committed.
    assert enqueued == [] and len(callbacks) == 2


@pytest.mark.parametrize(
    ("lines", "version"),
    [
        ("3fa85f64-5717-4562-b3fc-2c963f66afa6\nS-1-5-21-1-2-3", "v1"),
        ("3fa85f64-5717-4562-b3fc-2c963f66afa6\nPC-0042\nS-1-5-21-1-2-3", "v2"),
        ("3fa85f64-5717-4562-b3fc-2c963f66afa6\njane.doe@example.com", "v2"),
    ],
)
def test_api_version_follows_the_targets(
    admin_user: Any, sim_workflow: Any, enqueued: list[int], lines: str, version: str
) -> None:
    targets = parse_text(lines).targets
    run = run_for(admin_user, sim_workflow("#repair_outlook_profile"), targets)
    assert run.api_version == version
    assert set(run.batches.values_list("api_version", flat=True)) == {version}


def test_secret_params_are_encrypted_and_masked(
    helpdesk: Any, sim_workflow: Any, enqueued: list[int]
) -> None:
    workflow = sim_workflow("#unlock_ad_account")
    ParameterDefinition.objects.create(workflow=workflow, name="Reason", required=True)
    ParameterDefinition.objects.create(workflow=workflow, name="Pin", secret=True)
    run = run_for(helpdesk, workflow, sids(1), params={"Reason": "locked", "Pin": "4242"})
    assert run.params == {"Reason": "locked", "Pin": MASK}
    assert "4242" not in run.secret_params
    assert decrypt_dict(run.secret_params) == {"Pin": "4242"}


def test_secrets_reach_nexthink_and_are_then_erased(
    helpdesk: Any, sim_workflow: Any, enqueued: list[int], nexthink_settings: Any, simulator: Any
) -> None:
    workflow = sim_workflow("#unlock_ad_account")
    ParameterDefinition.objects.create(workflow=workflow, name="Reason", default="helpdesk")
    ParameterDefinition.objects.create(workflow=workflow, name="Pin", secret=True)
    run = run_for(helpdesk, workflow, sids(2), params={"Pin": "4242"})

    submission.send_batch(run.batches.get().pk, claim_id="task-1")

    (record,) = simulator.state.executions
    assert record.params == {"Reason": "helpdesk", "Pin": "4242"}
    run.refresh_from_db()
    assert (run.status, run.secret_params) == (RunStatus.IN_PROGRESS, "")
    assert run.outcome_counts == {"pending": 2}
    assert run.params == {"Reason": "helpdesk", "Pin": MASK}


def test_invalid_params_are_refused(helpdesk: Any, sim_workflow: Any) -> None:
    workflow = sim_workflow("#unlock_ad_account")
    ParameterDefinition.objects.create(workflow=workflow, name="Reason", required=True)
    with pytest.raises(RunRefused, match="Reason: Reason is required"):
        run_for(helpdesk, workflow, sids(1), params={"Other": "x"})
    assert not Run.objects.exists()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"status": "INACTIVE"}, "inactive"),
        ({"removed_at": timezone.now()}, "no longer exists"),
        ({"trigger_api": False}, "API trigger"),
    ],
)
def test_workflow_the_portal_cannot_run_is_refused(
    admin_user: Any, sim_workflow: Any, changes: dict[str, Any], message: str
) -> None:
    workflow = sim_workflow("#clear_teams_cache", **changes)
    with pytest.raises(RunRefused, match=message):
        run_for(admin_user, workflow, collectors(1))
    assert not Run.objects.exists() and not Target.objects.exists()


def test_workflow_without_targets_is_refused(admin_user: Any, sim_workflow: Any) -> None:
    with pytest.raises(RunRefused, match="at least one device or user"):
        run_for(admin_user, sim_workflow("#onboard_new_joiner"), [])


@pytest.mark.parametrize(
    ("nql_id", "targets", "message"),
    [
        ("#clear_teams_cache", [], "needs at least one device"),
        ("#clear_teams_cache", sids(1), "devices only"),
        ("#unlock_ad_account", collectors(1), "users only"),
        ("#repair_outlook_profile", collectors(1), "needs at least one user"),
    ],
)
def test_targets_must_suit_the_dependency(
    admin_user: Any, sim_workflow: Any, nql_id: str, targets: list[Wanted], message: str
) -> None:
    with pytest.raises(RunRefused, match=message):
        run_for(admin_user, sim_workflow(nql_id), targets)


def test_more_than_100000_targets_are_refused(admin_user: Any, sim_workflow: Any) -> None:
    many = [Wanted(TargetKind.DEVICE_NAME, f"PC-{i}", i) for i in range(100_001)]
    with pytest.raises(RunRefused, match="at most 100,000"):
        run_for(admin_user, sim_workflow("#clear_teams_cache"), many)


def test_helpdesk_is_refused_when_curation_leaves_it_out(helpdesk: Any, sim_workflow: Any) -> None:
    workflow = sim_workflow("#clear_teams_cache", allowed_roles=["Admin"])
    with pytest.raises(RunRefused):
        run_for(helpdesk, workflow, collectors(1))


def test_helpdesk_may_run_when_curation_names_it(
    helpdesk: Any, sim_workflow: Any, enqueued: list[int]
) -> None:
    workflow = sim_workflow("#clear_teams_cache", allowed_roles=["Helpdesk", "Admin"])
    assert run_for(helpdesk, workflow, collectors(1)).pk


def test_admin_may_run_whatever_the_curation_says(
    admin_user: Any, sim_workflow: Any, enqueued: list[int]
) -> None:
    workflow = sim_workflow("#clear_teams_cache", allowed_roles=["Helpdesk"])
    assert run_for(admin_user, workflow, collectors(1)).role == "Admin"


def test_employee_may_not_run_a_workflow_not_offered_for_self_service(
    employee: Any, sim_workflow: Any
) -> None:
    with pytest.raises(RunRefused):
        run_for(
            employee,
            sim_workflow("#clear_teams_cache"),
            collectors(1),
            source=Run.Source.SELF_SERVICE,
        )


def test_employee_runs_self_service_workflows_only_from_self_service(
    employee: Any, sim_workflow: Any, enqueued: list[int]
) -> None:
    workflow = sim_workflow("#clear_teams_cache", self_service=True)
    with pytest.raises(RunRefused, match="self-service page"):
        run_for(employee, workflow, collectors(1), source=Run.Source.CLI)
    run = run_for(employee, workflow, collectors(1), source=Run.Source.SELF_SERVICE)
    assert run.role == "Employee"


def test_user_without_role_is_refused(make_user: Any, sim_workflow: Any) -> None:
    with pytest.raises(RunRefused):
        run_for(make_user("nobody", None), sim_workflow("#clear_teams_cache"), collectors(1))


def test_same_run_twice_within_the_window_is_refused(
    helpdesk: Any, sim_workflow: Any, enqueued: list[int]
) -> None:
    workflow = sim_workflow("#clear_teams_cache")
    targets = collectors(3)
    first = run_for(helpdesk, workflow, targets)
    with pytest.raises(RunRefused) as refused:
        run_for(helpdesk, workflow, list(reversed(targets)))
    assert refused.value.existing_run == first
    assert run_for(helpdesk, workflow, targets, allow_duplicate=True).pk != first.pk
    assert run_for(helpdesk, workflow, targets[:2]).pk  # other targets: another run


def test_same_run_after_the_window_is_allowed(
    helpdesk: Any, sim_workflow: Any, enqueued: list[int]
) -> None:
    workflow = sim_workflow("#clear_teams_cache")
    targets = collectors(1)
    first = run_for(helpdesk, workflow, targets)
    minutes = PortalSettings.load().duplicate_window_minutes
    Run.objects.filter(pk=first.pk).update(
        created_at=timezone.now() - timedelta(minutes=minutes + 1)
    )
    assert run_for(helpdesk, workflow, targets).pk != first.pk


@pytest.mark.parametrize(
    ("states", "outcomes", "attempted", "status"),
    [
        (["queued", "queued"], {}, 0, RunStatus.QUEUED),
        (["queued", "queued"], {}, 1, RunStatus.IN_PROGRESS),
        (["sending", "queued"], {}, 1, RunStatus.IN_PROGRESS),
        (["submitted", "queued"], {"pending": 3}, 1, RunStatus.IN_PROGRESS),
        (["submitted", "submitted"], {"pending": 2}, 2, RunStatus.IN_PROGRESS),
        (["submitted"], {"running": 1, "success": 1}, 1, RunStatus.IN_PROGRESS),
        (["submitted"], {"waiting": 1, "success": 1}, 1, RunStatus.WAITING),
        (["submitted", "submitted"], {"success": 2}, 2, RunStatus.SUCCEEDED),
        (["submitted"], {"failure": 2}, 1, RunStatus.FAILED),
        (["failed", "failed"], {"not_sent": 2}, 2, RunStatus.FAILED),
        (["submitted", "failed"], {"success": 1, "not_sent": 1}, 2, RunStatus.PARTIAL),
        (["submitted", "unknown"], {"success": 1, "unknown": 1}, 2, RunStatus.PARTIAL),
        (["unknown", "unknown"], {"unknown": 2}, 2, RunStatus.UNKNOWN),
        (["failed", "unknown"], {"not_sent": 1, "unknown": 1}, 2, RunStatus.UNKNOWN),
        (["reconciled"], {"success": 1, "not_sent": 1}, 1, RunStatus.PARTIAL),
    ],
)
def test_run_status_follows_its_batches_and_outcomes(
    states: list[str], outcomes: dict[str, int], attempted: int, status: str
) -> None:
    counts: dict[str, int] = {}
    for state in states:
        counts[state] = counts.get(state, 0) + 1
    assert derive_status(counts, outcomes, attempted=attempted) == status


def test_a_run_whose_unknown_batch_is_being_reconciled_is_still_in_progress() -> None:
    batches, outcomes = {"unknown": 1, "submitted": 1}, {"unknown": 3, "success": 3}
    assert derive_status(batches, outcomes, attempted=2, reconciling=1) == RunStatus.IN_PROGRESS
    assert derive_status(batches, outcomes, attempted=2, reconciling=0) == RunStatus.PARTIAL


def test_final_status_sets_finished_at_and_erases_secrets(
    helpdesk: Any, sim_workflow: Any, enqueued: list[int]
) -> None:
    workflow = sim_workflow("#clear_teams_cache")
    ParameterDefinition.objects.create(workflow=workflow, name="Key", secret=True)
    run = run_for(helpdesk, workflow, collectors(10_001), params={"Key": "k"})
    first, second = run.batches.order_by("number")
    Batch.objects.filter(pk=first.pk).update(state=BatchState.SUBMITTED, attempts=1)
    Target.objects.filter(batch=first).update(outcome=Outcome.SUCCESS)
    recount(first.pk)
    run = refresh_run_status(run.pk)
    assert (run.status, run.finished_at, bool(run.secret_params)) == (
        RunStatus.IN_PROGRESS,
        None,
        True,
    )
    Batch.objects.filter(pk=second.pk).update(state=BatchState.FAILED, attempts=1)
    Target.objects.filter(batch=second).update(outcome=Outcome.NOT_SENT)
    recount(second.pk)
    run = refresh_run_status(run.pk)
    assert run.status == RunStatus.PARTIAL
    assert run.outcome_counts == {"success": 10_000, "not_sent": 1}
    assert run.finished_at is not None and run.secret_params == ""
