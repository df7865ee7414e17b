"""Sending one batch to Nexthink exactly once, and sweeping batches whose message was lost.

A batch is claimed with a conditional UPDATE (queued -> sending) before the call out, and its
outcome recorded after. Nexthink has no idempotency key, so a batch that may have reached it
(a redelivered message, a read timeout, a worker that died mid-call) ends `unknown` and is
never sent again automatically.

Every change of a batch's state re-derives its run's status in the same transaction, so a
worker dying between the two cannot leave a run `in_progress` for ever.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone
from pydantic import ValidationError

from workflows_app import targets as targets_mod
from workflows_app.models import Batch, BatchState, Run, RunStatus, Target
from workflows_app.nexthink import errors as nx
from workflows_app.nexthink.client import NexthinkClient
from workflows_app.nexthink.models import (
    ExecutionRequest,
    ExecutionResponse,
    ExternalIdsExecutionRequest,
)
from workflows_app.nexthink_factory import get_client
from workflows_app.services.params import MASK
from workflows_app.services.runs import refresh_run_status
from workflows_app.services.secrets import SecretsUnreadable, decrypt_dict

logger = logging.getLogger(__name__)

# A message may arrive a little before next_attempt_at when clocks disagree between hosts.
CLOCK_TOLERANCE = timedelta(seconds=2)
# Rate limiting is Nexthink asking us to wait, not failing: allow many more tries than for 5xx.
RATE_LIMITED_MAX_ATTEMPTS = 20
# How long past the task's hard time limit a batch may stay `sending` before its worker is dead.
SENDING_MARGIN_SECONDS = 60
UPDATE_BATCH = 1_000


class _Outcome(Exception):
    """Internal: the batch ends before any call out (nothing was sent)."""

    def __init__(self, code: str, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


def send_batch(batch_id: int, *, claim_id: str) -> None:
    """Claim a queued batch for this task, send it once, and record what Nexthink answered."""
    if not _claim(batch_id, claim_id):
        _handle_unclaimable(batch_id, claim_id)
        return
    batch = Batch.objects.select_related("run").get(pk=batch_id)
    try:
        request, target_ids = _build_request(batch)
        client = _client()
    except _Outcome as exc:
        _finish(batch, claim_id, BatchState.FAILED, exc.code, exc.details)
        return

    try:
        if isinstance(request, ExecutionRequest):
            response = client.execute_v1(request)
        else:
            response = client.execute_v2(request)
    except nx.RateLimited as exc:
        _retry_rate_limited(batch, claim_id, exc)
    except nx.Unavailable as exc:
        _retry_unavailable(batch, claim_id, exc)
    except nx.BadRequest as exc:
        _finish(batch, claim_id, BatchState.FAILED, exc.code or "BAD_REQUEST", exc.message)
    except nx.Forbidden as exc:
        _finish(batch, claim_id, BatchState.FAILED, exc.code or "FORBIDDEN", exc.message)
    except nx.Unauthorized as exc:
        details = f"{exc.message} The portal's Nexthink API credentials need fixing by an admin."
        _finish(batch, claim_id, BatchState.FAILED, "UNAUTHORIZED", details)
    except (nx.OutcomeUnknown, nx.InvalidResponse) as exc:
        code = "OUTCOME_UNKNOWN" if isinstance(exc, nx.OutcomeUnknown) else "INVALID_RESPONSE"
        _finish(batch, claim_id, BatchState.UNKNOWN, code, exc.message)
    except nx.NexthinkError as exc:
        # A Nexthink error this code does not know: it may have run, so do not send it again.
        _finish(batch, claim_id, BatchState.UNKNOWN, "NEXTHINK_ERROR", exc.message)
    except SoftTimeLimitExceeded:
        _finish(
            batch,
            claim_id,
            BatchState.UNKNOWN,
            "TIME_LIMIT",
            "The task ran out of time while talking to Nexthink; the request may have run.",
        )
    else:
        _record_success(batch, claim_id, target_ids, response)
    finally:
        client.close()


def _client() -> NexthinkClient:
    """The configured client; a configuration error fails the batch before anything is sent."""
    try:
        return get_client()
    except ValidationError as exc:
        raise _Outcome(
            "CLIENT_CONFIG",
            f"The portal's Nexthink settings are invalid ({exc.error_count()} problem(s)); "
            "an admin must fix NEXTHINK_* settings.",
        ) from None


def _claim(batch_id: int, claim_id: str) -> bool:
    """Mark the batch as being sent by this task, if it is queued and due; True on success.

    The run's status (queued -> in progress) is refreshed in the same transaction.
    """
    now = timezone.now()
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now + CLOCK_TOLERANCE)
    with transaction.atomic():
        claimed = Batch.objects.filter(due, pk=batch_id, state=BatchState.QUEUED).update(
            state=BatchState.SENDING,
            claim_id=claim_id,
            claimed_at=now,
            attempts=F("attempts") + 1,
            updated_at=now,
        )
        if claimed:
            run_id = Batch.objects.filter(pk=batch_id).values_list("run_id", flat=True).get()
            refresh_run_status(run_id)
    return claimed == 1


def _handle_unclaimable(batch_id: int, claim_id: str) -> None:
    """A message for a batch this task cannot claim: a redelivery, a duplicate or an early one."""
    batch = Batch.objects.filter(pk=batch_id).first()
    if batch is None:
        logger.warning("Batch %s no longer exists; message %s dropped", batch_id, claim_id)
        return
    if batch.state == BatchState.SENDING and batch.claim_id == claim_id:
        # The broker redelivered the very message that claimed the batch: its worker died
        # during the call, so the request may have reached Nexthink. Never send it again.
        logger.warning("Batch %s redelivered to %s mid-send; marking unknown", batch_id, claim_id)
        _finish(
            batch,
            claim_id,
            BatchState.UNKNOWN,
            "REDELIVERED",
            "The message sending this batch was delivered again (its worker died or lost the "
            "broker) before Nexthink's answer was recorded, so it may or may not have run. "
            "Reconcile it with Nexthink's execution history before sending these targets again.",
        )
        return
    logger.info(
        "Batch %s is %s (claim %s); message %s has nothing to do",
        batch_id,
        batch.state,
        batch.claim_id or "-",
        claim_id,
    )


def _build_request(
    batch: Batch,
) -> tuple[ExecutionRequest | ExternalIdsExecutionRequest, list[int]]:
    """The execute request for the batch, and its target ids in the order they are sent.

    Devices come first, then users, each in the order given: Nexthink answers one execution
    UUID per target in that order.
    """
    rows = (
        Target.objects.filter(batch=batch).order_by("position").values_list("id", "kind", "value")
    )
    stored = [(pk, targets_mod.from_row(kind, value)) for pk, kind, value in rows]
    ordered = sorted(stored, key=lambda row: row[1].is_user)  # stable: devices, then users
    sent = [t for _, t in ordered]
    params = _params(batch.run)
    version: targets_mod.ApiVersion = "v1" if batch.api_version == "v1" else "v2"
    try:
        request = targets_mod.execution_request(batch.run.workflow_nql_id, sent, params, version)
    except (ValidationError, ValueError) as exc:
        raise _Outcome("INVALID_TARGETS", f"The request could not be built: {exc}") from None
    return request, [pk for pk, _ in ordered]


def _params(run: Run) -> dict[str, str] | None:
    """The values to send: stored ones with each masked secret replaced by its decrypted value."""
    try:
        secrets = decrypt_dict(run.secret_params)
    except SecretsUnreadable as exc:
        raise _Outcome("SECRETS_UNREADABLE", str(exc)) from None
    values = {**run.params, **secrets}
    missing = sorted(k for k, v in values.items() if v == MASK)
    if missing:
        raise _Outcome(
            "SECRETS_LOST",
            f"The secret parameter(s) {', '.join(missing)} are no longer stored; start a new run.",
        )
    return {str(k): str(v) for k, v in values.items()} or None


def _record_success(
    batch: Batch, claim_id: str, target_ids: list[int], response: ExecutionResponse
) -> None:
    """Store the request UUID and each target's execution UUID (in the order they were sent)."""
    uuids = response.executionsUuids
    note = ""
    if len(uuids) != len(target_ids):
        note = (
            f"Nexthink returned {len(uuids)} execution ids for {len(target_ids)} targets; "
            f"the first {min(len(uuids), len(target_ids))} were matched in the order sent."
        )
    now = timezone.now()
    with transaction.atomic():
        # Even if the sweeper gave up on it meanwhile, Nexthink's answer is the truth.
        updated = Batch.objects.filter(
            pk=batch.pk, claim_id=claim_id, state__in=(BatchState.SENDING, BatchState.UNKNOWN)
        ).update(
            state=BatchState.SUBMITTED,
            request_uuid=response.requestUuid,
            error_code="",
            error_details=note,
            next_attempt_at=None,
            finished_at=now,
            updated_at=now,
        )
        if updated:
            rows = [
                Target(pk=pk, execution_uuid=uuid)
                for pk, uuid in zip(target_ids, uuids, strict=False)
            ]
            Target.objects.bulk_update(rows, ["execution_uuid"], batch_size=UPDATE_BATCH)
        else:
            logger.error("Batch %s was taken from claim %s during the call", batch.pk, claim_id)
        # Same transaction: the batch's outcome and its run's status commit together.
        refresh_run_status(batch.run_id)


