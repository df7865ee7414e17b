"""Remote actions of the classic platform: which platforms are on, registering, finding, running.

The classic Act API has no list endpoint, so admins register each remote action (its UID from
Finder, a name, a description, parameter names); it becomes a catalogue row of kind
`remote_action` (UID as both `nql_id` and `uuid`) that curation, the run rule, the pipeline,
history and the API treat like a workflow. Flows and other callers resolve one with
`find_remote_action` and start it with `runs.create_run`, as a workflow.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from workflows_app.models import (
    AuditAction,
    ParameterDefinition,
    RunnableKind,
    Workflow,
    WorkflowCuration,
)
from workflows_app.nexthink.models import UUID_PATTERN, Dependency
from workflows_app.roles import Role
from workflows_app.services import audit
from workflows_app.services.curation_document import RemoteActionDoc

_UID = re.compile(UUID_PATTERN, re.ASCII)
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,99}", re.ASCII)
MAX_NAME = Workflow._meta.get_field("name").max_length or 255


class RegistrationError(ValueError):
    """A registration that cannot be made; `message` says what to correct."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class RemoteActionSpec:
    """What an admin says about a remote action when registering it."""

    uid: str
    name: str
    description: str = ""
    params: tuple[str, ...] = ()
    # None: leave as they are (a new registration: helpdesk and admins, not self-service).
    allowed_roles: tuple[str, ...] | None = None
    self_service: bool | None = None


def spec_problems(spec: RemoteActionSpec) -> list[str]:
    """Every reason this registration cannot be made (empty when it can)."""
    problems: list[str] = []
    if not _UID.fullmatch(spec.uid.strip()):
        problems.append(
            f"'{spec.uid[:60]}' is not a remote action UID: expected 8-4-4-4-12 hexadecimal "
            "digits (Finder: right-click the remote action, Export > Remote action Uid)."
        )
    name = spec.name.strip()
    if not name:
        problems.append("A remote action needs a name.")
    elif len(name) > MAX_NAME:
        problems.append(f"The name is too long ({len(name)} characters, at most {MAX_NAME}).")
    for param in spec.params:
        if not _PARAM_NAME.fullmatch(param):
            problems.append(
                f"'{param[:60]}' is not a parameter name: letters, digits, '_', '.', '-' only."
            )
    if len(set(spec.params)) != len(spec.params):
        problems.append("A parameter is named twice.")
    for role in spec.allowed_roles or ():
        if role not in (Role.HELPDESK.value, Role.ADMIN.value, Role.EMPLOYEE.value):
            problems.append(f"'{role}' is not a role (Employee, Helpdesk, Admin).")
    uid = spec.uid.strip().lower()
    if Workflow.objects.filter(nql_id=uid, kind=RunnableKind.WORKFLOW).exists():
        problems.append(f"{uid} is already a workflow's id.")
    if name and (
        Workflow.objects.filter(kind=RunnableKind.REMOTE_ACTION, name__iexact=name)
        .exclude(nql_id=uid)
        .exists()
    ):
        problems.append(f"Another remote action is already named '{name}'.")
    return problems


