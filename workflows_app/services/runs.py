"""Creating a run the run rule permits: the run, its batches and its targets in one transaction,
then queued for sending."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import timedelta
from operator import attrgetter

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from workflows_app import permissions
from workflows_app import targets as targets_mod
from workflows_app.models import (
    AuditAction,
    Batch,
    BatchState,
    PortalSettings,
    Run,
    RunEventKind,
    RunStatus,
    Workflow,
)
from workflows_app.permissions import RunPermit
from workflows_app.services import approvals, audit, dispatch, timeline
from workflows_app.services.notifications import Event, publish
from workflows_app.services.params import MASK, split_secrets, validate_params
from workflows_app.services.secrets import encrypt_dict
from workflows_app.services.target_insert import TargetRow, insert_targets


class RunRefused(Exception):
    """A run that must not be created; `message` says why and what to do instead."""

    def __init__(self, message: str, existing_run: Run | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.existing_run = existing_run

    def __str__(self) -> str:
        return self.message


def create_run(
    *,
    user: User,
    workflow: Workflow,
    targets: Sequence[targets_mod.Target],
    params: Mapping[str, str],
    reason: str,
    source: Run.Source,
    duplicate_count: int = 0,
    allow_duplicate: bool = False,
    ip: str | None = None,
) -> Run:
    """Ask the run rule (workflows_app.permissions) once, then create the run it permits.

    For callers with nothing to show between the two (the CLI, tests, benchmarks); a page that
    already asked the rule hands its permit to `create_permitted_run` instead. Refuses
    (RunRefused) whatever either refuses.
    """
    try:
        granted = permissions.permit(user, workflow, source)
    except permissions.Refusal as exc:
        raise RunRefused(exc.message) from exc
    return create_permitted_run(
        granted,
        targets=targets,
        params=params,
        reason=reason,
        duplicate_count=duplicate_count,
        allow_duplicate=allow_duplicate,
        ip=ip,
    )


def create_permitted_run(
    permit: RunPermit,
    *,
    targets: Sequence[targets_mod.Target],
    params: Mapping[str, str],
    reason: str,
    duplicate_count: int = 0,
    allow_duplicate: bool = False,
    again_of: Run | None = None,
    ip: str | None = None,
    approved: bool = False,
) -> Run:
    """Record the run a permit allows with its batches and targets; queue each batch on commit.

    A run that needs approval (services/approvals.py) is created awaiting it instead: its
    batches held, nothing queued until an approver says yes. `approved`: it was approved as a
    whole already (a step of an approved flow run).

    Refuses (RunRefused) when the targets do not suit the workflow, the parameters are invalid,
    or the same run was just asked for (unless `allow_duplicate`, or unless the person asked to
    run `again_of`, an earlier run of this workflow they may open, again: then the repeat is
    meant, and the new run's timeline and audit entry say which run it repeats).
    """
    user, workflow = permit.user, permit.workflow
    if again_of is not None and again_of.workflow_id != workflow.pk:
        raise RunRefused(f"Run {again_of.pk} is not a run of {workflow.name}.")
    _check_targets(workflow, targets)
    clean, errors = validate_params(workflow, dict(params))
    if errors:
        listed = "; ".join(f"{name}: {message}" for name, message in errors.items())
        raise RunRefused(f"The parameters are not valid: {listed}")
    public, secret = split_secrets(workflow, clean)
    masked = {**public, **dict.fromkeys(secret, MASK)}
    fingerprint = _fingerprint(workflow, targets, masked)
    # A remote action goes through the classic Act API, which has no version to choose.
    api_version = "" if workflow.is_remote_action else targets_mod.api_version(targets)
    need = None if approved else approvals.requirement(workflow, len(targets))

    with transaction.atomic():
        # One creation at a time per person: the double-click guard below must see the first run.
        get_user_model().objects.select_for_update().filter(pk=user.pk).exists()
        if not allow_duplicate and again_of is None:
            _check_not_duplicate(user, workflow, fingerprint)
        run = Run.objects.create(
            created_by=user,
            role=permit.role.value,
            source=permit.source,
            workflow=workflow,
            kind=workflow.kind,
            workflow_nql_id=workflow.nql_id,
            workflow_uuid=workflow.uuid,
            workflow_name=workflow.name,
            dependency=workflow.dependency,
            params=masked,
            secret_params=encrypt_dict(secret),
            reason=reason.strip()[:500],
            api_version=api_version,
            target_count=len(targets),
            duplicate_count=duplicate_count,
            status=RunStatus.QUEUED if need is None else RunStatus.AWAITING_APPROVAL,
            target_fingerprint=fingerprint,
        )
        state = BatchState.QUEUED if need is None else BatchState.HELD
        batch_ids = _write_batches_and_targets(
            run, targets, api_version, batch_size(workflow), state
        )
        _record_creation(run, user, ip, batches=len(batch_ids), again_of=again_of)
        publish(run.pk, Event.CREATED)
        if need is not None:
            approvals.request_for_run(run, need)
            return run
        priority = dispatch.batch_priority(len(targets))
        for batch_id in batch_ids:
            dispatch.enqueue_batch_on_commit(batch_id, priority=priority)
    return run


def _record_creation(
    run: Run, user: User, ip: str | None, *, batches: int, again_of: Run | None
) -> None:
    """The new run on its own timeline and in the audit log (parameters as shown: masked)."""
    said = (
        f"{user.get_username()} ({run.role or 'no role'}, {run.get_source_display()}) started "
        f"{run.workflow_name} on {run.target_count:,} target(s) in {batches} batch(es)"
    )
    if again_of is not None:
        said += f", running run {again_of.pk} again"
    again = {"again_of": again_of.pk} if again_of is not None else {}
    timeline.note(
        run.pk,
        RunEventKind.CREATED,
        said + (f": {run.reason}" if run.reason else "."),
        actor=user,
        details={"params": run.params, "duplicates": run.duplicate_count, **again},
    )
    audit.record(
        AuditAction.RUN_CREATED,
        actor=user,
        summary=f"Run {run.pk}: {said}",
        obj=run,
        details={
            "workflow": run.workflow_nql_id,
            "kind": run.kind,
            "targets": run.target_count,
            "source": run.source,
            "reason": run.reason,
            "params": run.params,
            **again,
        },
        ip=ip,
    )


def batch_size(workflow: Workflow) -> int:
    """Targets per request: Nexthink's limit, or NEXTHINK_CLASSIC_BATCH_SIZE for a remote action."""
    if workflow.is_remote_action:
        return max(1, min(int(settings.NEXTHINK_CLASSIC_BATCH_SIZE), targets_mod.MAX_TARGETS))
    return targets_mod.MAX_TARGETS


def _write_batches_and_targets(
    run: Run,
    targets: Sequence[targets_mod.Target],
    api_version: str,
    size: int,
    state: BatchState = BatchState.QUEUED,
) -> list[int]:
    """Insert the run's batches and, in bulk, its targets; returns the batch ids in order."""
    # batches() keeps the objects it is given, so identity maps each back to its position.
    positions: dict[int, list[int]] = {}
    for index, t in enumerate(targets):
        positions.setdefault(id(t), []).append(index)
    batch_ids: list[int] = []
    rows: list[TargetRow] = []
    for number, chunk in enumerate(targets_mod.batches(targets, size), start=1):
        batch = Batch.objects.create(
            run=run,
            number=number,
            state=state,
            api_version=api_version,
            target_count=len(chunk),
        )
        batch_ids.append(batch.pk)
        rows.extend((batch.pk, positions[id(t)].pop(0), *targets_mod.to_row(t)) for t in chunk)
    insert_targets(run.pk, rows)
    return batch_ids


def _check_targets(workflow: Workflow, targets: Sequence[targets_mod.Target]) -> None:
    """Refuse too many targets, or targets that do not suit the workflow's dependency."""
    if len(targets) > targets_mod.MAX_TARGETS_PER_RUN:
        raise RunRefused(targets_mod.too_many_targets(len(targets)))
    problems = targets_mod.check_dependency(targets, workflow.dependency)
    if problems:
        raise RunRefused(" ".join(problems))
    classic = [t.kind is targets_mod.TargetKind.DEVICE_CLASSIC_UID for t in targets]
    if workflow.is_remote_action and not all(classic):
        first = targets[classic.index(False)]
        raise RunRefused(
            f"{workflow.name} is a remote action: it runs on classic device UIDs only "
            f"(32 hexadecimal digits); line {first.line} is not one."
        )
    if not workflow.is_remote_action and any(classic):
        raise RunRefused(
            f"{workflow.name} is a workflow: classic device UIDs cannot be sent to it."
        )


def _fingerprint(
    workflow: Workflow, targets: Sequence[targets_mod.Target], params: Mapping[str, str]
) -> str:
    """A digest of what was asked (workflow, sorted targets, shown params) to spot double clicks."""
    digest = hashlib.sha256(f"{workflow.pk}\n".encode())
    # Sorting the lines orders them as sorting (kind, value) pairs would, since no kind is a
    # prefix of another and no value holds a character below "\n"; plain strings sort several
    # times faster than tuples, and one update replaces 100,000 small ones.
    lines = sorted([f"{kind}:{value}\n" for kind, value in map(attrgetter("key"), targets)])
    digest.update("".join(lines).encode())
    digest.update(json.dumps(dict(params), sort_keys=True).encode())
    return digest.hexdigest()


def _check_not_duplicate(user: User, workflow: Workflow, fingerprint: str) -> None:
    """Refuse the same run by the same person within the admin-set double-click window."""
    minutes = PortalSettings.load().duplicate_window_minutes
    if not minutes:
        return
    since = timezone.now() - timedelta(minutes=minutes)
    existing = (
        Run.objects.filter(
            created_by=user,
            workflow=workflow,
            target_fingerprint=fingerprint,
            created_at__gte=since,
        )
        .order_by("-created_at")
        .first()
    )
    if existing is not None:
        raise RunRefused(
            f"You asked for the same run (run {existing.pk}) less than {minutes} minutes ago; "
            "it was not started twice.",
            existing_run=existing,
        )
