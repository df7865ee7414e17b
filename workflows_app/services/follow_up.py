"""Following every execution up through NQL until it ends: one query per batch per check.

Beat runs `fan_out()` every few seconds. It takes the batches whose next check is due (a lease
on each, so that two workers never check one batch at once) and queues one check each, which
the workers run side by side (`check_leased`); `follow_up()` does the same in turn, in one
process. A check asks Nexthink once per batch: the executions of its request
(`NEXTHINK_EXECUTIONS_QUERY_ID`) for a sent batch, or the recent executions of its workflow for
a batch whose send is unknown (services/reconcile.py).

Checks back off as executions age: every FOLLOW_UP_SECONDS at first, then after a fifth of the
batch's age, at most 30 times FOLLOW_UP_SECONDS apart (checks.next_check). An execution still
open after FOLLOW_UP_HORIZON_HOURS is given up as unknown, with the reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from workflows_app.models import OPEN_OUTCOMES, Batch, BatchState, Outcome, RunEventKind, Target
from workflows_app.nexthink import errors as nx
from workflows_app.nexthink.client import NexthinkClient
from workflows_app.nexthink_factory import get_client
from workflows_app.services import checks, dispatch, lifecycle, reconcile, timeline
from workflows_app.services.executions import TARGET_FIELDS, apply_row
from workflows_app.services.target_updates import update_targets

logger = logging.getLogger(__name__)

# A check that has not ended within this long (its worker died) is planned again.
LEASE = timedelta(minutes=5)
FOLLOWED_STATES = (BatchState.SUBMITTED, BatchState.RECONCILED)
# Targets whose execution may still change, including those in a state the portal does not know.
STILL_OPEN = Q(outcome__in=OPEN_OUTCOMES) | (Q(outcome=Outcome.UNKNOWN) & ~Q(status=""))


@dataclass
class FollowUpResult:
    """What one cycle did: batches checked, batches whose follow-up ended, NQL problems."""

    checked: list[int] = field(default_factory=list)
    finished: list[int] = field(default_factory=list)
    problems: dict[int, str] = field(default_factory=dict)


def follow_up(*, now: datetime | None = None, limit: int | None = None) -> FollowUpResult:
    """Check each batch whose next check is due (at most `limit` of them), once, in turn."""
    result = FollowUpResult()
    leased = lease_due(now=now, limit=limit)
    if not leased:
        return result
    client = get_client()
    try:
        for batch_id in leased:
            _check(batch_id, client, result)
    finally:
        client.close()
    return result


def fan_out(*, now: datetime | None = None, limit: int | None = None) -> list[int]:
    """Beat: lease the batches due a check and queue one check each, so that the workers check
    them side by side (in turn, ten batches of 10,000 took ten times one). A check whose message
    is lost is due again when its lease ends."""
    leased = lease_due(now=now, limit=limit)
    for batch_id in leased:
        dispatch.enqueue_check(batch_id)
    return leased


def check_leased(batch_id: int) -> FollowUpResult:
    """Check one batch this process holds the lease of (queued by `fan_out`)."""
    result = FollowUpResult()
    client = get_client()
    try:
        _check(batch_id, client, result)
    finally:
        client.close()
    return result


def lease_due(*, now: datetime | None = None, limit: int | None = None) -> list[int]:
    """Take the batches whose check is due (at most `limit`) for LEASE; the ids taken.

    The lease is a conditional update: of two processes looking at once, one takes each batch.
    """
    now = now or timezone.now()
    limit = limit or int(getattr(settings, "FOLLOW_UP_BATCHES_PER_CYCLE", 50))
    due = list(
        Batch.objects.filter(next_check_at__lte=now)
        .order_by("next_check_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    leased = []
    for batch_id in due:
        if Batch.objects.filter(pk=batch_id, next_check_at__lte=now).update(
            next_check_at=timezone.now() + LEASE
        ):
            leased.append(batch_id)
    return leased


def _check(batch_id: int, client: NexthinkClient, result: FollowUpResult) -> None:
    batch = Batch.objects.select_related("run").get(pk=batch_id)
    if batch.state not in (*FOLLOWED_STATES, BatchState.UNKNOWN):
        Batch.objects.filter(pk=batch_id).update(next_check_at=None)
        return
    result.checked.append(batch_id)
    try:
        if batch.state == BatchState.UNKNOWN:
            still_open = reconcile.check_unknown_batch(batch, client)
        else:
            still_open = check_batch(batch, client)
    except checks.NotYet as wait:
        checks.plan(batch_id, seconds=wait.seconds)
    except nx.NexthinkError as exc:
        result.problems[batch_id] = checks.note_problem(batch, exc)
    else:
        if not still_open:
            result.finished.append(batch_id)


def check_batch(batch: Batch, client: NexthinkClient) -> bool:
    """Ask NQL about a sent batch's executions and record them; False once nothing is open."""
    if batch.request_uuid:
        query, parameters = checks.executions_query(), {"request_id": batch.request_uuid}
    else:  # reconciled from several requests: the workflow's recent executions tell
        query = checks.recent_executions_query()
        parameters = {"workflow_id": batch.run.workflow_nql_id}
    rows = checks.read_rows(batch, client, query, parameters, expected=batch.target_count)
    by_id = {row.execution_id: row for row in rows}
    with transaction.atomic():
        targets = list(
            Target.objects.filter(batch_id=batch.pk)
            .exclude(execution_uuid="")
            .only("pk", *TARGET_FIELDS)
        )
        changed = [t for t in targets if (row := by_id.get(t.execution_uuid)) and apply_row(t, row)]
        update_targets(changed, TARGET_FIELDS)
        still_open = Target.objects.filter(STILL_OPEN, batch_id=batch.pk).count()
        gave_up = bool(still_open) and past_horizon(batch)
        if gave_up:
            give_up(batch)
            still_open = 0
        counts = lifecycle.recount(batch.pk)
        checks.plan(batch.pk, seconds=checks.next_check(batch) if still_open else None)
        _note_progress(batch, counts, ended=not still_open, gave_up=gave_up)
        lifecycle.refresh_run_status(batch.run_id)
    return bool(still_open)


