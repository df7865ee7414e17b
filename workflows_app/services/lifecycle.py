"""The batch lifecycle: its states, the moves allowed between them, and the run status they give.

Every change of a batch's state is one move of `MOVES`, made by one conditional UPDATE whose
WHERE clause holds the states the move starts from (and, for a task's own batch, its claim):
when the row is no longer as expected, nothing changes and the caller is told so. A move sets
its targets' outcomes and re-derives its run's status in the same transaction, so a worker dying
between the two can never leave a run `in_progress` for ever.

    held --release--> queued                             (its run was approved)
    held --withdraw--> failed                            (rejected, or nobody approved in time)
    queued --claim--> sending --submit--> submitted      (targets pending: follow-up asks NQL)
       ^                 |  \\--fail----> failed         (targets not sent)
       |                 |   \\-give_up-> unknown       (targets unknown: reconciliation asks)
       +----requeue------+                  |--submit--> submitted (a late answer)
                                            +--reconcile--> reconciled

Nexthink has no idempotency key: a batch that may have reached it ends `unknown` and no move
leads from there back to `queued`, so nothing is ever sent twice automatically. Only an admin's
explicit decision sends a reconciled batch's not-sent targets again, as a new batch.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from workflows_app.models import (
    Batch,
    BatchState,
    FlowStepRun,
    Outcome,
    Run,
    RunEventKind,
    RunnableKind,
    RunStatus,
    Target,
)
from workflows_app.services import dispatch, notifications, timeline
from workflows_app.services.target_updates import write_columns

logger = logging.getLogger(__name__)

# A message may arrive a little before next_attempt_at when clocks disagree between hosts.
CLOCK_TOLERANCE = timedelta(seconds=2)
MAX_CODE_LENGTH = Batch._meta.get_field("error_code").max_length or 100


class Move(StrEnum):
    """The ways a batch changes state."""

    CLAIM = "claim"  # a task takes a due batch to send it
    REQUEUE = "requeue"  # not sent (rate limited, unavailable): try again later
    SUBMIT = "submit"  # Nexthink answered with execution ids
    FAIL = "fail"  # refused by Nexthink, or could not be built: it did not run
    GIVE_UP = "give_up"  # it may have run and nobody can tell: never sent again
    RECONCILE = "reconcile"  # Nexthink's history told what became of an unknown batch
    RELEASE = "release"  # its run was approved: queue it for sending
    WITHDRAW = "withdraw"  # its run was rejected, or its approval expired: it is never sent


@dataclass(frozen=True)
class Transition:
    """The states a move starts from and the state it ends in."""

    sources: frozenset[BatchState]
    target: BatchState


MOVES: Mapping[Move, Transition] = {
    Move.CLAIM: Transition(frozenset({BatchState.QUEUED}), BatchState.SENDING),
    Move.REQUEUE: Transition(frozenset({BatchState.SENDING}), BatchState.QUEUED),
    # Even if the sweeper gave up on it meanwhile, Nexthink's answer is the truth.
    Move.SUBMIT: Transition(
        frozenset({BatchState.SENDING, BatchState.UNKNOWN}), BatchState.SUBMITTED
    ),
    Move.FAIL: Transition(frozenset({BatchState.SENDING}), BatchState.FAILED),
    Move.GIVE_UP: Transition(frozenset({BatchState.SENDING}), BatchState.UNKNOWN),
    Move.RECONCILE: Transition(frozenset({BatchState.UNKNOWN}), BatchState.RECONCILED),
    Move.RELEASE: Transition(frozenset({BatchState.HELD}), BatchState.QUEUED),
    Move.WITHDRAW: Transition(frozenset({BatchState.HELD}), BatchState.FAILED),
}
NOT_SENT_DETAILS = "The batch was not sent to Nexthink: {reason}"
UNKNOWN_DETAILS = (
    "The request may have reached Nexthink; its execution history is being checked for it."
)
UNKNOWN_UNCHECKED_DETAILS = (
    "The request may have reached Nexthink, which keeps no history the portal can check: "
    "look in Finder before running it on this device again."
)
MISSING_ID_DETAILS = "Nexthink returned no execution id for this target."
IN_FLIGHT_STATES = (BatchState.QUEUED, BatchState.SENDING)
# A run ended by its approver (or by nobody answering) keeps that status: nothing was sent.
ENDED_UNSENT = frozenset({RunStatus.REJECTED, RunStatus.EXPIRED})


def _move(batch_id: int, move: Move, *, where: Q | None = None, **fields: Any) -> int:
    """Apply one move to one batch if it is in a source state (and matches `where`).

    Returns the number of rows changed (0 or 1). Call inside the transaction that also
    refreshes the run's status.
    """
    transition = MOVES[move]
    rows = Batch.objects.filter(pk=batch_id, state__in=transition.sources)
    if where is not None:
        rows = rows.filter(where)
    fields.setdefault("updated_at", timezone.now())
    return rows.update(state=transition.target, **fields)


def apply_move(batch_id: int, move: Move, *, where: Q | None = None, **fields: Any) -> int:
    """One move, for the lifecycle's companion modules (services/engine_answers.py).

    Same contract as every move here: call inside the transaction that refreshes the run.
    """
    return _move(batch_id, move, where=where, **fields)


def claim(batch_id: int, claim_id: str) -> bool:
    """Mark a queued, due batch as being sent by the task `claim_id`; True if this task has it."""
    now = timezone.now()
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now + CLOCK_TOLERANCE)
    with transaction.atomic():
        claimed = _move(
            batch_id,
            Move.CLAIM,
            where=due,
            claim_id=claim_id,
            claimed_at=now,
            attempts=F("attempts") + 1,
            updated_at=now,
        )
        if claimed:
            run_id, number, attempts = (
                Batch.objects.filter(pk=batch_id).values_list("run_id", "number", "attempts").get()
            )
            timeline.note(
                run_id,
                RunEventKind.BATCH_CLAIMED,
                f"Batch {number}: being sent to Nexthink (attempt {attempts}).",
                batch_number=number,
            )
            refresh_run_status(run_id)
    return claimed == 1


def requeue(batch: Batch, claim_id: str, *, delay: float, code: str, details: str) -> bool:
    """Put this task's batch back in the queue, due after `delay` seconds, with a new message.

    The row is written first; the message goes once the transaction commits.
    """
    now = timezone.now()
    with transaction.atomic():
        moved = _move(
            batch.pk,
            Move.REQUEUE,
            where=Q(claim_id=claim_id),
            next_attempt_at=now + timedelta(seconds=delay),
            error_code=code[:MAX_CODE_LENGTH],
            error_details=details,
            updated_at=now,
        )
        if moved:
            dispatch.enqueue_batch_on_commit(batch.pk, countdown=delay)
            timeline.note(
                batch.run_id,
                RunEventKind.BATCH_REQUEUED,
                f"Batch {batch.number}: not sent ({code}: {details}); next try in {delay:.0f} s.",
                batch_number=batch.number,
            )
        refresh_run_status(batch.run_id)
    return moved == 1


def finish(batch: Batch, claim_id: str, state: BatchState, code: str, details: str) -> bool:
    """End this task's batch as `failed` or `unknown`; False if its claim was lost meanwhile."""
    move = {BatchState.FAILED: Move.FAIL, BatchState.UNKNOWN: Move.GIVE_UP}[state]
    now = timezone.now()
    checked = state == BatchState.UNKNOWN and _reconcilable(batch.run_id)
    with transaction.atomic():
        moved = _move(
            batch.pk,
            move,
            where=Q(claim_id=claim_id),
            error_code=code[:MAX_CODE_LENGTH],
            error_details=details,
            next_attempt_at=None,
            next_check_at=_first_check(now) if checked else None,
            finished_at=now,
            updated_at=now,
        )
        if moved:
            _mark_targets(batch.pk, state, details, reconciled=checked)
            kind, what = {
                BatchState.FAILED: (RunEventKind.BATCH_FAILED, "failed, nothing ran"),
                BatchState.UNKNOWN: (
                    RunEventKind.BATCH_UNKNOWN,
                    "outcome unknown, it may have run",
                ),
            }[state]
            timeline.note(
                batch.run_id,
                kind,
                f"Batch {batch.number}: {what} ({code}: {details})",
                batch_number=batch.number,
            )
        refresh_run_status(batch.run_id)
    return moved == 1


