"""Four-eyes approval: holding a run (or flow run) until someone else approves it, and deciding.

A run needs approval when the curation of its workflow (or remote action) or its flow asks for
it, or when it has more targets than APPROVAL_ABOVE_TARGETS. It is created awaiting approval:
its batches held, nothing queued (services/runs.py calls `request_for_run`). Its approval is
decided once, by one conditional UPDATE of the pending row, in the transaction that releases or
withdraws its batches: two approvers clicking together send it once, and the second is told who
decided. Unanswered requests expire after APPROVAL_EXPIRY_HOURS (`expire_due`, on beat).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, User
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from workflows_app import permissions
from workflows_app.models import (
    Approval,
    ApprovalState,
    AuditAction,
    Flow,
    FlowRun,
    FlowRunStatus,
    FlowStepRun,
    Run,
    RunEventKind,
    RunStatus,
    StepState,
    Workflow,
)
from workflows_app.roles import Role
from workflows_app.services import audit, dispatch, lifecycle, timeline
from workflows_app.services.notifications import Event, FlowEvent, publish, publish_flow_run
from workflows_app.time_zones import local_time_text

logger = logging.getLogger(__name__)
MAX_COMMENT = Approval._meta.get_field("comment").max_length or 1000
EXPIRE_BATCH = 200


@dataclass(frozen=True)
class Requirement:
    """Why a run must be approved, and the weakest role that may approve it."""

    approver_role: Role
    why: str


class DecisionRefused(Exception):
    """This person may not decide, or the decision is incomplete; `status` is the HTTP answer."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class AlreadyDecided(Exception):
    """The request was decided (or expired) before this decision; `message` says by whom."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- when approval is needed ------------------------------------------------------------------


def requirement(workflow: Workflow, target_count: int) -> Requirement | None:
    """Whether a run of `workflow` on `target_count` targets must wait for an approver."""
    curation = workflow.curation_or_none
    curated = None
    if curation is not None and curation.requires_approval:
        what = "remote action" if workflow.is_remote_action else "workflow"
        curated = Requirement(
            permissions.approver_role(curation.approver_role),
            f"the {what} '{curation.display_title}' requires approval",
        )
    return _stronger(curated, _size_rule(target_count))


def flow_requirement(
    flow: Flow, workflows: Iterable[Workflow], target_count: int
) -> Requirement | None:
    """Whether a run of `flow` must wait: its own flag, any step's workflow, or its size."""
    found = _size_rule(target_count)
    if flow.requires_approval:
        own = Requirement(
            permissions.approver_role(flow.approver_role),
            f"the flow '{flow.name}' requires approval",
        )
        found = _stronger(own, found)
    for workflow in workflows:
        found = _stronger(found, requirement(workflow, 0))
    return found


def _size_rule(target_count: int) -> Requirement | None:
    above = int(getattr(settings, "APPROVAL_ABOVE_TARGETS", 0) or 0)
    if above and target_count > above:
        why = f"{target_count:,} targets, more than the {above:,} a run may have unapproved"
        return Requirement(Role.ADMIN, why)
    return None


def _stronger(a: Requirement | None, b: Requirement | None) -> Requirement | None:
    """Both reasons, decided by the stronger approver role of the two."""
    if a is None or b is None:
        return a or b
    role = Role.ADMIN if Role.ADMIN in (a.approver_role, b.approver_role) else Role.HELPDESK
    return Requirement(role, f"{a.why}; {b.why}")


def approvers(approval: Approval) -> QuerySet[User]:
    """The active people who may decide this request (never its requester)."""
    roles = permissions.deciding_roles(approval.approver_role)
    people = get_user_model().objects.filter(is_active=True)
    chosen = Q(is_superuser=True) | Q(groups__name=Role.ADMIN.value)
    if Role.HELPDESK in roles:
        # The strongest role counts: an Employee in the Helpdesk group acts as helpdesk.
        chosen |= Q(groups__name=Role.HELPDESK.value)
    return people.filter(chosen).exclude(pk=approval.requested_by_id).distinct().order_by("pk")


def approver_ids(approval: Approval) -> list[int]:
    """The ids of `approvers`: whom to tell that the request waits for them."""
    return list(approvers(approval).values_list("pk", flat=True))


# --- asking -----------------------------------------------------------------------------------


def _new_request(
    *, user: User, need: Requirement, run: Run | None = None, flow_run: FlowRun | None = None
) -> Approval:
    now = timezone.now()
    hours = float(getattr(settings, "APPROVAL_EXPIRY_HOURS", 24.0))
    return Approval.objects.create(
        run=run,
        flow_run=flow_run,
        requested_by=user,
        requested_at=now,
        expires_at=now + timedelta(hours=hours),
        approver_role=need.approver_role.value,
        why=need.why[:500],
    )


