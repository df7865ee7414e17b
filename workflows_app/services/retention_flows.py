"""Retention of flow runs: those that ended before the cutoff go with their steps.

A flow run goes once it was started and finished before the cutoff and is final; its
FlowStepRun rows go with it (the steps' own runs follow the runs' retention). A group of flow
runs per short transaction, each group locked and checked again, so a flow run that is not
final is never removed; the pass stops at its deadline and says more are left.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Q, QuerySet

from workflows_app.models import FlowRun, FlowStepRun
from workflows_app.models.flows import FINAL_FLOW_RUN_STATUSES
from workflows_app.services.retention_groups import in_groups

# Flow runs per transaction: each has at most 50 steps, so a few thousand rows at most.
FLOW_RUNS_PER_TRANSACTION = 100


@dataclass
class FlowRunsRemoved:
    """What one pass removed, and whether its deadline came first."""

    flow_runs: int = 0
    steps: int = 0
    more: bool = False


def removable_flow_runs(before: datetime) -> QuerySet[FlowRun]:
    """Flow runs retention may remove: final, started and finished before `before`."""
    return FlowRun.objects.filter(created_at__lt=before, status__in=FINAL_FLOW_RUN_STATUSES).filter(
        Q(finished_at__isnull=True) | Q(finished_at__lt=before)
    )


def remove_flow_runs(before: datetime, deadline: float) -> FlowRunsRemoved:
    """Remove removable flow runs with their steps, a group per transaction, until `deadline`
    (a time.monotonic() value)."""
    removed = FlowRunsRemoved()

    def remove(group: list[int]) -> bool:
        with transaction.atomic():
            kept = list(
                removable_flow_runs(before)
                .select_for_update()
                .filter(pk__in=group)
                .order_by("pk")
                .values_list("pk", flat=True)
            )
            if kept:
                _, by_model = FlowRun.objects.filter(pk__in=kept).delete()
                removed.flow_runs += by_model.get(FlowRun._meta.label, 0)
                removed.steps += by_model.get(FlowStepRun._meta.label, 0)
        return True

    removed.more = in_groups(
        removable_flow_runs(before),
        size=FLOW_RUNS_PER_TRANSACTION,
        deadline=deadline,
        remove=remove,
    )
    return removed
