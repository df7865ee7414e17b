"""A remote action batch's end: its Engines' answers, or its split after TOO_MANY_DEVICES.

The classic Act API answers once, synchronously, with one result per Engine and no execution
ids, so nothing is followed up: the answers decide the batch's targets at once. Every Engine
`ok`: the targets were sent. None `ok`: they failed, unless an Engine timed out (then nobody can
tell). Some `ok` and some not: unknown for each device (the API does not say which device is on
which Engine), and the run partly failed (lifecycle.derive_status), naming the Engines and why.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from workflows_app.models import Batch, BatchState, Outcome, Run, RunEventKind, Target
from workflows_app.nexthink.classic import EngineResult
from workflows_app.services import dispatch, lifecycle, timeline

logger = logging.getLogger(__name__)


def request_uid(batch: Batch) -> str:
    """The portal's reference of a batch, sent as `requestUid` for the web interface's logs."""
    return f"portal-run-{batch.run_id}-batch-{batch.number}-{batch.pk}"


def describe(results: Sequence[EngineResult]) -> str:
    """The Engines that did not answer `ok`, each with its code and message, in one line."""
    return "; ".join(
        f"Engine {r.databaseUid or '?'}: {r.code}" + (f" ({r.message})" if r.message else "")
        for r in results
        if not r.ok
    )


def target_outcome(results: Sequence[EngineResult]) -> tuple[Outcome, str]:
    """What the Engines' answers say of each device in the batch, and the words for it."""
    if not results:
        return Outcome.FAILURE, "No Engine answered: the remote action was not triggered."
    if all(r.ok for r in results):
        return Outcome.SENT, f"Every Engine ({len(results)}) accepted the remote action."
    refused = describe(results)
    if not any(r.ok for r in results) and not any(r.code == "timeout" for r in results):
        return Outcome.FAILURE, f"No Engine triggered the remote action. {refused}"
    return Outcome.UNKNOWN, (
        f"Not every Engine triggered the remote action, and the answer does not say which "
        f"Engine holds this device. {refused}"
    )


def record(batch: Batch, claim_id: str, *, sent_as: str, results: Sequence[EngineResult]) -> bool:
    """Store the Engines' answers on this task's batch and give its targets their outcome."""
    now = timezone.now()
    outcome, details = target_outcome(results)
    stored = [r.as_json() for r in results]
    with transaction.atomic():
        moved = lifecycle.apply_move(
            batch.pk,
            lifecycle.Move.SUBMIT,
            where=Q(claim_id=claim_id),
            request_uuid=sent_as,
            engine_results=stored,
            error_code="",
            error_details="" if outcome is Outcome.SENT else details,
            next_attempt_at=None,
            next_check_at=None,
            finished_at=now,
            updated_at=now,
        )
        if moved:
            Target.objects.filter(batch_id=batch.pk).update(
                outcome=outcome, outcome_details=details
            )
            lifecycle.recount(batch.pk)
            ok = sum(r.ok for r in results)
            timeline.note(
                batch.run_id,
                RunEventKind.BATCH_SUBMITTED,
                f"Batch {batch.number}: sent to the classic web interface ({sent_as}); "
                f"{ok} of {len(results)} Engine(s) answered ok. {describe(results)}".strip(),
                batch_number=batch.number,
                details={"engines": stored},
            )
        else:
            logger.error("Batch %s was taken from claim %s during the call", batch.pk, claim_id)
        lifecycle.refresh_run_status(batch.run_id)
    return moved == 1


def split(batch: Batch, claim_id: str, *, details: str) -> bool:
    """Halve a batch the web interface refused as too large (nothing ran), queue both halves.

    The first half stays in this batch, queued again at once; the second becomes a new batch of
    the same run. A batch of one device cannot be split: it fails.
    """
    now = timezone.now()
    with transaction.atomic():
        Run.objects.select_for_update().filter(pk=batch.run_id).exists()
        ids = list(
            Target.objects.filter(batch_id=batch.pk)
            .order_by("position")
            .values_list("pk", flat=True)
        )
        if len(ids) <= 1:
            return lifecycle.finish(batch, claim_id, BatchState.FAILED, "TOO_MANY_DEVICES", details)
        keep = math.ceil(len(ids) / 2)
        moved = lifecycle.apply_move(
            batch.pk,
            lifecycle.Move.REQUEUE,
            where=Q(claim_id=claim_id),
            next_attempt_at=now,
            target_count=keep,
            error_code="TOO_MANY_DEVICES",
            error_details=details,
            updated_at=now,
        )
        if not moved:
            return False
        top = Batch.objects.filter(run_id=batch.run_id).aggregate(top=Max("number"))["top"] or 0
        half = Batch.objects.create(
            run_id=batch.run_id,
            number=top + 1,
            state=BatchState.QUEUED,
            api_version=batch.api_version,
            target_count=len(ids) - keep,
        )
        Target.objects.filter(pk__in=ids[keep:]).update(batch=half)
        lifecycle.recount(batch.pk)
        lifecycle.recount(half.pk)
        dispatch.enqueue_batch_on_commit(batch.pk)
        dispatch.enqueue_batch_on_commit(half.pk)
        timeline.note(
            batch.run_id,
            RunEventKind.BATCH_REQUEUED,
            f"Batch {batch.number}: too many devices for one call (nothing ran); split into "
            f"batch {batch.number} ({keep:,} devices) and batch {half.number} "
            f"({len(ids) - keep:,} devices).",
            batch_number=batch.number,
        )
        lifecycle.refresh_run_status(batch.run_id)
    return True