def _note_progress(batch: Batch, counts: dict[str, int], *, ended: bool, gave_up: bool) -> None:
    """Put on the run's timeline what this check learnt, when it learnt anything."""
    if counts != (batch.outcome_counts or {}):
        labels = dict(Outcome.choices)
        said = ", ".join(
            f"{n:,} {labels.get(o, o or 'not sent yet').lower()}" for o, n in counts.items()
        )
        timeline.note(
            batch.run_id,
            RunEventKind.OUTCOMES,
            f"Batch {batch.number}: {said}.",
            batch_number=batch.number,
            details={"counts": counts},
        )
    if ended:
        timeline.note(
            batch.run_id,
            RunEventKind.FOLLOW_UP_ENDED,
            f"Batch {batch.number}: "
            + (
                "stopped asking Nexthink after the horizon."
                if gave_up
                else "every execution ended."
            ),
            batch_number=batch.number,
        )


def past_horizon(batch: Batch) -> bool:
    """Whether the batch was sent longer ago than the follow-up horizon."""
    hours = float(getattr(settings, "FOLLOW_UP_HORIZON_HOURS", 24.0))
    sent_at = batch.finished_at or batch.created_at
    return timezone.now() - sent_at >= timedelta(hours=hours)


def give_up(batch: Batch) -> None:
    """Stop following the batch: what is still open becomes unknown, saying why."""
    hours = float(getattr(settings, "FOLLOW_UP_HORIZON_HOURS", 24.0))
    reason = (
        f"No final status from Nexthink within {hours:g} h of sending; "
        "its last status is shown as Nexthink gave it."
    )
    given_up = Target.objects.filter(STILL_OPEN, batch_id=batch.pk).update(
        outcome=Outcome.UNKNOWN, outcome_details=reason
    )
    logger.warning(
        "Batch %s: stopped following %d execution(s) after %g h", batch.pk, given_up, hours
    )
