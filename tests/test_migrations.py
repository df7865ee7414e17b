"""Migrations that change what rows mean are run on rows written before them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("workflows_app", "0003_target_execution_uuid_partial_index")]
AFTER = [("workflows_app", "0004_outcomes")]


def old_person_and_workflow(apps: Any) -> tuple[Any, Any]:
    """A person and a workflow, written with the models of an older schema."""
    user = apps.get_model("auth", "User").objects.create(username="old-agent")
    now = timezone.now()
    workflow = apps.get_model("workflows_app", "Workflow").objects.create(
        nql_id="#old",
        uuid="u",
        name="Old",
        status="ACTIVE",
        dependency="DEVICE",
        trigger_api=True,
        first_seen=now,
        last_seen=now,
    )
    return user, workflow


@pytest.fixture
def executor(transactional_db: None) -> Iterator[MigrationExecutor]:
    """The schema as it was before outcomes; the latest one is restored afterwards."""
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    executor.loader.build_graph()
    yield executor
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_runs_made_before_outcomes_get_the_outcomes_the_portal_knew(
    executor: MigrationExecutor,
) -> None:
    old = executor.loader.project_state(BEFORE).apps
    user, workflow = old_person_and_workflow(old)
    Run = old.get_model("workflows_app", "Run")
    Batch = old.get_model("workflows_app", "Batch")
    Target = old.get_model("workflows_app", "Target")

    def run_with(state: str, status: str, *, ids: bool) -> Any:
        run = Run.objects.create(
            created_by=user,
            role="Helpdesk",
            source="helpdesk",
            workflow=workflow,
            workflow_nql_id="#old",
            workflow_uuid="u",
            workflow_name="Old",
            dependency="DEVICE",
            api_version="v2",
            target_count=2,
            status=status,
        )
        batch = Batch.objects.create(
            run=run, number=1, state=state, api_version="v2", target_count=2, error_details="E"
        )
        for position in range(2):
            Target.objects.create(
                run=run,
                batch=batch,
                position=position,
                kind="device_name",
                value=f"PC-{state}-{position}",
                execution_uuid=f"{state}-{position}" if ids else "",
            )
        return run

    submitted = run_with("submitted", "submitted", ids=True)
    failed = run_with("failed", "failed", ids=False)
    unknown = run_with("unknown", "unknown", ids=False)

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps
    Run = new.get_model("workflows_app", "Run")
    Batch = new.get_model("workflows_app", "Batch")

    after = {run.pk: run for run in Run.objects.all()}
    assert (after[submitted.pk].status, after[submitted.pk].outcome_counts) == (
        "in_progress",
        {"pending": 2},
    )
    assert after[failed.pk].outcome_counts == {"not_sent": 2}
    assert after[unknown.pk].outcome_counts == {"unknown": 2}
    checks = dict(Batch.objects.values_list("run_id", "next_check_at"))
    assert checks[submitted.pk] is not None and checks[unknown.pk] is not None
    assert checks[failed.pk] is None


BEFORE_NOTIFICATIONS = [("workflows_app", "0014_approval_and_notification_choices")]


def test_runs_made_before_notifications_never_publish_their_submission_or_end_later(
    transactional_db: None,
) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE_NOTIFICATIONS)
    try:
        old = executor.loader.project_state(BEFORE_NOTIFICATIONS).apps
        user, workflow = old_person_and_workflow(old)
        now = timezone.now()
        Run = old.get_model("workflows_app", "Run")
        common = {
            "created_by": user,
            "role": "Helpdesk",
            "source": "helpdesk",
            "workflow": workflow,
            "workflow_nql_id": "#old",
            "workflow_uuid": "u",
            "workflow_name": "Old",
            "dependency": "DEVICE",
            "api_version": "v2",
            "target_count": 1,
        }
        ended = Run.objects.create(status="failed", finished_at=now, **common)
        running = Run.objects.create(status="in_progress", **common)
        queued = Run.objects.create(status="queued", **common)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

    from workflows_app.models import Run as NewRun

    told = dict(NewRun.objects.values_list("pk", "end_published_at"))
    submitted = dict(NewRun.objects.values_list("pk", "submitted_at"))
    assert told == {ended.pk: now, running.pk: None, queued.pk: None}
    assert submitted[ended.pk] and submitted[running.pk] and submitted[queued.pk] is None
