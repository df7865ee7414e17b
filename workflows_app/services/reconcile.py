"""Reconciling batches whose send is unknown, and an admin's decision to send the rest again.

A batch that may have reached Nexthink (a read timeout, a 5xx after sending, a worker that died
mid-call) has no request id. Its workflow's recent executions (the saved query
`NEXTHINK_RECENT_EXECUTIONS_QUERY_ID`) tell what became of it: an execution of one of its
targets, requested while the batch was being sent and not already known to another target, is
adopted (execution id and outcome recorded).
Once every target is found, or RECONCILE_GRACE_SECONDS after the batch was claimed, the batch is
`reconciled`; targets Nexthink never saw are `not_sent`. Nothing is sent again unless an admin
decides to, explicitly (`resend_not_sent`), and that decision is recorded on the batch.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from workflows_app import targets as targets_mod
from workflows_app.models import AuditAction, Batch, BatchState, Outcome, RunEventKind, Target
from workflows_app.nexthink.client import NexthinkClient
from workflows_app.services import audit, checks, dispatch, lifecycle, timeline
from workflows_app.services.executions import TARGET_FIELDS, ExecutionRow, apply_row, identity
from workflows_app.services.params import MASK
from workflows_app.services.target_updates import update_targets

logger = logging.getLogger(__name__)

# Clocks of Nexthink and of the portal's hosts may disagree by this much.
CLOCK_SKEW = timedelta(seconds=60)
NOT_FOUND = (
    "Nexthink has no execution of it {minutes} minute(s) after the batch was sent, so it did "
    "not run. An admin may send it again."
)


class ResendRefused(Exception):
    """A re-send the portal will not do; `message` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def check_unknown_batch(batch: Batch, client: NexthinkClient) -> bool:
    """Adopt the batch's executions found in Nexthink's history; False once it is reconciled.

    Until the grace period has passed, a batch with targets not found yet is checked again
    (True); then they become not sent and the batch is reconciled.
    """
    query = checks.recent_executions_query()
    parameters = {"workflow_id": batch.run.workflow_nql_id}
    rows = checks.read_rows(batch, client, query, parameters, expected=checks.EXECUTE_MAX_ROWS)
    with transaction.atomic():
        waiting = list(
            Target.objects.filter(batch_id=batch.pk, execution_uuid="").only(
                "pk", "kind", "value", *TARGET_FIELDS
            )
        )
        adopted = _adopt(batch, waiting, _candidates(batch, rows))
        update_targets(adopted, TARGET_FIELDS)
        missing = [t for t in waiting if not t.execution_uuid]
        if missing and not _past_grace(batch):
            lifecycle.recount(batch.pk)
            checks.plan(batch.pk, seconds=checks.interval(batch.checks))
            lifecycle.refresh_run_status(batch.run_id)
            return True
        if missing:
            minutes = max(1, round(_grace().total_seconds() / 60))
            Target.objects.filter(pk__in=[t.pk for t in missing]).update(
                outcome=Outcome.NOT_SENT, outcome_details=NOT_FOUND.format(minutes=minutes)
            )
        requests = {row.execution_id: row.request_id for row in rows}
        request_ids = {requests.get(t.execution_uuid, "") for t in adopted} - {""}
        found = len(waiting) - len(missing)
        note = (
            f"Reconciled from Nexthink's execution history: {found:,} of {len(waiting):,} "
            f"target(s) found, {len(missing):,} not sent. {batch.error_details}".strip()
        )
        lifecycle.reconcile(
            batch,
            request_uuid=request_ids.pop() if len(request_ids) == 1 else "",
            note=note,
        )
        open_left = Target.objects.filter(
            batch_id=batch.pk, outcome__in=(Outcome.PENDING, Outcome.RUNNING, Outcome.WAITING)
        ).exists()
        checks.plan(batch.pk, seconds=checks.interval(0) if open_left else None)
    logger.info("Batch %s reconciled: %d found, %d not sent", batch.pk, found, len(missing))
    return open_left


