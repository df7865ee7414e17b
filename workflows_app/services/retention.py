"""Retention: removing old final runs and old audit entries in small transactions (beat task).

A run goes once it was asked for and finished more than HISTORY_RETENTION_DAYS ago, is final,
and nothing will touch it again: no batch queued, sending or planned for a follow-up check. Its
targets go first, at most TARGETS_PER_STATEMENT per statement, each statement in its own short
transaction; then the run goes with its batches, timeline and resumptions. Every transaction
locks the runs (after their batches, the order resending takes them) and checks again that they
may go, so a run that became active meanwhile is left alone. Flow runs that ended before the
same cutoff go next, with their steps (services/retention_flows.py).

Audit entries older than AUDIT_RETENTION_DAYS go in chunks; each chunk's transaction grants
itself the trigger's purge permit (migration 0005) and withdraws it before it commits, so no
other transaction ever sees a permit. Each pass writes its RetentionSweep row first and its
counts at the end, plus one audit event.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from workflows_app.models import (
    AuditAction,
    AuditEvent,
    AuditPurgePermit,
    Batch,
    BatchState,
    Resumption,
    RetentionSweep,
    Run,
    Target,
)
from workflows_app.models.runs import FINAL_RUN_STATUSES
from workflows_app.services import audit
from workflows_app.services.retention_flows import remove_flow_runs
from workflows_app.services.retention_groups import in_groups

logger = logging.getLogger(__name__)

# Runs examined and removed per transaction, targets per DELETE, audit entries per transaction:
# small enough that no statement holds its locks for long, whatever the size of one run.
RUNS_PER_TRANSACTION = 200
TARGETS_PER_STATEMENT = 5_000
AUDIT_PER_TRANSACTION = 5_000
# Share of the task's soft time limit one pass may use; what is left waits for the next pass.
BUDGET_SHARE = 0.5


@dataclass
class RetentionResult:
    """What one pass removed, and whether it stopped at its time budget with more to remove."""

    sweep: RetentionSweep
    more: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The task's JSON-friendly result."""
        return {
            "sweep": self.sweep.pk,
            "runs": self.sweep.runs_removed,
            "targets": self.sweep.targets_removed,
            "flow_runs": self.sweep.flow_runs_removed,
            "audit": self.sweep.audit_removed,
            "more": self.more,
        }


@dataclass
class _Counts:
    runs: int = 0
    targets: int = 0
    flow_runs: int = 0
    flow_steps: int = 0
    audit: int = 0
    more: list[str] = field(default_factory=list)


def cutoffs(now: datetime | None = None) -> tuple[datetime, datetime]:
    """(runs before, audit entries before): what the settings keep, counted back from now."""
    now = now or timezone.now()
    return (
        now - timedelta(days=settings.HISTORY_RETENTION_DAYS),
        now - timedelta(days=settings.AUDIT_RETENTION_DAYS),
    )


def removable_runs(before: datetime) -> QuerySet[Run]:
    """Runs retention may remove: final, asked for and finished before `before`, and idle."""
    active = Batch.objects.filter(run_id=OuterRef("pk")).filter(
        Q(state__in=[BatchState.QUEUED, BatchState.SENDING]) | Q(next_check_at__isnull=False)
    )
    return (
        Run.objects.filter(created_at__lt=before, status__in=FINAL_RUN_STATUSES)
        .filter(Q(finished_at__isnull=True) | Q(finished_at__lt=before))
        .exclude(Exists(active))
    )


def purge(*, now: datetime | None = None, budget_seconds: float | None = None) -> RetentionResult:
    """One retention pass: old runs, then old audit entries, within a time budget."""
    runs_before, audit_before = cutoffs(now)
    if budget_seconds is None:
        budget_seconds = settings.CELERY_TASK_SOFT_TIME_LIMIT * BUDGET_SHARE
    deadline = time.monotonic() + budget_seconds
    sweep = RetentionSweep.objects.create(runs_before=runs_before, audit_before=audit_before)
    counts = _Counts()
    try:
        if _remove_runs(runs_before, deadline, counts):
            counts.more.append("runs")
        flows = remove_flow_runs(runs_before, deadline)
        counts.flow_runs, counts.flow_steps = flows.flow_runs, flows.steps
        if flows.more:
            counts.more.append("flow runs")
        if _remove_audit(audit_before, deadline, counts):
            counts.more.append("audit entries")
    except Exception as exc:
        # Recorded so the console shows it; what was removed before it stays removed.
        _finish(sweep, counts, error=f"Stopped by an error: {exc!r}")
        raise
    _finish(sweep, counts)
    return RetentionResult(sweep, more=bool(counts.more))


# --- runs ---------------------------------------------------------------------------------------


