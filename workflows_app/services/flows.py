"""Writing flows: create, edit (each edit a new version), delete, import; every change audited.

Every door (the API, the import, the editor) checks a flow input with `check_flow`; nothing is
written unless it passes, and an import applies all its flows or none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from workflows_app.models import AuditAction, Flow, FlowVersion
from workflows_app.services import audit
from workflows_app.services.flow_referrers import resolve
from workflows_app.services.flow_rules import (
    FlowIn,
    flow_problems,
    normalised_steps,
    nul_paths,
    schema_errors,
)

MAX_IMPORT_FLOWS = 500


class FlowInvalid(Exception):
    """A flow input (or an import) was refused; `errors` lists every problem as `path: msg`."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__(f"{len(errors)} problem(s); nothing was saved.")


def check_flow(data: Any, at: str = "") -> tuple[FlowIn | None, list[str]]:
    """The typed flow input and every problem with it: the schema's, then the rules'."""
    nul = nul_paths(data, at)
    if nul:  # PostgreSQL cannot store NUL: refused before anything reads the text
        return None, [f"{path}: must not contain NUL characters." for path in nul]
    flow, errors = schema_errors(data, at)
    if flow is None:
        return None, errors
    referrers = resolve(step.referrer for step in flow.steps)
    return flow, flow_problems(flow, referrers, at)


def _name_taken(name: str, exclude: int | None = None) -> bool:
    rows = Flow.objects.filter(name__iexact=name.strip(), deleted_at__isnull=True)
    return rows.exclude(pk=exclude).exists() if exclude else rows.exists()


def create_flow(*, user: User, data: Any, ip: str | None = None) -> Flow:
    """A new flow and its version 1; raises FlowInvalid."""
    flow_in, errors = check_flow(data)
    if flow_in is not None and _name_taken(flow_in.name):
        errors.append(f"name: a flow named '{flow_in.name}' already exists.")
    if errors or flow_in is None:
        raise FlowInvalid(errors)
    with transaction.atomic():
        flow = _write_new(flow_in, user)
        _audit(AuditAction.FLOW_CHANGED, user, flow, f"created flow '{flow.name}'", ip)
    return flow


def _write_new(flow_in: FlowIn, user: User | None) -> Flow:
    flow = Flow.objects.create(
        name=flow_in.name.strip(),
        self_service=flow_in.self_service,
        requires_approval=flow_in.requires_approval,
        approver_role=flow_in.approver_role,
        version=1,
        created_by=user,
        modified_by=user,
    )
    FlowVersion.objects.create(
        flow=flow, number=1, name=flow.name, steps=normalised_steps(flow_in), created_by=user
    )
    return flow


def update_flow(*, flow: Flow, user: User, data: Any, ip: str | None = None) -> Flow:
    """A new version of `flow` from a whole flow input; raises FlowInvalid."""
    flow_in, errors = check_flow(data)
    if flow_in is not None and _name_taken(flow_in.name, exclude=flow.pk):
        errors.append(f"name: another flow is named '{flow_in.name}'.")
    if errors or flow_in is None:
        raise FlowInvalid(errors)
    with transaction.atomic():
        _write_version(flow, flow_in, user)
        _audit(
            AuditAction.FLOW_CHANGED,
            user,
            flow,
            f"saved version {flow.version} of '{flow.name}'",
            ip,
        )
    return flow


def _write_version(flow: Flow, flow_in: FlowIn, user: User | None) -> None:
    # Locked: two edits at once make versions n+1 and n+2, never two n+1.
    locked = Flow.objects.select_for_update().get(pk=flow.pk)
    number = locked.version + 1
    FlowVersion.objects.create(
        flow=locked,
        number=number,
        name=flow_in.name.strip(),
        steps=normalised_steps(flow_in),
        created_by=user,
    )
    Flow.objects.filter(pk=flow.pk).update(
        name=flow_in.name.strip(),
        self_service=flow_in.self_service,
        requires_approval=flow_in.requires_approval,
        approver_role=flow_in.approver_role,
        version=number,
        modified_at=timezone.now(),
        modified_by=user,
    )
    flow.refresh_from_db()


def delete_flow(*, flow: Flow, user: User, ip: str | None = None) -> None:
    """Hide the flow from everyone; its runs and versions stay for the history."""
    with transaction.atomic():
        Flow.objects.filter(pk=flow.pk, deleted_at__isnull=True).update(
            deleted_at=timezone.now(), modified_by=user, modified_at=timezone.now()
        )
        _audit(AuditAction.FLOW_DELETED, user, flow, f"deleted flow '{flow.name}'", ip)


def import_flows(*, user: User | None, items: Any, ip: str | None = None) -> list[Flow]:
    """Create or (same name) add a version to each flow of a list, all or none."""
    if not isinstance(items, list):
        raise FlowInvalid(["flows: a JSON array of flow inputs is expected."])
    if len(items) > MAX_IMPORT_FLOWS:
        raise FlowInvalid([f"flows: at most {MAX_IMPORT_FLOWS} flows in one import."])
    checked: list[FlowIn] = []
    errors: list[str] = []
    first_at: dict[str, int] = {}
    for index, item in enumerate(items):
        flow_in, found = check_flow(item, f"[{index}]")
        errors += found
        if flow_in is None:
            continue
        key = flow_in.name.strip().casefold()
        if key in first_at:
            errors.append(f"[{index}].name: '{flow_in.name}' is already flow [{first_at[key]}].")
        first_at.setdefault(key, index)
        checked.append(flow_in)
    if errors:
        raise FlowInvalid(errors)
    with transaction.atomic():
        saved = [_import_one(flow_in, user) for flow_in in checked]
        _audit(
            AuditAction.FLOW_IMPORTED,
            user,
            None,
            f"imported {len(saved)} flow(s): " + ", ".join(f.name for f in saved),
            ip,
        )
    return saved


def _import_one(flow_in: FlowIn, user: User | None) -> Flow:
    existing = Flow.objects.filter(name__iexact=flow_in.name.strip(), deleted_at__isnull=True)
    flow = existing.first()
    if flow is None:
        return _write_new(flow_in, user)
    _write_version(flow, flow_in, user)
    return flow


def export_items(flows: Sequence[Flow]) -> list[dict[str, Any]]:
    """The flows' current versions as flow inputs: what the import reads back."""
    versions = {
        (v.flow_id, v.number): v
        for v in FlowVersion.objects.filter(flow__in=flows).order_by("flow", "number")
    }
    return [
        {
            "name": flow.name,
            "version": "2.0",
            "type": "IntegrationFlow",
            "self_service": flow.self_service,
            # Only when set: exports of flows without approval keep their bytes.
            **(
                {"requires_approval": True, "approver_role": flow.approver_role}
                if flow.requires_approval
                else {}
            ),
            "steps": versions[(flow.pk, flow.version)].steps,
        }
        for flow in flows
    ]


def _audit(
    action: AuditAction, user: User | None, flow: Flow | None, said: str, ip: str | None
) -> None:
    who = user.get_username() if user is not None else "An import without a person"
    audit.record(
        action,
        actor=user,
        summary=f"{who} {said}",
        obj=flow,
        details={"flow": flow.pk, "version": flow.version} if flow is not None else {},
        ip=ip,
    )
