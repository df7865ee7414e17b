"""The audit log is append-only in the database itself; runs record their own timeline."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction

from workflows_app.models import AuditAction, AuditEvent, AuditPurgePermit, Run, RunEvent
from workflows_app.services import audit, submission
from workflows_app.services.runs import create_run
from workflows_app.targets import Target as Wanted
from workflows_app.targets import TargetKind

pytestmark = pytest.mark.django_db


def an_event() -> AuditEvent:
    return audit.record(
        AuditAction.SETTINGS_CHANGED, actor=None, summary="something changed", ip="192.0.2.7"
    )


def test_the_database_refuses_to_change_an_audit_row() -> None:
    event = an_event()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(summary="nothing happened")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("UPDATE workflows_app_audit_event SET summary = 'x'")
    event.refresh_from_db()
    assert event.summary == "something changed"


def test_the_database_refuses_to_delete_an_audit_row_without_the_purge_permit() -> None:
    event = an_event()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.filter(pk=event.pk).exists()

    with transaction.atomic():  # what the retention task does, and only it
        AuditPurgePermit.objects.create()
        AuditEvent.objects.filter(pk=event.pk).delete()
        AuditPurgePermit.objects.all().delete()
    assert not AuditEvent.objects.filter(pk=event.pk).exists()
    assert not AuditPurgePermit.objects.exists()

    other = an_event()  # the permit lived only in that transaction
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=other.pk).delete()


def test_even_with_the_purge_permit_an_audit_row_cannot_be_changed() -> None:
    event = an_event()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditPurgePermit.objects.create()
        AuditEvent.objects.filter(pk=event.pk).update(summary="rewritten")


def test_a_run_is_audited_with_who_what_and_from_where_and_starts_its_timeline(
    helpdesk: Any, sim_workflow: Any, enqueued: list[int], nexthink_settings: Any, simulator: Any
) -> None:
    run = create_run(
        user=helpdesk,
        workflow=sim_workflow("#clear_teams_cache"),
        targets=[Wanted(TargetKind.DEVICE_COLLECTOR, str(uuid.uuid4()), 1)],
        params={},
        reason="INC0042 Teams",
        source=Run.Source.HELPDESK,
        ip="198.51.100.4",
    )
    (event,) = AuditEvent.objects.filter(action=AuditAction.RUN_CREATED)
    assert (event.actor_id, event.actor_name, event.ip_address) == (
        helpdesk.pk,
        "helpdesk",
        "198.51.100.4",
    )
    assert (event.object_type, event.object_id) == ("run", str(run.pk))
    assert event.details["workflow"] == "#clear_teams_cache"
    assert event.details["reason"] == "INC0042 Teams"

    submission.send_batch(run.batches.get().pk, claim_id="task-1")
    kinds = list(RunEvent.objects.filter(run=run).values_list("kind", flat=True))
    assert kinds == ["created", "batch.claimed", "batch.submitted"]
    created = RunEvent.objects.get(run=run, kind="created")
    assert created.actor == helpdesk and "INC0042 Teams" in created.message


def test_details_lose_nul_characters_which_postgresql_json_refuses(db):
    from workflows_app.models import AuditAction, AuditEvent
    from workflows_app.services.audit import record

    event = record(
        AuditAction.RUN_CREATED,
        actor=None,
        summary="x",
        details={"path": "/api/v1/executions/\x00/resume", "list": ["a\x00b", 3], "k\x00": 1},
        actor_name="someone",
    )
    stored = AuditEvent.objects.get(pk=event.pk).details
    assert stored == {"path": "/api/v1/executions//resume", "list": ["ab", 3], "k": 1}