def _remove_runs(before: datetime, deadline: float, counts: _Counts) -> bool:
    """Remove removable runs, a group at a time; True when the budget ran out first."""

    def remove(group: list[int]) -> bool:
        if not _remove_targets(group, before, deadline, counts):
            return False
        with transaction.atomic():
            kept = lock_removable(group, before)
            if kept:
                # Their targets are gone: what is left is a few rows per run.
                _, removed = Run.objects.filter(pk__in=kept).delete()
                counts.runs += removed.get(Run._meta.label, 0)
                counts.targets += removed.get(Target._meta.label, 0)
        return True

    return in_groups(
        removable_runs(before), size=RUNS_PER_TRANSACTION, deadline=deadline, remove=remove
    )


def _remove_targets(group: list[int], before: datetime, deadline: float, counts: _Counts) -> bool:
    """Remove the group's targets in bounded chunks; False when the budget ran out first."""
    while True:
        if time.monotonic() >= deadline:
            return False
        with transaction.atomic():
            kept = lock_removable(group, before)
            if not kept:
                return True
            Resumption.objects.filter(run_id__in=kept).delete()  # they point at targets
            removed = delete_targets(kept)
        counts.targets += removed
        if removed < TARGETS_PER_STATEMENT:
            return True


def lock_removable(group: list[int], before: datetime) -> list[int]:
    """Lock the runs' batches, then the runs; return those that may still be removed."""
    list(
        Batch.objects.select_for_update()
        .filter(run_id__in=group)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return list(
        removable_runs(before)
        .select_for_update()
        .filter(pk__in=group)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def delete_targets(run_ids: list[int]) -> int:
    """Delete at most TARGETS_PER_STATEMENT targets of these runs in one statement."""
    table = connection.ops.quote_name(Target._meta.db_table)
    marks = ", ".join(["%s"] * len(run_ids))
    # One statement, bounded by its LIMIT; the (run, position) index finds the rows.
    sql = (
        f"DELETE FROM {table} WHERE id IN "
        f"(SELECT id FROM {table} WHERE run_id IN ({marks}) LIMIT %s)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*run_ids, TARGETS_PER_STATEMENT])
        return max(cursor.rowcount, 0)


# --- audit entries ------------------------------------------------------------------------------


def _remove_audit(before: datetime, deadline: float, counts: _Counts) -> bool:
    """Remove audit entries older than `before`, a chunk per transaction; True if out of time."""
    old = AuditEvent.objects.filter(at__lt=before)
    while True:
        if time.monotonic() >= deadline:
            return old.exists()
        with transaction.atomic():
            chunk = list(
                old.order_by("at", "id").values_list("pk", flat=True)[:AUDIT_PER_TRANSACTION]
            )
            if not chunk:
                return False
            # The trigger lets DELETE through while this transaction holds a permit row.
            permit = AuditPurgePermit.objects.create()
            removed, _ = AuditEvent.objects.filter(pk__in=chunk).delete()
            AuditPurgePermit.objects.filter(pk=permit.pk).delete()
        counts.audit += removed
        if len(chunk) < AUDIT_PER_TRANSACTION:
            return False


# --- the record ---------------------------------------------------------------------------------


def _finish(sweep: RetentionSweep, counts: _Counts, *, error: str = "") -> None:
    """Store what the pass removed and write its audit event."""
    sweep.runs_removed = counts.runs
    sweep.targets_removed = counts.targets
    sweep.audit_removed = counts.audit
    sweep.flow_runs_removed = counts.flow_runs
    sweep.error = error
    sweep.finished_at = timezone.now()
    sweep.save(
        update_fields=[
            "runs_removed",
            "targets_removed",
            "audit_removed",
            "flow_runs_removed",
            "error",
            "finished_at",
        ]
    )
    summary = (
        f"Removed {counts.runs:,} run(s) ({counts.targets:,} target(s)) from before "
        f"{sweep.runs_before:%Y-%m-%d}, {counts.flow_runs:,} flow run(s) "
        f"({counts.flow_steps:,} step(s)) that ended before then "
        f"and {counts.audit:,} audit entries from before "
        f"{sweep.audit_before:%Y-%m-%d}."
    )
    if counts.more:
        summary += f" More {' and '.join(counts.more)} are left for the next pass."
    if error:
        summary += f" {error}"
        logger.error("Retention sweep %s: %s", sweep.pk, error)
    audit.record(
        AuditAction.RETENTION,
        actor=None,
        actor_name="retention",
        summary=summary,
        obj=sweep,
        details={
            "runs": counts.runs,
            "targets": counts.targets,
            "flow_runs": counts.flow_runs,
            "flow_steps": counts.flow_steps,
            "audit_entries": counts.audit,
            "runs_before": sweep.runs_before.isoformat() if sweep.runs_before else None,
            "audit_before": sweep.audit_before.isoformat() if sweep.audit_before else None,
            "more": counts.more,
            "error": error,
        },
    )
