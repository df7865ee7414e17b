"""Retention: old final runs and old audit entries go in bounded transactions; nothing else."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.flow_support import catalogue, make_flow, run_flow, step
from tests.test_run_views import make_run, make_workflow
from workflows_app.models import (
    AuditAction,
    AuditEvent,
    AuditPurgePermit,
    Batch,
    BatchState,
    FlowRun,
    FlowRunStatus,
    FlowStepRun,
    Outcome,
    Resumption,
    RetentionSweep,
    Run,
    RunEvent,
    RunStatus,
    Target,
    Workflow,
)
from workflows_app.services import audit, dispatch, retention, retention_flows
from workflows_app.tasks import retention_task

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


@pytest.fixture
def workflow() -> Workflow:
    return make_workflow("#clear_teams_cache")


@pytest.fixture(autouse=True)
def _queued_nowhere(enqueued: list[int]) -> None:
    """Runs made here queue no message."""


def aged(
    user: Any,
    workflow: Workflow,
    *,
    days: float,
    status: str = RunStatus.SUCCEEDED,
    state: str = BatchState.SUBMITTED,
    checked: bool = False,
    targets: int = 3,
) -> Run:
    """A run asked for (and, if final, finished) `days` ago, its batch in `state`."""
    run = make_run(user, workflow, count=targets)
    when = timezone.now() - days * DAY
    Batch.objects.filter(run=run).update(
        state=state, next_check_at=timezone.now() if checked else None
    )
    Target.objects.filter(run=run).update(outcome=Outcome.SUCCESS)
    final = status in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.PARTIAL, RunStatus.UNKNOWN)
    Run.objects.filter(pk=run.pk).update(
        status=status, created_at=when, finished_at=when if final else None
    )
    return run


def old_entry(days: float, summary: str = "old") -> AuditEvent:
    """An audit entry written `days` ago (auto_now_add set aside for this one insert)."""
    with mock.patch.object(AuditEvent._meta.get_field("at"), "auto_now_add", False):
        return AuditEvent.objects.create(
            at=timezone.now() - days * DAY,
            action=AuditAction.SIGNED_IN,
            actor_name="someone",
            summary=summary,
        )


def test_old_final_runs_go_with_their_targets_batches_timeline_and_resumptions(
    helpdesk, workflow, settings
):
    settings.HISTORY_RETENTION_DAYS = 180
    old = aged(helpdesk, workflow, days=200)
    for status in (RunStatus.FAILED, RunStatus.PARTIAL, RunStatus.UNKNOWN):
        aged(helpdesk, workflow, days=181, status=status)
    target = Target.objects.filter(run=old).first()
    assert target is not None
    Resumption.objects.create(
        run=old, target=target, execution_uuid="e", requested_by=helpdesk, source="helpdesk"
    )
    recent = aged(helpdesk, workflow, days=179)

    result = retention.purge()

    assert list(Run.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not Target.objects.exclude(run=recent).exists()
    assert not Batch.objects.exclude(run=recent).exists()
    assert not RunEvent.objects.exclude(run=recent).exists()
    assert not Resumption.objects.exists()
    sweep = result.sweep
    assert (sweep.runs_removed, sweep.targets_removed) == (4, 12)
    assert sweep.finished_at is not None and sweep.error == ""
    assert not result.more


def test_runs_that_are_not_final_or_still_followed_are_never_removed(helpdesk, workflow, settings):
    settings.HISTORY_RETENTION_DAYS = 1
    kept = [
        aged(helpdesk, workflow, days=400, status=RunStatus.QUEUED, state=BatchState.QUEUED),
        aged(helpdesk, workflow, days=400, status=RunStatus.IN_PROGRESS, state=BatchState.SENDING),
        aged(helpdesk, workflow, days=400, status=RunStatus.WAITING),
        # Final, but a batch is still queued, sending or planned for a check.
        aged(helpdesk, workflow, days=400, state=BatchState.QUEUED),
        aged(helpdesk, workflow, days=400, state=BatchState.SENDING),
        aged(helpdesk, workflow, days=400, state=BatchState.UNKNOWN, checked=True),
        aged(helpdesk, workflow, days=400, checked=True),
    ]
    # Asked for long ago but finished yesterday: as recent as its outcome.
    late = aged(helpdesk, workflow, days=400)
    Run.objects.filter(pk=late.pk).update(finished_at=timezone.now() - 0.5 * DAY)
    gone = aged(helpdesk, workflow, days=400)

    result = retention.purge()

    remaining = set(Run.objects.values_list("pk", flat=True))
    assert remaining == {run.pk for run in [*kept, late]}
    assert gone.pk not in remaining
    assert result.sweep.runs_removed == 1
    for run in kept:
        assert Target.objects.filter(run=run).count() == 3


def test_audit_entries_older_than_their_setting_go_newer_stay_and_the_trigger_still_guards(
    settings,
):
    settings.AUDIT_RETENTION_DAYS = 730
    old = [old_entry(731, f"old {i}") for i in range(3)]
    kept = old_entry(729, "kept")
    fresh = audit.record(AuditAction.SIGNED_OUT, actor=None, summary="just now")

    result = retention.purge()

    assert result.sweep.audit_removed == 3
    left = set(AuditEvent.objects.values_list("pk", flat=True))
    assert not left & {event.pk for event in old}
    assert {kept.pk, fresh.pk} <= left
    assert not AuditPurgePermit.objects.exists()  # granted and withdrawn inside each chunk
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=kept.pk).delete()
    assert AuditEvent.objects.filter(pk=kept.pk).exists()


def test_each_pass_is_recorded_and_audited_and_a_second_pass_removes_nothing(
    helpdesk, workflow, settings
):
    settings.HISTORY_RETENTION_DAYS = 30
    settings.AUDIT_RETENTION_DAYS = 60
    aged(helpdesk, workflow, days=31)
    old_entry(61)

    first = retention.purge().sweep
    second = retention.purge().sweep

    assert (first.runs_removed, first.targets_removed, first.audit_removed) == (1, 3, 1)
    assert (second.runs_removed, second.targets_removed, second.audit_removed) == (0, 0, 0)
    assert RetentionSweep.objects.count() == 2
    now = timezone.now()
    assert abs((first.runs_before - (now - 30 * DAY)).total_seconds()) < 60
    assert abs((first.audit_before - (now - 60 * DAY)).total_seconds()) < 60
    events = list(AuditEvent.objects.filter(action=AuditAction.RETENTION).order_by("id"))
    assert len(events) == 2
    assert events[0].summary.startswith("Removed 1 run(s) (3 target(s)) from before ")
    assert events[0].details["runs"] == 1 and events[0].details["audit_entries"] == 1
    assert (events[0].object_type, events[0].object_id) == ("retentionsweep", str(first.pk))
    assert events[1].details["runs"] == 0


def test_targets_go_in_bounded_statements_and_runs_in_bounded_transactions(
    helpdesk, workflow, settings, monkeypatch
):
    settings.HISTORY_RETENTION_DAYS = 1
    monkeypatch.setattr(retention, "RUNS_PER_TRANSACTION", 2)
    monkeypatch.setattr(retention, "TARGETS_PER_STATEMENT", 4)
    runs = [aged(helpdesk, workflow, days=5, targets=5) for _ in range(5)]  # 25 targets

    with CaptureQueriesContext(connection) as queries:
        result = retention.purge()

    assert result.sweep.runs_removed == 5 and result.sweep.targets_removed == 25
    assert not Run.objects.filter(pk__in=[r.pk for r in runs]).exists()
    sql = [q["sql"] for q in queries.captured_queries]
    target_table = Target._meta.db_table
    target_deletes = [s for s in sql if s.startswith(f'DELETE FROM "{target_table}"')]
    # Groups of 2, 2 and 1 runs: 10, 10 and 5 targets, at most 4 a statement (3 + 3 + 2).
    assert len(target_deletes) == 8
    assert all("LIMIT 4" in s for s in target_deletes)
    run_deletes = [s for s in sql if s.startswith(f'DELETE FROM "{Run._meta.db_table}"')]
    assert len(run_deletes) == 3
    # Every delete ran in a transaction of its own (savepoints inside the test's transaction).
    savepoints = [s for s in sql if s.startswith("SAVEPOINT")]
    assert len(savepoints) >= len(target_deletes) + len(run_deletes)


def test_audit_entries_go_in_bounded_transactions_each_with_its_own_permit(settings, monkeypatch):
    settings.AUDIT_RETENTION_DAYS = 10
    monkeypatch.setattr(retention, "AUDIT_PER_TRANSACTION", 2)
    for i in range(5):
        old_entry(11, f"old {i}")

    with CaptureQueriesContext(connection) as queries:
        result = retention.purge()

    assert result.sweep.audit_removed == 5
    sql = [q["sql"] for q in queries.captured_queries]
    permits = [s for s in sql if s.startswith('INSERT INTO "workflows_app_audit_purge_permit"')]
    deletes = [s for s in sql if s.startswith('DELETE FROM "workflows_app_audit_event"')]
    assert len(permits) == len(deletes) == 3  # 2 + 2 + 1
    assert not AuditPurgePermit.objects.exists()


def test_a_pass_that_runs_out_of_time_says_more_is_left_and_the_task_continues(
    helpdesk, workflow, settings, monkeypatch
):
    settings.HISTORY_RETENTION_DAYS = 1
    aged(helpdesk, workflow, days=5)
    queued: list[bool] = []
    monkeypatch.setattr(dispatch, "enqueue_retention", lambda: queued.append(True))
    monkeypatch.setattr(retention, "BUDGET_SHARE", 0)

    outcome = retention_task()

    assert outcome["more"] is True and outcome["runs"] == 0
    assert queued == [True]
    assert Run.objects.count() == 1
    event = AuditEvent.objects.get(action=AuditAction.RETENTION)
    assert "More runs are left for the next pass." in event.summary

    monkeypatch.setattr(retention, "BUDGET_SHARE", 0.5)
    assert retention_task()["runs"] == 1 and queued == [True]


def test_a_pass_stopped_by_an_error_records_it_for_the_console(
    helpdesk, workflow, settings, monkeypatch, client_for, admin_user
):
    settings.HISTORY_RETENTION_DAYS = 1
    aged(helpdesk, workflow, days=5)

    def broken(run_ids: list[int]) -> int:
        raise DatabaseError("disk full")

    monkeypatch.setattr(retention, "delete_targets", broken)
    with pytest.raises(DatabaseError):
        retention.purge()

    sweep = RetentionSweep.objects.get()
    assert sweep.error == "Stopped by an error: DatabaseError('disk full')"
    assert Run.objects.count() == 1 and Target.objects.count() == 3  # rolled back, kept whole
    page = client_for(admin_user).get(reverse("console:home")).content.decode()
    assert 'data-testid="retention-error"' in page and "disk full" in page


def test_the_console_shows_what_retention_last_removed_and_when(
    client_for, admin_user, helpdesk, workflow, settings
):
    settings.HISTORY_RETENTION_DAYS = 90
    page = client_for(admin_user).get(reverse("console:home")).content.decode()
    assert "Nothing has been removed yet" in page
    assert "Finished runs are kept 90 days, audit entries 730 days" in page

    aged(helpdesk, workflow, days=100)
    retention.purge()

    page = client_for(admin_user).get(reverse("console:home")).content.decode()
    sweep = RetentionSweep.objects.get()
    assert f"Last removal {timezone.localtime(sweep.started_at):%Y-%m-%d %H:%M} (UTC):" in page
    assert "1 run (3 targets) from before" in page
    assert "0 audit entries from before" in page
    assert reverse("console:audit") in page and reverse("people:list") in page


def test_the_beat_schedule_runs_the_retention_task_by_its_registered_name(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["retention"]
    assert entry["task"] == dispatch.RETENTION == retention_task.name
    assert entry["schedule"] == settings.RETENTION_SWEEP_HOURS * 3600


def test_a_run_that_becomes_active_while_the_pass_works_on_it_is_left_whole(
    helpdesk, workflow, settings, monkeypatch
):
    """An admin re-sends a batch of an old run between the pass's choice and its deletes."""
    settings.HISTORY_RETENTION_DAYS = 1
    revived = aged(helpdesk, workflow, days=5)
    gone = aged(helpdesk, workflow, days=5)
    choose = retention.lock_removable

    def resend_first(group: list[int], before: Any) -> list[int]:
        Batch.objects.filter(run=revived).update(state=BatchState.QUEUED)
        Run.objects.filter(pk=revived.pk).update(status=RunStatus.QUEUED, finished_at=None)
        return choose(group, before)

    monkeypatch.setattr(retention, "lock_removable", resend_first)
    result = retention.purge()

    assert list(Run.objects.values_list("pk", flat=True)) == [revived.pk]
    assert Target.objects.filter(run=revived).count() == 3
    assert not Run.objects.filter(pk=gone.pk).exists()
    assert result.sweep.runs_removed == 1


