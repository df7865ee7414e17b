"""Curation as data: every workflow's curation as one JSON document, exported and imported back.

The document is what admins keep under version control and move between portals. Export is
deterministic (workflows by NQL id, parameters by position, fixed key order), so
export -> import -> export gives the same bytes apart from `exported_at`.

Import validates the whole document before it writes anything, reports every problem with its
JSON path, and applies nothing unless all of it is valid. Workflows the document does not list
keep their curation, so a document may curate a few workflows only; with `replace_all=True` the
document is the whole truth and the others lose their curation and parameter definitions.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Prefetch, Q

from workflows_app.models import Flow, ParameterDefinition, Workflow, WorkflowCuration
from workflows_app.permissions import self_service_warnings
from workflows_app.services import curation_audit, flows, remote_actions
from workflows_app.services.curation_document import (
    FORMAT,
    MAX_DOCUMENT_BYTES,
    VERSION,
    CurationDocument,
    CurationImportError,
    ParameterDoc,
    ParameterType,
    WorkflowCurationDoc,
    listed_nql_ids,
    listed_remote_actions,
    parse_document,
    validate_document,
)
from workflows_app.services.curation_rules import (
    ROLE_NAMES,
    ParameterSpec,
    approver_role_problems,
    curation_problems,
    parameter_problems,
    parameter_set_problems,
    resume_role_problems,
)

__all__ = [
    "FORMAT",
    "MAX_DOCUMENT_BYTES",
    "VERSION",
    "CurationDocument",
    "CurationFields",
    "CurationImportError",
    "ImportResult",
    "ParameterDoc",
    "ParameterType",
    "WorkflowCurationDoc",
    "dump_curation",
    "export_curation",
    "import_curation",
    "save_curation",
]

PARAMETER_FIELDS = (
    "label",
    "help_text",
    "type",
    "required",
    "default",
    "choices",
    "pattern",
    "secret",
)
CURATION_FIELDS = (
    "self_service",
    "title",
    "description",
    "category",
    "confirmation_text",
    "allowed_roles",
    "resume_roles",
    "requires_approval",
    "approver_role",
)


@dataclass(frozen=True)
class CurationFields:
    """A workflow's curation settings as plain values (what the form and the import save)."""

    self_service: bool = False
    title: str = ""
    description: str = ""
    category: str = ""
    confirmation_text: str = ""
    allowed_roles: list[str] = field(default_factory=list)
    resume_roles: list[str] = field(default_factory=list)
    requires_approval: bool = False
    approver_role: str = ""


@dataclass(frozen=True)
class ImportResult:
    """What an import changed."""

    changed: int
    unchanged: int
    parameters_written: int
    reset: int
    warnings: list[str]
    registered: tuple[str, ...] = ()

    def summary(self) -> str:
        """One sentence for the admin."""
        text = (
            f"Curation imported: {self.changed} workflow(s) updated, {self.unchanged} "
            f"unchanged, {self.parameters_written} parameter definition(s) written"
        )
        if self.registered:
            text += f", {len(self.registered)} remote action(s) registered or updated"
        if self.reset:
            text += f", {self.reset} workflow(s) not in the document reset"
        return text + "."


# ---------------------------------------------------------------------------- export


def export_curation() -> dict[str, Any]:
    """Every workflow that has a curation or parameter definitions, as one document."""
    workflows = (
        Workflow.objects.filter(Q(curation__isnull=False) | Q(parameters__isnull=False))
        .distinct()
        .select_related("curation")
        .prefetch_related(
            Prefetch("parameters", queryset=ParameterDefinition.objects.order_by("position", "id"))
        )
    )
    # Sorted here rather than in SQL: database collations must not change the bytes.
    entries = sorted((_entry(workflow) for workflow in workflows), key=lambda e: e["nql_id"])
    exported_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    document: dict[str, Any] = {"format": FORMAT, "version": VERSION, "exported_at": exported_at}
    registered = remote_actions.document_entries()
    if registered:  # left out when there is none, so cloud-only exports keep their bytes
        document["remote_actions"] = registered
    document["workflows"] = entries
    live = list(Flow.objects.filter(deleted_at__isnull=True).order_by("name", "pk"))
    if live:  # only then: a portal without flows exports what it always did
        document["flows"] = flows.export_items(live)
    return document