def _finish(batch: Batch, claim_id: str, state: BatchState, code: str, details: str) -> None:
    """Record a final outcome of this task's claim (nothing if the claim was lost meanwhile)."""
    now = timezone.now()
    with transaction.atomic():
        Batch.objects.filter(pk=batch.pk, state=BatchState.SENDING, claim_id=claim_id).update(
            state=state,
            error_code=code[:100],
            error_details=details,
            next_attempt_at=None,
            finished_at=now,
            updated_at=now,
        )
        refresh_run_status(batch.run_id)


def _retry_rate_limited(batch: Batch, claim_id: str, exc: nx.RateLimited) -> None:
    """Queue the batch again once Nexthink's Retry-After has passed (fail after many tries)."""
    cap = getattr(settings, "NEXTHINK_SUBMIT_MAX_RATE_LIMITED", RATE_LIMITED_MAX_ATTEMPTS)
    attempts = _attempts(batch)
    if attempts >= cap:
        details = f"{exc.message} Gave up after {attempts} attempts."
        _finish(batch, claim_id, BatchState.FAILED, "RATE_LIMITED", details)
        return
    if exc.retry_after is not None:
        delay = exc.retry_after + random.uniform(0, min(1.0, exc.retry_after / 10 + 0.1))
    else:
        delay = backoff_delay(attempts)
    _requeue(batch, claim_id, delay, "RATE_LIMITED", exc.message)