def request_for_run(run: Run, need: Requirement) -> Approval:
    """Record that a run just created (its batches held) waits for approval; tell approvers.

    Call inside the transaction that creates the run.
    """
    approval = _new_request(user=run.created_by, need=need, run=run)
    who = permissions.approver_label(approval.approver_role)
    timeline.note(
        run.pk,
        RunEventKind.APPROVAL_REQUESTED,
        f"Awaiting approval by {who} until {local_time_text(approval.expires_at)}: {need.why}.",
        actor=run.created_by,
        details={"approver_role": approval.approver_role},
    )
    publish(run.pk, Event.AWAITING_APPROVAL, **_waiting_details(approval))
    return approval


def request_for_flow_run(flow_run: FlowRun, need: Requirement) -> Approval:
    """Record that a flow run just created waits for approval (no step starts meanwhile); tell
    approvers. Call inside the transaction that creates the flow run."""
    approval = _new_request(user=flow_run.created_by, need=need, flow_run=flow_run)
    publish_flow_run(flow_run.pk, FlowEvent.AWAITING_APPROVAL, **_waiting_details(approval))
    return approval


def _waiting_details(approval: Approval) -> dict[str, object]:
    """What an awaiting-approval event says: whom it waits for, why, until when."""
    return {
        "approver_ids": approver_ids(approval),
        "approver_role": approval.approver_role,
        "why": approval.why,
        "expires_at": approval.expires_at.isoformat(),
    }


# --- deciding ---------------------------------------------------------------------------------


def approve(
    approval: Approval, *, user: User, comment: str = "", ip: str | None = None
) -> Approval:
    """Approve: the run's batches are queued (sent once this commits), or the flow run starts.

    Raises DecisionRefused (403: role, own request) or AlreadyDecided (someone was first).
    """
    return _decide(approval, ApprovalState.APPROVED, user=user, comment=comment, ip=ip)


def reject(approval: Approval, *, user: User, comment: str, ip: str | None = None) -> Approval:
    """Reject, saying why (required): nothing is sent, the targets end not sent.

    Raises DecisionRefused (403; 400 without a comment) or AlreadyDecided.
    """
    if not comment.strip():
        raise DecisionRefused("Say why you reject it: the comment is required.", status=400)
    return _decide(approval, ApprovalState.REJECTED, user=user, comment=comment, ip=ip)


def _decide(
    approval: Approval, state: ApprovalState, *, user: User, comment: str, ip: str | None
) -> Approval:
    refusal = permissions.may_decide(user, approval)
    if refusal is not None:
        raise DecisionRefused(refusal)
    comment = comment.replace("\x00", "").strip()[:MAX_COMMENT]
    now = timezone.now()
    with transaction.atomic():
        won = Approval.objects.filter(
            pk=approval.pk, state=ApprovalState.PENDING, expires_at__gt=now
        ).update(state=state, decided_by=user, decided_at=now, comment=comment)
        if won:
            approval.refresh_from_db()
            _settle(approval, actor=user, ip=ip)
            return approval
    # Past its expiry and not swept yet: end it now, then say so.
    expire_due(now=now, only=approval.pk)
    raise AlreadyDecided(decided_message(Approval.objects.get(pk=approval.pk)))


def decided_message(approval: Approval) -> str:
    """What happened to a request already decided, for whoever clicked second."""
    if approval.state == ApprovalState.EXPIRED:
        return f"This request expired at {local_time_text(approval.expires_at)}: nothing was sent."
    who = approval.decided_by.get_username() if approval.decided_by else "someone"
    word = "approved" if approval.state == ApprovalState.APPROVED else "rejected"
    when = local_time_text(approval.decided_at) if approval.decided_at else ""
    return f"Already {word} by {who} at {when}."


def expire_due(*, now: datetime | None = None, only: int | None = None) -> list[int]:
    """End pending requests past their expiry (a few hundred a call); their ids."""
    now = now or timezone.now()
    due = Approval.objects.filter(state=ApprovalState.PENDING, expires_at__lte=now)
    if only is not None:
        due = due.filter(pk=only)
    expired: list[int] = []
    for pk in list(due.order_by("expires_at", "pk").values_list("pk", flat=True)[:EXPIRE_BATCH]):
        with transaction.atomic():
            won = Approval.objects.filter(
                pk=pk, state=ApprovalState.PENDING, expires_at__lte=now
            ).update(state=ApprovalState.EXPIRED, decided_at=now)
            if won:
                _settle(Approval.objects.get(pk=pk), actor=None, ip=None)
                expired.append(pk)
    if expired:
        logger.info("Approval requests expired: %s", expired)
    return expired