def _mark_targets(
    batch_id: int, state: BatchState, details: str, *, reconciled: bool = True
) -> None:
    """Give a batch's targets the outcome its end implies: not sent, or unknown."""
    rows = Target.objects.filter(batch_id=batch_id)
    if state == BatchState.FAILED:
        rows.update(
            outcome=Outcome.NOT_SENT, outcome_details=NOT_SENT_DETAILS.format(reason=details)
        )
    else:
        unknown = UNKNOWN_DETAILS if reconciled else UNKNOWN_UNCHECKED_DETAILS
        rows.update(outcome=Outcome.UNKNOWN, outcome_details=unknown)
    recount(batch_id)


def _reconcilable(run_id: int) -> bool:
    """Whether Nexthink's execution history can tell what became of an unknown batch of this run.

    Not for a remote action: the classic Act API leaves no execution the portal can look up.
    """
    return not Run.objects.filter(pk=run_id, kind=RunnableKind.REMOTE_ACTION).exists()


def _first_check(now: datetime) -> datetime:
    """When to ask NQL first about a batch that just ended (follow-up or reconciliation)."""
    return now + timedelta(seconds=float(getattr(settings, "FOLLOW_UP_SECONDS", 30)))


def record_submitted(
    batch: Batch,
    claim_id: str,
    *,
    request_uuid: str,
    executions: Sequence[tuple[int, str]],
    note: str = "",
) -> bool:
    """Record Nexthink's answer: the request UUID and each target's execution UUID.

    `executions` pairs target ids with execution UUIDs. False when another task took the batch
    during the call (its answer is then logged, not stored).
    """
    now = timezone.now()
    with transaction.atomic():
        moved = _move(
            batch.pk,
            Move.SUBMIT,
            where=Q(claim_id=claim_id),
            request_uuid=request_uuid,
            error_code="",
            error_details=note,
            next_attempt_at=None,
            next_check_at=_first_check(now),
            checks=0,
            finished_at=now,
            updated_at=now,
        )
        if moved:
            write_columns(
                [pk for pk, _ in executions],
                {"execution_uuid": [uuid for _, uuid in executions]},
                same={"outcome": Outcome.PENDING, "outcome_details": ""},
            )
            if batch.target_count != len(executions) or not all(u for _, u in executions):
                Target.objects.filter(batch_id=batch.pk, execution_uuid="").update(
                    outcome=Outcome.UNKNOWN, outcome_details=MISSING_ID_DETAILS
                )
            recount(batch.pk)
            timeline.note(
                batch.run_id,
                RunEventKind.BATCH_SUBMITTED,
                f"Batch {batch.number}: submitted to Nexthink, request {request_uuid}, "
                f"{len(executions):,} execution id(s). {note}".strip(),
                batch_number=batch.number,
            )
        else:
            logger.error("Batch %s was taken from claim %s during the call", batch.pk, claim_id)
        refresh_run_status(batch.run_id)
    return moved == 1