def _retry_unavailable(batch: Batch, claim_id: str, exc: nx.Unavailable) -> None:
    """Queue the batch again with exponential backoff, or fail it after the last attempt."""
    max_attempts = getattr(settings, "NEXTHINK_SUBMIT_MAX_ATTEMPTS", 5)
    attempts = _attempts(batch)
    if attempts >= max_attempts:
        details = f"{exc.message} Gave up after {attempts} attempts."
        _finish(batch, claim_id, BatchState.FAILED, "UNAVAILABLE", details)
        return
    _requeue(batch, claim_id, backoff_delay(attempts), "UNAVAILABLE", exc.message)


def _attempts(batch: Batch) -> int:
    """The batch's attempt count as stored (the claim incremented it in SQL)."""
    return Batch.objects.filter(pk=batch.pk).values_list("attempts", flat=True).first() or 0


def backoff_delay(attempts: int) -> float:
    """Seconds before the next try after `attempts` tries: exponential, capped, half jittered."""
    base = float(getattr(settings, "NEXTHINK_SUBMIT_BACKOFF_BASE", 2.0))
    ceiling = float(getattr(settings, "NEXTHINK_SUBMIT_BACKOFF_MAX", 300.0))
    step = min(ceiling, base * 2 ** max(0, attempts - 1))
    return step / 2 + random.uniform(0, step / 2)