def dump_curation(document: dict[str, Any]) -> str:
    """The document as the text every export writes (stable indentation, UTF-8, final newline)."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _entry(workflow: Workflow) -> dict[str, Any]:
    """A workflow's document entry, in the key order of `WorkflowCurationDoc`."""
    curation = workflow.curation_or_none
    values = (
        CurationFields()
        if curation is None
        else CurationFields(
            self_service=curation.self_service,
            title=curation.title,
            description=curation.description,
            category=curation.category,
            confirmation_text=curation.confirmation_text,
            allowed_roles=_roles_for_export(curation.allowed_roles),
            resume_roles=_roles_for_export(curation.resume_roles),
            requires_approval=curation.requires_approval,
            approver_role=curation.approver_role,
        )
    )
    parameters = [_parameter_entry(p) for p in workflow.parameters.all()]
    return {"nql_id": workflow.nql_id, **asdict(values), "parameters": parameters}


def _parameter_entry(parameter: ParameterDefinition) -> dict[str, Any]:
    """A parameter's document entry; a secret's default is never exported, whatever is stored."""
    choices = parameter.choices if isinstance(parameter.choices, list) else []
    return {
        "name": parameter.name,
        "label": parameter.label,
        "help_text": parameter.help_text,
        "type": parameter.type,
        "required": parameter.required,
        "default": "" if parameter.secret else parameter.default,
        "choices": [str(c.get("value", "")) if isinstance(c, dict) else str(c) for c in choices],
        "pattern": parameter.pattern,
        "secret": parameter.secret,
    }


def _roles_for_export(roles: object) -> list[str]:
    """Known roles in the fixed order, then anything else as stored (the import will flag it)."""
    if not isinstance(roles, list):
        return []
    order = {name: index for index, name in enumerate(ROLE_NAMES)}
    return sorted((str(r) for r in roles), key=lambda r: order.get(r, len(order)))


# ---------------------------------------------------------------------------- import


def import_curation(
    doc: dict[str, Any] | str | bytes,
    *,
    user: User | None,
    replace_all: bool = False,
    ip: str | None = None,
) -> ImportResult:
    """Validate the whole document, then apply it in one transaction, or raise with every error.

    An import that changes something is audited once, naming the workflows it changed.
    """
    data, notes = parse_document(doc)
    with transaction.atomic():
        listed = listed_nql_ids(data)
        actions = listed_remote_actions(data)
        catalogue = _locked(listed)
        # The document's remote actions count as known: they are registered before it applies.
        known = {*catalogue, *(entry.uid.strip().lower() for _, entry in actions)}
        document, errors = validate_document(data, known)
        errors = notes + errors + remote_actions.document_problems(actions)
        if errors or document is None:
            raise CurationImportError(errors or ["document: could not be read."])
        registered = remote_actions.register_listed(actions, actor=user)
        if registered:
            catalogue = _locked(listed)
        result, changes = _apply(document, catalogue, user=user, replace_all=replace_all)
        if document.flows:
            try:  # checked against the parameters just applied; an error undoes everything
                flows.import_flows(user=user, items=document.flows, ip=ip)
            except flows.FlowInvalid as exc:
                raise CurationImportError(
                    [f"flows{e}" if e.startswith("[") else e for e in exc.errors]
                ) from None
        result = replace(result, registered=tuple(registered))
        for uid in registered:
            changes[uid] = replace(
                changes.get(uid, curation_audit.CurationChange()), registered=True
            )
        if result.changed or result.reset or result.registered:
            curation_audit.imported(
                result.summary(), changes, unchanged=result.unchanged, user=user, ip=ip
            )
        return result


def _locked(nql_ids: set[str]) -> dict[str, Workflow]:
    """The catalogue rows with these ids, locked until the import's transaction ends."""
    rows = Workflow.objects.select_for_update().filter(nql_id__in=nql_ids).order_by("pk")
    return {w.nql_id: w for w in rows}


def save_curation(
    *,
    workflow: Workflow,
    values: CurationFields,
    parameters: Sequence[ParameterSpec],
    user: User | None,
    ip: str | None = None,
) -> int:
    """Store one workflow's curation and replace its parameter set exactly; returns #parameters.

    Callers validate first (form or import); the rules are checked again here so that no
    path can store what they refuse. A save that changes something is audited (what changed,
    in names: fields and parameters, never values of parameters).
    """
    with transaction.atomic():
        change = _save(workflow, values, parameters, user)
        if change:
            curation_audit.changed(workflow, change, user=user, ip=ip)
    return len(parameters)