def aged_flow_run(user: Any, flow: Any, *, days: float, status: str) -> FlowRun:
    """A flow run started (and, if final, ended) `days` ago, in `status`."""
    flow_run = run_flow(user, flow, "PC-1", "PC-2")
    when = timezone.now() - days * DAY
    final = status != FlowRunStatus.IN_PROGRESS
    FlowRun.objects.filter(pk=flow_run.pk).update(
        status=status, created_at=when, finished_at=when if final else None
    )
    return flow_run


def test_old_ended_flow_runs_go_with_their_steps_recent_and_unfinished_ones_stay(
    admin_user, helpdesk, sim_workflow, settings
):
    settings.HISTORY_RETENTION_DAYS = 30
    catalogue(sim_workflow)
    flow = make_flow(admin_user, "Fix", step("clear"), step("disk", "clear"))
    gone = [
        aged_flow_run(helpdesk, flow, days=31, status=status)
        for status in (FlowRunStatus.SUCCEEDED, FlowRunStatus.FAILED, FlowRunStatus.STOPPED)
    ]
    recent = aged_flow_run(helpdesk, flow, days=29, status=FlowRunStatus.SUCCEEDED)
    unfinished = aged_flow_run(helpdesk, flow, days=400, status=FlowRunStatus.IN_PROGRESS)
    late = aged_flow_run(helpdesk, flow, days=400, status=FlowRunStatus.PARTIAL)
    FlowRun.objects.filter(pk=late.pk).update(finished_at=timezone.now() - 2 * DAY)
    step_runs = set(
        FlowStepRun.objects.filter(flow_run__in=gone).values_list("run_id", flat=True)
    ) - {None}

    result = retention.purge()

    assert set(FlowRun.objects.values_list("pk", flat=True)) == {
        recent.pk,
        unfinished.pk,
        late.pk,
    }
    assert not FlowStepRun.objects.filter(flow_run_id__in=[f.pk for f in gone]).exists()
    for kept in (recent, unfinished, late):
        assert FlowStepRun.objects.filter(flow_run=kept).count() == 2
    # The steps' runs are recent: they follow the runs' own retention.
    assert step_runs and set(Run.objects.values_list("pk", flat=True)) >= step_runs
    assert result.sweep.flow_runs_removed == 3 and result.as_dict()["flow_runs"] == 3
    assert not result.more
    event = AuditEvent.objects.get(action=AuditAction.RETENTION)
    assert (event.details["flow_runs"], event.details["flow_steps"]) == (3, 6)
    assert "3 flow run(s) (6 step(s))" in event.summary
    assert retention.purge().sweep.flow_runs_removed == 0