def _requeue(batch: Batch, claim_id: str, delay: float, code: str, details: str) -> None:
    """Put the batch back to queued (row first), then send a new message due after `delay`."""
    now = timezone.now()
    with transaction.atomic():
        updated = Batch.objects.filter(
            pk=batch.pk, state=BatchState.SENDING, claim_id=claim_id
        ).update(
            state=BatchState.QUEUED,
            next_attempt_at=now + timedelta(seconds=delay),
            error_code=code,
            error_details=details,
            updated_at=now,
        )
        if updated:
            transaction.on_commit(lambda: enqueue(batch.pk, countdown=delay))
        refresh_run_status(batch.run_id)


def enqueue(batch_id: int, *, countdown: float | None = None) -> None:
    """Send a new submit message for the batch (imported late: tasks import this module)."""
    from workflows_app.tasks import submit_batch

    submit_batch.apply_async((batch_id,), countdown=countdown)


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
    again (a run left so by an older release, or by a change made outside this module).
    """
    now = now or timezone.now()
    grace = timedelta(
        seconds=grace_seconds
        if grace_seconds is not None
        else getattr(settings, "BATCH_SWEEP_GRACE_SECONDS", 120)
    )
    if sending_timeout_seconds is None:
        hard_limit = getattr(settings, "CELERY_TASK_TIME_LIMIT", 300) or 300
        sending_timeout_seconds = hard_limit + SENDING_MARGIN_SECONDS
    result = SweepResult()

    lost = Batch.objects.filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now - grace),
        state=BatchState.QUEUED,
        updated_at__lte=now - grace,
    ).values_list("pk", flat=True)
    for batch_id in list(lost):
        # Touch the row so the next sweep waits a whole grace period before sending another.
        with transaction.atomic():
            touched = Batch.objects.filter(pk=batch_id, state=BatchState.QUEUED).update(
                updated_at=timezone.now()
            )
            if touched:
                transaction.on_commit(partial(enqueue, batch_id))
                result.requeued.append(batch_id)

    stuck_before = now - timedelta(seconds=sending_timeout_seconds)
    stuck = Batch.objects.filter(state=BatchState.SENDING, claimed_at__lte=stuck_before)
    for batch_id, run_id in list(stuck.values_list("pk", "run_id")):
        with transaction.atomic():
            marked = Batch.objects.filter(
                pk=batch_id, state=BatchState.SENDING, claimed_at__lte=stuck_before
            ).update(
                state=BatchState.UNKNOWN,
                error_code="WORKER_LOST",
                error_details=(
                    "The worker sending this batch stopped answering, so it may or may not "
                    "have run. Reconcile it with Nexthink's execution history before sending "
                    "these targets again."
                ),
                finished_at=timezone.now(),
                updated_at=timezone.now(),
            )
            if marked:
                result.unknown.append(batch_id)
                refresh_run_status(run_id)

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
    """Re-derive runs still queued or in progress whose batches are all final; their ids."""
    in_flight = Batch.objects.filter(
        run=OuterRef("pk"), state__in=(BatchState.QUEUED, BatchState.SENDING)
    )
    stale = Run.objects.filter(status__in=(RunStatus.QUEUED, RunStatus.IN_PROGRESS)).filter(
        ~Exists(in_flight)
    )
    repaired: list[int] = []
    for run_id in list(stale.order_by("pk").values_list("pk", flat=True)):
        # Under the run's lock: a batch changing meanwhile is counted, whichever commits first.
        run = refresh_run_status(run_id)
        if run is not None and run.is_final:
            repaired.append(run_id)
    return repaired