def register(
    spec: RemoteActionSpec, *, actor: User | None, ip: str | None = None, audited: bool = True
) -> tuple[Workflow, bool]:
    """Add or update a registered remote action; returns it and whether it is new.

    Raises RegistrationError listing every problem. Parameters named are added (existing
    definitions are kept as curated); the curation's roles and self-service are set only when
    given. Audited unless the caller audits a larger change itself (a curation import).
    """
    problems = spec_problems(spec)
    if problems:
        raise RegistrationError(" ".join(problems))
    uid, now = spec.uid.strip().lower(), timezone.now()
    with transaction.atomic():
        fields = {
            "kind": RunnableKind.REMOTE_ACTION,
            "uuid": uid,
            "name": spec.name.strip(),
            "description": spec.description.strip(),
            "status": Workflow.Status.ACTIVE,
            "dependency": Dependency.DEVICE.value,
            "trigger_api": True,
            "trigger_manual": True,
            "last_seen": now,
        }
        row, created = Workflow.objects.select_for_update().update_or_create(
            nql_id=uid,
            defaults={**fields, "removed_at": None},
            create_defaults={**fields, "first_seen": now},
        )
        _add_parameters(row, spec.params)
        if spec.allowed_roles is not None or spec.self_service is not None:
            curation, _ = WorkflowCuration.objects.get_or_create(workflow=row)
            if spec.allowed_roles is not None:
                curation.allowed_roles = list(spec.allowed_roles)
            if spec.self_service is not None:
                curation.self_service = spec.self_service
            curation.updated_by = actor
            curation.save()
        if audited:
            verb = "registered" if created else "updated"
            audit.record(
                AuditAction.REMOTE_ACTION_REGISTERED,
                actor=actor,
                summary=f"Remote action {row.name} ({uid}) {verb}",
                obj=row,
                details={
                    "uid": uid,
                    "name": row.name,
                    "params": list(spec.params),
                    "created": created,
                    "allowed_roles": list(spec.allowed_roles or ()),
                    "self_service": spec.self_service,
                },
                ip=ip,
            )
    return row, created


def _add_parameters(row: Workflow, names: Sequence[str]) -> None:
    """Define the parameters named that are not defined yet, after the existing ones."""
    existing = set(row.parameters.values_list("name", flat=True))
    position = (row.parameters.aggregate(top=Max("position"))["top"] or 0) + 1
    for name in names:
        if name not in existing:
            ParameterDefinition.objects.create(workflow=row, name=name, position=position)
            position += 1


def find_remote_action(uid_or_name: str) -> Workflow | None:
    """The registered remote action with this UID (any case), else with this name (any case)."""
    wanted = uid_or_name.strip()
    rows = Workflow.objects.filter(kind=RunnableKind.REMOTE_ACTION).select_related("curation")
    return (
        rows.filter(nql_id=wanted.lower()).first()
        or rows.filter(name__iexact=wanted).order_by("pk").first()
    )


# --- the curation document's `remote_actions` (services/curation.py) ---------------------------


def document_entries() -> list[dict[str, str]]:
    """Every registered remote action still present, as the curation document lists them."""
    rows = Workflow.objects.filter(kind=RunnableKind.REMOTE_ACTION, removed_at__isnull=True)
    entries = [{"uid": w.nql_id, "name": w.name, "description": w.description} for w in rows]
    return sorted(entries, key=lambda e: e["uid"])  # sorted here: no collation in the bytes


def _spec(entry: RemoteActionDoc) -> RemoteActionSpec:
    return RemoteActionSpec(uid=entry.uid, name=entry.name, description=entry.description)


def document_problems(entries: Sequence[tuple[int, RemoteActionDoc]]) -> list[str]:
    """Every problem of the document's remote actions, as `remote_actions[i]: message`."""
    errors: list[str] = []
    first_at: dict[str, int] = {}
    for index, entry in entries:
        at = f"remote_actions[{index}]"
        uid = entry.uid.strip().lower()
        if uid in first_at:
            errors.append(f"{at}.uid: '{uid}' is already listed at remote_actions[{first_at[uid]}]")
        first_at.setdefault(uid, index)
        errors += [f"{at}: {problem}" for problem in spec_problems(_spec(entry))]
    names = [entry.name.strip().lower() for _, entry in entries]
    for index, entry in entries:
        if names.count(entry.name.strip().lower()) > 1:
            errors.append(f"remote_actions[{index}].name: '{entry.name}' is listed twice")
    return errors


def register_listed(
    entries: Sequence[tuple[int, RemoteActionDoc]], *, actor: User | None
) -> list[str]:
    """Register (or update) the document's remote actions; returns the UIDs that changed.

    The caller checked `document_problems` and audits the import as a whole.
    """
    changed: list[str] = []
    for _, entry in entries:
        spec = _spec(entry)
        uid = spec.uid.strip().lower()
        row = Workflow.objects.filter(nql_id=uid).first()
        same = row is not None and (row.name, row.description, row.removed_at) == (
            spec.name.strip(),
            spec.description.strip(),
            None,
        )
        if not same:
            register(spec, actor=actor, audited=False)
            changed.append(uid)
    return changed
