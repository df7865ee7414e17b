"""Sweeping: re-sending lost messages, giving up on dead workers, repairing stale run statuses.

Runs on beat (`workflows_app.tasks.sweep_batches`). Every change goes through the batch
lifecycle's moves, so a sweep racing a worker changes nothing the worker already changed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from workflows_app.models import Batch, BatchState, Run, RunStatus
from workflows_app.services import lifecycle

logger = logging.getLogger(__name__)

# How long past the task's hard time limit a batch may stay `sending` before its worker is dead.
SENDING_MARGIN_SECONDS = 60
WORKER_LOST = (
    "The worker sending this batch stopped answering, so it may or may not have run. "
    "Reconcile it with Nexthink's execution history before sending these targets again."
)


@dataclass
class SweepResult:
    """What one sweep did: batches queued again, batches given up as unknown, runs repaired."""

    requeued: list[int] = field(default_factory=list)
    unknown: list[int] = field(default_factory=list)
    # Runs whose batches were all final but whose status was not (re-derived by the sweep).
    repaired: list[int] = field(default_factory=list)


def sweep(
    *,
    now: datetime | None = None,
    grace_seconds: float | None = None,
    sending_timeout_seconds: float | None = None,
) -> SweepResult:
    """Re-send messages for queued batches nobody picked up; give up on batches stuck sending.

    A queued batch untouched for the grace period lost its message (broker restart, crash
    before publishing); a second message is harmless because the claim is conditional. A batch
    `sending` for longer than the task's hard time limit has a dead worker: it may have run.
    A run still `queued` or `in_progress` with no batch left to send has its status derived
    again (a run left so by an older release, or by a change made outside the lifecycle).
    """
    now = now or timezone.now()
    if grace_seconds is None:
        grace_seconds = getattr(settings, "BATCH_SWEEP_GRACE_SECONDS", 120)
    grace = timedelta(seconds=grace_seconds)
    if sending_timeout_seconds is None:
        hard_limit = getattr(settings, "CELERY_TASK_TIME_LIMIT", 300) or 300
        sending_timeout_seconds = hard_limit + SENDING_MARGIN_SECONDS
    result = SweepResult()

    lost = Batch.objects.filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now - grace),
        state=BatchState.QUEUED,
        updated_at__lte=now - grace,
    ).values_list("pk", flat=True)
    result.requeued = [batch_id for batch_id in list(lost) if lifecycle.resend(batch_id)]

    stuck_before = now - timedelta(seconds=sending_timeout_seconds)
    stuck = Batch.objects.filter(state=BatchState.SENDING, claimed_at__lte=stuck_before)
    for batch_id, run_id in list(stuck.values_list("pk", "run_id")):
        if lifecycle.give_up_stuck(
            batch_id, run_id, claimed_before=stuck_before, details=WORKER_LOST
        ):
            result.unknown.append(batch_id)

    result.repaired = _repair_run_statuses()
    if result.requeued or result.unknown or result.repaired:
        logger.warning(
            "Sweep: re-sent messages for batches %s, gave up on batches %s, "
            "re-derived the status of runs %s",
            result.requeued,
            result.unknown,
            result.repaired,
        )
    return result


def _repair_run_statuses() -> list[int]:
    """Re-derive runs still queued or in progress whose batches are all final and no longer
    followed up (nothing will change them any more); their ids."""
    in_flight = Batch.objects.filter(run=OuterRef("pk"), state__in=lifecycle.IN_FLIGHT_STATES)
    followed = Batch.objects.filter(run=OuterRef("pk"), next_check_at__isnull=False)
    stale = Run.objects.filter(
        status__in=(RunStatus.QUEUED, RunStatus.IN_PROGRESS, RunStatus.WAITING)
    ).filter(~Exists(in_flight), ~Exists(followed))
    repaired: list[int] = []
    for run_id in list(stale.order_by("pk").values_list("pk", flat=True)):
        # Under the run's lock: a batch changing meanwhile is counted, whichever commits first.
        run = lifecycle.refresh_run_status(run_id)
        if run is not None and run.is_final:
            repaired.append(run_id)
    return repaired
