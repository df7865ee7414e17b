"""What a curation change changed, in words for the audit log (services/curation.py writes it).

Fields and parameters are named, never their texts or default values (a parameter may be
secret); who may run or resume a workflow, and whether employees see it, are access rules, so
their values before and after are kept too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Field

from workflows_app.models import AuditAction, ParameterDefinition, Workflow, WorkflowCuration
from workflows_app.services import audit

# Access rules: their values are worth keeping in the log (they hold nothing secret).
ACCESS_FIELDS = ("self_service", "allowed_roles", "resume_roles")
# The workflows an import's entry names at most (the rest are counted).
AUDITED_WORKFLOWS = 50

Snapshot = dict[str, Any]


def snapshot(
    workflow: Workflow, curation_fields: tuple[str, ...], parameter_fields: tuple[str, ...]
) -> Snapshot:
    """A workflow's stored curation and parameter definitions as plain values."""
    curation = WorkflowCuration.objects.filter(workflow=workflow).first()
    parameters = {
        p.name: {name: getattr(p, name) for name in (*parameter_fields, "position")}
        for p in ParameterDefinition.objects.filter(workflow=workflow)
    }
    values = (
        None if curation is None else {name: getattr(curation, name) for name in curation_fields}
    )
    return {"curation": values, "parameters": parameters}


@dataclass(frozen=True)
class CurationChange:
    """What one save changed (empty when nothing did)."""

    fields: tuple[str, ...] = ()
    access: tuple[tuple[str, Any, Any], ...] = ()  # (field, before, after)
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    reset: bool = False  # an import with "replace all" removed its curation
    registered: bool = False  # an import registered (or updated) this remote action

    def __bool__(self) -> bool:
        return bool(
            self.fields
            or self.added
            or self.removed
            or self.changed
            or self.reset
            or self.registered
        )

    def describe(self) -> str:
        """A short sentence: which fields and parameters changed."""
        if self.reset:
            return "curation and parameters removed"
        parts = ["remote action registered"] if self.registered else []
        if self.fields:
            parts.append(f"{', '.join(self.fields)} changed")
        for label, names in (
            ("added", self.added),
            ("removed", self.removed),
            ("changed", self.changed),
        ):
            if names:
                parts.append(f"parameter(s) {', '.join(names)} {label}")
        return "; ".join(parts) or "nothing changed"

    def as_details(self) -> dict[str, Any]:
        """The change as data for the audit entry."""
        details: dict[str, Any] = {
            "fields": list(self.fields),
            "parameters_added": list(self.added),
            "parameters_removed": list(self.removed),
            "parameters_changed": list(self.changed),
        }
        for name, before, after in self.access:
            details[name] = {"before": before, "after": after}
        if self.reset:
            details["reset"] = True
        return details


def _default(name: str) -> Any:
    """What a new curation holds in this field unless someone sets it."""
    field = WorkflowCuration._meta.get_field(name)
    assert isinstance(field, Field)
    return field.get_default()


def compare(before: Snapshot, after: Snapshot) -> CurationChange:
    """What changed between two snapshots of one workflow."""
    old, new = before["curation"] or {}, after["curation"] or {}
    fields = tuple(name for name in new if old.get(name) != new[name])
    if before["curation"] is None:  # a new curation: only what differs from the defaults counts
        fields = tuple(name for name in fields if new[name] != _default(name))
    access = tuple((name, old.get(name), new[name]) for name in ACCESS_FIELDS if name in fields)
    old_params, new_params = before["parameters"], after["parameters"]
    return CurationChange(
        fields=fields,
        access=access,
        added=tuple(sorted(set(new_params) - set(old_params))),
        removed=tuple(sorted(set(old_params) - set(new_params))),
        changed=tuple(
            sorted(n for n in set(old_params) & set(new_params) if old_params[n] != new_params[n])
        ),
    )


def changed(
    workflow: Workflow, change: CurationChange, *, user: User | None, ip: str | None
) -> None:
    """Audit one workflow's curation saved from the editor."""
    audit.record(
        AuditAction.CURATION_CHANGED,
        actor=user,
        summary=f"Curation of {workflow.nql_id}: {change.describe()}",
        obj=workflow,
        details={"workflow": workflow.nql_id, **change.as_details()},
        ip=ip,
    )


def imported(
    summary: str,
    changes: dict[str, CurationChange],
    *,
    unchanged: int,
    user: User | None,
    ip: str | None,
) -> None:
    """Audit an import: how many workflows changed, and which (with what, per workflow)."""
    named = dict(sorted(changes.items())[:AUDITED_WORKFLOWS])
    audit.record(
        AuditAction.CURATION_IMPORTED,
        actor=user,
        actor_name="" if user is not None else "import",
        summary=summary,
        details={
            "changed": sum(1 for change in changes.values() if not change.reset),
            "unchanged": unchanged,
            "reset": sum(1 for change in changes.values() if change.reset),
            "workflows": {nql_id: change.as_details() for nql_id, change in named.items()},
        },
        ip=ip,
    )