def give_up_stuck(batch_id: int, run_id: int, *, claimed_before: datetime, details: str) -> bool:
    """End a batch `sending` since before `claimed_before` (its worker is dead) as unknown."""
    now = timezone.now()
    checked = _reconcilable(run_id)
    with transaction.atomic():
        moved = _move(
            batch_id,
            Move.GIVE_UP,
            where=Q(claimed_at__lte=claimed_before),
            error_code="WORKER_LOST",
            error_details=details,
            next_check_at=_first_check(now) if checked else None,
            finished_at=now,
            updated_at=now,
        )
        if moved:
            _mark_targets(batch_id, BatchState.UNKNOWN, details, reconciled=checked)
            number = Batch.objects.filter(pk=batch_id).values_list("number", flat=True).get()
            timeline.note(
                run_id,
                RunEventKind.BATCH_UNKNOWN,
                f"Batch {number}: outcome unknown, its worker stopped answering (WORKER_LOST).",
                batch_number=number,
            )
            refresh_run_status(run_id)
    return moved == 1


def reconcile(batch: Batch, *, request_uuid: str = "", note: str = "") -> bool:
    """Mark an unknown batch as reconciled from Nexthink's history (its targets already are).

    Follow-up goes on for the executions found while any of them is still open.
    """
    now = timezone.now()
    with transaction.atomic():
        fields: dict[str, Any] = {"error_details": note} if note else {}
        if request_uuid:
            fields["request_uuid"] = request_uuid
        moved = _move(batch.pk, Move.RECONCILE, updated_at=now, **fields)
        if moved:
            recount(batch.pk)
            timeline.note(
                batch.run_id,
                RunEventKind.BATCH_RECONCILED,
                f"Batch {batch.number}: {note or 'reconciled from Nexthink execution history.'}",
                batch_number=batch.number,
            )
        refresh_run_status(batch.run_id)
    return moved == 1