def _settle(approval: Approval, *, actor: User | None, ip: str | None) -> None:
    """Carry a decision out on the run or flow run, in the decision's transaction."""
    if approval.run_id is not None:
        _settle_run(approval, actor=actor, ip=ip)
    else:
        _settle_flow_run(approval, actor=actor, ip=ip)


def _said(approval: Approval) -> str:
    who = approval.decided_by.get_username() if approval.decided_by else ""
    comment = f": {approval.comment}" if approval.comment else ""
    if approval.state == ApprovalState.APPROVED:
        return _sentence(f"Approved by {who}{comment}")
    if approval.state == ApprovalState.REJECTED:
        return _sentence(f"Rejected by {who}{comment}")
    return f"Nobody approved it before {local_time_text(approval.expires_at)}."


def _sentence(text: str) -> str:
    """`text` ending with one full stop, even when the approver's comment already has one."""
    return text if text.endswith((".", "!", "?")) else text + "."


RUN_DECISIONS = {
    ApprovalState.APPROVED: (RunEventKind.APPROVED, AuditAction.RUN_APPROVED, Event.APPROVED),
    ApprovalState.REJECTED: (RunEventKind.REJECTED, AuditAction.RUN_REJECTED, Event.REJECTED),
    ApprovalState.EXPIRED: (
        RunEventKind.APPROVAL_EXPIRED,
        AuditAction.RUN_APPROVAL_EXPIRED,
        Event.EXPIRED,
    ),
}


def _settle_run(approval: Approval, *, actor: User | None, ip: str | None) -> None:
    run_id = approval.run_id
    assert run_id is not None
    said = _said(approval)
    if approval.state == ApprovalState.APPROVED:
        lifecycle.release_held(run_id)
    else:
        rejected = approval.state == ApprovalState.REJECTED
        status = RunStatus.REJECTED if rejected else RunStatus.EXPIRED
        lifecycle.withdraw_held(run_id, status, f"Not sent: {said[0].lower()}{said[1:]}")
    kind, action, event = RUN_DECISIONS[ApprovalState(approval.state)]
    timeline.note(run_id, kind, said, actor=actor, details={"comment": approval.comment})
    run = Run.objects.get(pk=run_id)
    audit.record(
        action,
        actor=actor,
        summary=f"Run {run_id} of {run.workflow_name}: {said}",
        obj=run,
        details={"approval": approval.pk, "comment": approval.comment, "why": approval.why},
        ip=ip,
    )
    if approval.state == ApprovalState.EXPIRED:
        publish(run_id, event)
    else:
        publish(run_id, event, approver=_name(actor), comment=approval.comment)


FLOW_DECISIONS = {
    ApprovalState.APPROVED: (
        FlowRunStatus.IN_PROGRESS,
        AuditAction.FLOW_RUN_APPROVED,
        FlowEvent.APPROVED,
    ),
    ApprovalState.REJECTED: (
        FlowRunStatus.REJECTED,
        AuditAction.FLOW_RUN_REJECTED,
        FlowEvent.REJECTED,
    ),
    ApprovalState.EXPIRED: (
        FlowRunStatus.EXPIRED,
        AuditAction.FLOW_RUN_APPROVAL_EXPIRED,
        FlowEvent.EXPIRED,
    ),
}


def _settle_flow_run(approval: Approval, *, actor: User | None, ip: str | None) -> None:
    flow_run_id = approval.flow_run_id
    assert flow_run_id is not None
    said = _said(approval)
    status, action, event = FLOW_DECISIONS[ApprovalState(approval.state)]
    now = timezone.now()
    waiting = FlowRun.objects.filter(pk=flow_run_id, status=FlowRunStatus.AWAITING_APPROVAL)
    if approval.state == ApprovalState.APPROVED:
        waiting.update(status=status)
        dispatch.enqueue_flow_advance_on_commit(flow_run_id)
    else:
        reason = f"Not started: {said[0].lower()}{said[1:]}"[:500]
        waiting.update(status=status, finished_at=now, stop_reason=reason)
        FlowStepRun.objects.filter(flow_run_id=flow_run_id, state=StepState.PENDING).update(
            state=StepState.NOT_STARTED, reason=reason, ended_at=now
        )
    flow_run = FlowRun.objects.select_related("flow").get(pk=flow_run_id)
    audit.record(
        action,
        actor=actor,
        summary=f"Flow run {flow_run_id} of '{flow_run.flow.name}': {said}",
        obj=flow_run,
        details={"approval": approval.pk, "comment": approval.comment, "why": approval.why},
        ip=ip,
    )
    if approval.state == ApprovalState.EXPIRED:
        publish_flow_run(flow_run_id, event)
    else:
        publish_flow_run(flow_run_id, event, approver=_name(actor), comment=approval.comment)


def _name(user: AbstractBaseUser | None) -> str:
    return user.get_username() if user is not None else ""