def _save(
    workflow: Workflow,
    values: CurationFields,
    parameters: Sequence[ParameterSpec],
    user: User | None,
) -> curation_audit.CurationChange:
    """Check and write one workflow's curation; return what changed."""
    problems = curation_problems(
        self_service=values.self_service, allowed_roles=values.allowed_roles
    )
    problems += resume_role_problems(values.resume_roles)
    problems += approver_role_problems(values.approver_role)
    problems += [p for spec in parameters for p in parameter_problems(spec)]
    problems += [p for _, p in parameter_set_problems([spec.name for spec in parameters])]
    if problems:
        raise ValueError(f"Refusing invalid curation of {workflow.nql_id}: {problems}")
    with transaction.atomic():
        # One writer per workflow at a time: two saves interleaving could break the name constraint.
        Workflow.objects.select_for_update().filter(pk=workflow.pk).first()
        before = curation_audit.snapshot(workflow, CURATION_FIELDS, PARAMETER_FIELDS)
        _write(workflow, values, parameters, user)
        after = curation_audit.snapshot(workflow, CURATION_FIELDS, PARAMETER_FIELDS)
        return curation_audit.compare(before, after)


def _write(
    workflow: Workflow,
    values: CurationFields,
    parameters: Sequence[ParameterSpec],
    user: User | None,
) -> None:
    """Upsert the curation row; update kept parameters in place, create new ones, drop the rest."""
    stored = {
        **asdict(values),
        "allowed_roles": _roles_for_export(values.allowed_roles),
        "resume_roles": _roles_for_export(values.resume_roles),
    }
    WorkflowCuration.objects.update_or_create(
        workflow=workflow, defaults={**stored, "updated_by": user}
    )
    existing = {p.name: p for p in ParameterDefinition.objects.filter(workflow=workflow)}
    wanted = {spec.name for spec in parameters}
    ParameterDefinition.objects.filter(workflow=workflow).exclude(name__in=wanted).delete()
    to_update: list[ParameterDefinition] = []
    to_create: list[ParameterDefinition] = []
    for position, spec in enumerate(parameters):
        row = existing.get(spec.name) or ParameterDefinition(workflow=workflow, name=spec.name)
        for name in PARAMETER_FIELDS:
            setattr(row, name, getattr(spec, name))
        row.position = position
        (to_update if row.pk else to_create).append(row)
    ParameterDefinition.objects.bulk_update(to_update, [*PARAMETER_FIELDS, "position"])
    ParameterDefinition.objects.bulk_create(to_create)


def _apply(
    document: CurationDocument,
    catalogue: dict[str, Workflow],
    *,
    user: User | None,
    replace_all: bool,
) -> tuple[ImportResult, dict[str, curation_audit.CurationChange]]:
    """Write a valid document: skip entries that match what is stored, save the others."""
    changed = unchanged = written = 0
    changes: dict[str, curation_audit.CurationChange] = {}
    warnings: list[str] = []
    for entry in document.workflows:
        workflow = catalogue[entry.nql_id]
        wanted = entry.model_dump()
        wanted["allowed_roles"] = _roles_for_export(wanted["allowed_roles"])
        wanted["resume_roles"] = _roles_for_export(wanted["resume_roles"])
        if entry.self_service:
            warnings += self_service_warnings(workflow)
        # Without a curation row, a workflow with no parameters is absent from exports: save it.
        exported = workflow.curation_or_none is not None or bool(wanted["parameters"])
        if exported and _entry(workflow) == wanted:
            unchanged += 1
            continue
        values = CurationFields(**{name: wanted[name] for name in CURATION_FIELDS})
        specs = [ParameterSpec(**p.model_dump()) for p in entry.parameters]
        changes[workflow.nql_id] = _save(workflow, values, specs, user)
        written += len(specs)
        changed += 1
    reset_ids = _reset_others(set(catalogue)) if replace_all else []
    result = ImportResult(changed, unchanged, written, len(reset_ids), warnings)
    return result, {
        **changes,
        **{nql_id: curation_audit.CurationChange(reset=True) for nql_id in reset_ids},
    }


def _reset_others(kept: set[str]) -> list[str]:
    """Remove the curation and parameters of every workflow not in `kept`; their NQL ids."""
    others = Workflow.objects.exclude(nql_id__in=kept).filter(
        Q(curation__isnull=False) | Q(parameters__isnull=False)
    )
    found = dict(others.values_list("pk", "nql_id"))
    WorkflowCuration.objects.filter(workflow_id__in=found).delete()
    ParameterDefinition.objects.filter(workflow_id__in=found).delete()
    return sorted(found.values())