def _candidates(batch: Batch, rows: list[ExecutionRow]) -> list[ExecutionRow]:
    """Executions that may be this batch's: requested while it was being sent, not known yet."""
    claimed = batch.claimed_at or batch.created_at
    limit = float(getattr(settings, "CELERY_TASK_TIME_LIMIT", 300) or 300)
    start, end = claimed - CLOCK_SKEW, claimed + timedelta(seconds=limit) + CLOCK_SKEW
    in_window = [
        row for row in rows if row.request_time is None or start <= row.request_time <= end
    ]
    known = set(
        Target.objects.filter(execution_uuid__in=[row.execution_id for row in in_window])
        .values_list("execution_uuid", flat=True)
        .iterator()
    )
    fresh = [row for row in in_window if row.execution_id not in known]
    # The earliest execution after the claim is the one this batch's request made.
    return sorted(fresh, key=lambda row: (row.request_time or claimed, row.execution_id))


def _adopt(batch: Batch, waiting: list[Target], rows: list[ExecutionRow]) -> list[Target]:
    """Give each target the first unclaimed execution that names it; the targets changed."""
    by_identity: dict[tuple[str, str], list[ExecutionRow]] = {}
    for row in rows:
        for key in row.identities:
            by_identity.setdefault(key, []).append(row)
    taken: set[str] = set()
    adopted = []
    for target in waiting:
        for row in by_identity.get(identity(target.kind, target.value), []):
            if row.execution_id not in taken:
                taken.add(row.execution_id)
                apply_row(target, row)
                adopted.append(target)
                break
    return adopted


def _grace() -> timedelta:
    return timedelta(seconds=float(getattr(settings, "RECONCILE_GRACE_SECONDS", 900.0)))


def _past_grace(batch: Batch, now: datetime | None = None) -> bool:
    claimed = batch.claimed_at or batch.created_at
    return (now or timezone.now()) - claimed >= _grace()


def needs_decision(batch: Batch) -> bool:
    """Whether an admin may send this batch's not-sent targets again (and has not yet)."""
    counts = batch.outcome_counts or {}
    return (
        batch.state == BatchState.RECONCILED
        and batch.resent_at is None
        and bool(counts.get(Outcome.NOT_SENT, 0))
    )


def resend_not_sent(batch: Batch, *, user: User, note: str = "", ip: str | None = None) -> Batch:
    """Send a reconciled batch's not-sent targets again, as a new batch of the same run.

    The decision (who, when, why, which new batch) is recorded on the old batch; its targets
    move to the new one, which goes through the usual pipeline. Raises ResendRefused.
    """
    run = batch.run
    if any(value == MASK for value in run.params.values()):
        raise ResendRefused(
            "This run had secret parameters, which are erased once a run is sent: start a new "
            "run on these targets instead."
        )
    with transaction.atomic():
        locked = Batch.objects.select_for_update().filter(pk=batch.pk).first()
        if locked is None or not needs_decision(locked):
            raise ResendRefused("Nothing to send again: it was decided already, or none is left.")
        targets = list(
            Target.objects.filter(batch_id=batch.pk, outcome=Outcome.NOT_SENT).order_by("position")
        )
        chosen = [targets_mod.from_row(t.kind, t.value, t.position + 1) for t in targets]
        number = (Batch.objects.filter(run_id=run.pk).order_by("-number").first() or batch).number
        new = Batch.objects.create(
            run=run,
            number=number + 1,
            state=BatchState.QUEUED,
            api_version=targets_mod.api_version(chosen),
            target_count=len(targets),
        )
        Target.objects.filter(pk__in=[t.pk for t in targets]).update(
            batch=new, outcome="", outcome_details="", status="", status_details=""
        )
        Batch.objects.filter(pk=batch.pk).update(
            resent_at=timezone.now(), resent_by=user, resent_as=new, resend_note=note[:500]
        )
        lifecycle.recount(batch.pk)
        lifecycle.recount(new.pk)
        lifecycle.refresh_run_status(run.pk)
        dispatch.enqueue_batch_on_commit(new.pk)
        said = (
            f"{user.get_username()} sent the {len(targets):,} not-sent target(s) of batch "
            f"{batch.number} again as batch {new.number}: {note}"
        )
        timeline.note(run.pk, RunEventKind.RESENT, said, batch_number=new.number, actor=user)
        audit.record(
            AuditAction.RUN_RESENT,
            actor=user,
            summary=f"Run {run.pk}: {said}",
            obj=run,
            details={"batch": batch.number, "new_batch": new.number, "targets": len(targets)},
            ip=ip,
        )
    logger.warning(
        "%s re-sent %d not-sent target(s) of batch %s as batch %s",
        user,
        len(targets),
        batch.pk,
        new.pk,
    )
    return new