def test_flow_runs_go_in_bounded_transactions_and_stop_at_the_budget(
    admin_user, helpdesk, sim_workflow, settings, monkeypatch
):
    settings.HISTORY_RETENTION_DAYS = 30
    catalogue(sim_workflow)
    flow = make_flow(admin_user, "Fix", step("clear"))
    for _ in range(3):
        aged_flow_run(helpdesk, flow, days=31, status=FlowRunStatus.SUCCEEDED)
    monkeypatch.setattr(retention_flows, "FLOW_RUNS_PER_TRANSACTION", 2)

    assert retention.purge(budget_seconds=0).more
    assert FlowRun.objects.count() == 3

    with CaptureQueriesContext(connection) as seen:
        result = retention.purge()
    assert result.sweep.flow_runs_removed == 3 and not FlowRun.objects.exists()
    locks = [q["sql"] for q in seen.captured_queries if "FOR UPDATE" in q["sql"]]
    assert sum('"workflows_app_flowrun"' in sql.split("WHERE")[0] for sql in locks) == 2


def test_the_console_counts_the_flow_runs_retention_removed(
    client_for, admin_user, helpdesk, sim_workflow, settings
):
    settings.HISTORY_RETENTION_DAYS = 30
    catalogue(sim_workflow)
    flow = make_flow(admin_user, "Fix", step("clear"))
    aged_flow_run(helpdesk, flow, days=31, status=FlowRunStatus.SUCCEEDED)

    retention.purge()

    page = client_for(admin_user).get(reverse("console:home")).content.decode()
    assert "1 flow run that ended before then," in page