def recount(batch_id: int) -> dict[str, int]:
    """Count the batch's targets by outcome and store it on the batch; returns the counts."""
    counts = {
        row["outcome"]: row["n"]
        for row in Target.objects.filter(batch_id=batch_id)
        .order_by()
        .values("outcome")
        .annotate(n=Count("id"))
    }
    Batch.objects.filter(pk=batch_id).update(outcome_counts=counts)
    return counts


def resend(batch_id: int) -> bool:
    """Send another message for a queued batch whose message was lost (not a state change).

    The row is touched so that the next sweep waits a whole grace period before sending yet
    another; a second message is harmless, since only one task can claim the batch.
    """
    with transaction.atomic():
        touched = Batch.objects.filter(pk=batch_id, state=BatchState.QUEUED).update(
            updated_at=timezone.now()
        )
        if touched:
            dispatch.enqueue_batch_on_commit(batch_id)
            run_id, number = Batch.objects.filter(pk=batch_id).values_list("run_id", "number").get()
            timeline.note(
                run_id,
                RunEventKind.BATCH_REQUEUED,
                f"Batch {number}: its message to the worker was lost; sent another.",
                batch_number=number,
            )
    return touched == 1


# --- held batches: a run waiting for its approver --------------------------------------------


def release_held(run_id: int) -> list[int]:
    """Queue every held batch of an approved run; their messages go once the caller commits.

    Returns the batches released (none when another transaction released them first).
    """
    with transaction.atomic():
        held = Batch.objects.filter(run_id=run_id, state=BatchState.HELD).order_by("number")
        released = [pk for pk in list(held.values_list("pk", flat=True)) if _move(pk, Move.RELEASE)]
        count = Run.objects.filter(pk=run_id).values_list("target_count", flat=True).first() or 0
        for batch_id in released:
            dispatch.enqueue_batch_on_commit(batch_id, priority=dispatch.batch_priority(count))
        refresh_run_status(run_id)
    return released


def withdraw_held(run_id: int, status: RunStatus, details: str) -> int:
    """End every held batch of a run as never sent; the run ends `status` (rejected, expired).

    Its targets are not sent, with `details` as their reason; its secrets are erased.
    """
    assert status in ENDED_UNSENT, status
    now = timezone.now()
    code = status.value.upper()
    with transaction.atomic():
        Run.objects.filter(pk=run_id).update(status=status)
        held = list(
            Batch.objects.filter(run_id=run_id, state=BatchState.HELD).values_list("pk", flat=True)
        )
        withdrawn = 0
        for batch_id in held:
            moved = _move(
                batch_id,
                Move.WITHDRAW,
                error_code=code,
                error_details=details,
                finished_at=now,
                updated_at=now,
            )
            if moved:
                Target.objects.filter(batch_id=batch_id).update(
                    outcome=Outcome.NOT_SENT, outcome_details=details
                )
                recount(batch_id)
                withdrawn += 1
        refresh_run_status(run_id)
    return withdrawn


# --- the run's status, derived from its batches ------------------------------------------------


def refresh_run_status(run_id: int) -> Run | None:
    """Derive a run's status from its batches; erase its secrets once none is still to be sent.

    Call it inside the transaction that changes a batch's state, so both commit together. The
    run's row is locked first: batches of one run finishing at once are counted one after the
    other, and the last to commit sees every other's outcome (each count is a new statement).
    """
    with transaction.atomic():
        # Locks the run until the caller's transaction ends (this block is then a savepoint).
        run = Run.objects.select_for_update().filter(pk=run_id).first()
        if run is None:
            return None
        counts: dict[str, int] = {}
        outcomes: dict[str, int] = {}
        attempted = reconciling = mixed = 0
        for state, batch_outcomes, attempts, next_check, engines in Batch.objects.filter(
            run_id=run_id
        ).values_list("state", "outcome_counts", "attempts", "next_check_at", "engine_results"):
            counts[state] = counts.get(state, 0) + 1
            attempted += attempts
            reconciling += state == BatchState.UNKNOWN and next_check is not None
            codes = {e.get("code") == "ok" for e in engines or []}
            mixed += codes == {True, False}
            for outcome, n in (batch_outcomes or {}).items():
                outcomes[outcome] = outcomes.get(outcome, 0) + n
        status = derive_status(
            counts, outcomes, attempted=attempted, reconciling=reconciling, engines_mixed=mixed
        )
        if run.status in ENDED_UNSENT:
            status = RunStatus(run.status)
        fields: list[str] = []
        if status != run.status:
            run.status = status
            fields.append("status")
        if outcomes != run.outcome_counts:
            run.outcome_counts = outcomes
            fields.append("outcome_counts")
        # A held batch still needs them: it is sent once approved.
        in_flight = sum(counts.get(state, 0) for state in (*IN_FLIGHT_STATES, BatchState.HELD))
        if not in_flight and run.secret_params:
            run.secret_params = ""
            fields.append("secret_params")
        final = run.is_final
        fields += _publish_milestones(run, counts, outcomes)
        if final and run.finished_at is None:
            run.finished_at = timezone.now()
            fields.append("finished_at")
            _step_of_flow_ended(run_id)
        elif not final and run.finished_at is not None:
            run.finished_at = None
            fields.append("finished_at")
        if fields:
            run.save(update_fields=fields)
        return run


