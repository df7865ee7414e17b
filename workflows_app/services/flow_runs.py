"""Starting a flow run: the run rule for every step, the targets against the flow's dependency,
then the flow run and its steps in one transaction with its first steps started."""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.auth.models import User
from django.db import transaction

from workflows_app import permissions
from workflows_app import targets as targets_mod
from workflows_app.models import (
    AuditAction,
    Flow,
    FlowRun,
    FlowRunStatus,
    FlowStepRun,
    FlowVersion,
    Run,
    StepOutcome,
    StepState,
)
from workflows_app.roles import user_role
from workflows_app.services import approvals, audit, flow_engine
from workflows_app.services.flow_referrers import Referrer, resolve
from workflows_app.services.notifications import FlowEvent, publish_flow_run


class FlowRunRefused(Exception):
    """A flow run that must not start; `messages` say why, `forbidden` when it is the person."""

    def __init__(self, messages: list[str], *, forbidden: bool = False) -> None:
        super().__init__(" ".join(messages))
        self.messages = messages
        self.forbidden = forbidden


def flow_dependency(version: FlowVersion) -> str:
    """What the flow's targets must be: the dependency its runnable steps share."""
    found = resolve(s["referrer"] for s in version.steps if not s["is_skipped"])
    for step in version.steps:
        referrer = found.get(step["referrer"])
        if referrer is not None and not step["is_skipped"]:
            return referrer.dependency
    return "DEVICE"


def check_permits(
    user: User, version: FlowVersion, source: Run.Source, *, offered: bool = False
) -> dict[str, Referrer]:
    """Ask the run rule for every step that will run; raise FlowRunRefused naming each refusal."""
    found = resolve(s["referrer"] for s in version.steps)
    refused: list[str] = []
    forbidden = False
    for step in version.steps:
        if step["is_skipped"]:
            continue
        referrer = found.get(step["referrer"])
        if referrer is None or referrer.workflow is None:
            refused.append(f"Step '{step['id']}': '{step['referrer']}' is not in the catalogue.")
            continue
        try:
            permissions.permit_flow_step(user, referrer.workflow, source, offered_flow=offered)
        except permissions.Refusal as exc:
            forbidden |= isinstance(exc, permissions.NotAllowed)
            refused.append(f"Step '{step['id']}': {exc.message}")
    if refused:
        raise FlowRunRefused(refused, forbidden=forbidden)
    return found


def check_flow_run(
    *, user: User, flow: Flow, targets: Sequence[targets_mod.Target], source: Run.Source
) -> FlowVersion:
    """The flow's current version if this person may run it on these targets, or FlowRunRefused
    saying why; writes nothing, so a confirmation page can ask it first."""
    if flow.deleted_at is not None:
        raise FlowRunRefused([f"The flow '{flow.name}' was deleted."])
    version = flow.versions.get(number=flow.version)
    if source == Run.Source.SELF_SERVICE and not flow.self_service:
        raise FlowRunRefused([f"'{flow.name}' is not offered for self-service."], forbidden=True)
    check_permits(user, version, source, offered=flow.self_service)
    if not targets:
        raise FlowRunRefused(["No targets: give one device or user per line."])
    if len(targets) > targets_mod.MAX_TARGETS_PER_RUN:
        raise FlowRunRefused([targets_mod.too_many_targets(len(targets))])
    problems = targets_mod.check_dependency(targets, flow_dependency(version))
    if problems:
        raise FlowRunRefused(problems)
    return version


def approval_need(
    flow: Flow, version: FlowVersion, target_count: int
) -> approvals.Requirement | None:
    """Whether a run of this version must wait for approval: the flow's own flag, a step's
    workflow's, or its size (services/approvals.py)."""
    found = resolve(s["referrer"] for s in version.steps if not s["is_skipped"])
    workflows = [r.workflow for r in found.values() if r.workflow is not None]
    return approvals.flow_requirement(flow, workflows, target_count)


def start_flow_run(
    *,
    user: User,
    flow: Flow,
    targets: Sequence[targets_mod.Target],
    reason: str,
    source: Run.Source,
    ip: str | None = None,
) -> FlowRun:
    """Record a flow run of the flow's current version and start the steps that can start."""
    version = check_flow_run(user=user, flow=flow, targets=targets, source=source)
    role = user_role(user)
    need = approval_need(flow, version, len(targets))
    with transaction.atomic():
        flow_run = FlowRun.objects.create(
            flow=flow,
            flow_version=version,
            created_by=user,
            role=role.value if role is not None else "",
            source=source,
            reason=reason.strip()[:500],
            targets=targets_mod.to_session_text(targets),
            target_count=len(targets),
            status=FlowRunStatus.IN_PROGRESS if need is None else FlowRunStatus.AWAITING_APPROVAL,
        )
        FlowStepRun.objects.bulk_create(
            FlowStepRun(
                flow_run=flow_run,
                step_id=step["id"],
                position=position,
                state=StepState.SKIPPED if step["is_skipped"] else StepState.PENDING,
                outcome=StepOutcome.SUCCESS if step["is_skipped"] else "",
                reason="Skipped in the flow's definition." if step["is_skipped"] else "",
            )
            for position, step in enumerate(version.steps)
        )
        audit.record(
            AuditAction.FLOW_RUN_CREATED,
            actor=user,
            summary=(
                f"Flow run {flow_run.pk}: {user.get_username()} started '{flow.name}' "
                f"(version {version.number}) on {len(targets):,} target(s)"
                + (f": {flow_run.reason}" if flow_run.reason else "")
            ),
            obj=flow_run,
            details={
                "flow": flow.pk,
                "version": version.number,
                "targets": len(targets),
                "source": source,
                "reason": flow_run.reason,
            },
            ip=ip,
        )
        publish_flow_run(flow_run.pk, FlowEvent.CREATED)
        if need is None:
            flow_engine.advance(flow_run.pk)
        else:
            approvals.request_for_flow_run(flow_run, need)
    flow_run.refresh_from_db()
    return flow_run