def _publish_milestones(
    run: Run, batches: Mapping[str, int], outcomes: dict[str, int]
) -> list[str]:
    """Publish run.submitted (first batch submitted) and run.ended (first final), once each.

    The run's row is locked, and the fields that say so commit with the status: a later change
    (a reconciliation, a re-send) publishes neither again. A rejected or expired run has events
    of its own (services/approvals.py). Returns the fields to save.
    """
    now, fields = timezone.now(), []
    if run.submitted_at is None and batches.get(BatchState.SUBMITTED, 0):
        run.submitted_at = now
        fields.append("submitted_at")
        notifications.publish(run.pk, notifications.Event.SUBMITTED)
    if run.is_final and run.end_published_at is None and run.status not in ENDED_UNSENT:
        run.end_published_at = now
        fields.append("end_published_at")
        notifications.publish(
            run.pk, notifications.Event.ENDED, status=str(run.status), outcome_counts=dict(outcomes)
        )
    return fields


def _step_of_flow_ended(run_id: int) -> None:
    """The run is a flow's step: have the flow advanced once this transaction commits."""
    flow_run_id = FlowStepRun.objects.filter(run_id=run_id).values_list("flow_run_id", flat=True)
    for found in flow_run_id[:1]:
        dispatch.enqueue_flow_advance_on_commit(found)


def derive_status(
    batches: Mapping[str, int],
    outcomes: Mapping[str, int],
    *,
    attempted: int = 0,
    reconciling: int = 0,
    engines_mixed: int = 0,
) -> RunStatus:
    """A run's status from how many batches are in each state and targets have each outcome.

    `reconciling` counts unknown batches whose fate is still being looked up in Nexthink's
    history: until that ends, the run is in progress rather than of unknown outcome.
    `engines_mixed` counts remote action batches some Engines accepted and others did not:
    the run then partly failed, whatever its targets' outcomes (the classic API does not say
    which device is on which Engine).
    """
    queued = batches.get(BatchState.QUEUED, 0)
    sending = batches.get(BatchState.SENDING, 0)
    if sum(batches.values()) == 0:
        return RunStatus.FAILED
    if batches.get(BatchState.HELD, 0):
        return RunStatus.AWAITING_APPROVAL
    if queued or sending:
        untouched = queued == sum(batches.values()) and attempted == 0
        return RunStatus.QUEUED if untouched else RunStatus.IN_PROGRESS
    # Every batch has ended: its targets' outcomes tell the rest.
    still_open = sum(outcomes.get(o, 0) for o in ("", Outcome.PENDING, Outcome.RUNNING))
    if still_open or reconciling:
        return RunStatus.IN_PROGRESS
    if outcomes.get(Outcome.WAITING, 0):
        return RunStatus.WAITING
    total = sum(outcomes.values())
    succeeded = outcomes.get(Outcome.SUCCESS, 0)
    sent = outcomes.get(Outcome.SENT, 0)
    unknown = outcomes.get(Outcome.UNKNOWN, 0)
    if total and succeeded == total:
        return RunStatus.SUCCEEDED
    if total and sent == total:
        return RunStatus.SENT
    if succeeded or sent or engines_mixed:
        return RunStatus.PARTIAL
    if unknown:
        # Nothing is known to have worked and some may have run: someone must check first.
        return RunStatus.UNKNOWN
    return RunStatus.FAILED
