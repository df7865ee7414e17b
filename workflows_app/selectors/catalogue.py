"""Reading the catalogue as each role may see it, and deciding who may run what."""

from __future__ import annotations

import re
from typing import TypeAlias

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.db.models import F, Q, QuerySet
from django.http import Http404

from workflows_app.models import Workflow
from workflows_app.models.catalogue import TRIGGER_FIELDS, Dependency
from workflows_app.roles import Role, user_role

# Whoever asks: a signed-in person or an anonymous visitor.
AnyUser: TypeAlias = User | AnonymousUser

SORTS = {
    "name": (F("name").asc(), F("nql_id").asc()),
    "-name": (F("name").desc(), F("nql_id").asc()),
    "updated": (F("last_update_time").asc(nulls_last=True), F("name").asc()),
    "-updated": (F("last_update_time").desc(nulls_last=True), F("name").asc()),
}
_TRIGGER_COLUMNS = {str(method): column for method, column in TRIGGER_FIELDS.items()}
MAX_QUERY_LENGTH = 200


def _runnable() -> Q:
    return Q(status=Workflow.Status.ACTIVE, removed_at__isnull=True, trigger_api=True)


def self_service_workflows() -> QuerySet[Workflow]:
    """Workflows offered to employees: curated for self-service, active, present, API trigger on."""
    return (
        Workflow.objects.filter(_runnable(), curation__self_service=True)
        .select_related("curation")
        .order_by("name", "nql_id")
    )


def visible_workflows(
    user: AnyUser,
    *,
    dependency: str | None = None,
    trigger: str | None = None,
    q: str | None = None,
    sort: str = "name",
    include_inactive: bool = False,
    include_removed: bool = False,
) -> QuerySet[Workflow]:
    """The workflows this person may see, filtered and sorted.

    Helpdesk and admins see every active workflow still present in Nexthink; admins may also
    include inactive and removed ones (ignored for other roles). Employees see self-service ones.
    `q` filters names: a substring, or with `*` / `?` a glob over the whole name.
    """
    role = user_role(user)
    if role is Role.EMPLOYEE:
        workflows = self_service_workflows()
    elif role in (Role.HELPDESK, Role.ADMIN):
        workflows = Workflow.objects.select_related("curation")
        if not (include_inactive and role is Role.ADMIN):
            workflows = workflows.filter(status=Workflow.Status.ACTIVE)
        if not (include_removed and role is Role.ADMIN):
            workflows = workflows.filter(removed_at__isnull=True)
    else:
        return Workflow.objects.none()
    if dependency:
        workflows = workflows.filter(dependency=dependency)
    if trigger:
        workflows = workflows.filter(**{_TRIGGER_COLUMNS[trigger]: True})
    if q:
        workflows = workflows.filter(name_matches(q))
    return workflows.order_by(*SORTS.get(sort, SORTS["name"]))


def name_matches(query: str) -> Q:
    """A case-insensitive name filter: substring without wildcards, else a whole-name glob."""
    query = query.strip()[:MAX_QUERY_LENGTH]
    if "*" not in query and "?" not in query:
        return Q(name__icontains=query)
    return Q(name__iregex=glob_to_regex(query))


def glob_to_regex(pattern: str) -> str:
    """Translate `*` (any run) and `?` (one character); every other character is literal."""
    parts = []
    for char in re.sub(r"\*+", "*", pattern):
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            # Escapes only non-alphanumerics: literal in Python's re and in PostgreSQL's AREs.
            parts.append(re.escape(char))
    return "^" + "".join(parts) + "$"


def needs_no_target_refusal(workflow: Workflow) -> str | None:
    """Why a workflow without dependency cannot be started through the execute API, or None."""
    if workflow.dependency != Dependency.NONE:
        return None
    return (
        f"'{workflow.name}' takes no targets, and the Nexthink execute API needs at least one "
        "device or user: start it from Nexthink instead."
    )


def not_runnable_reason(workflow: Workflow) -> str | None:
    """Why the portal cannot start this workflow at all (whoever asks), or None."""
    if workflow.is_removed:
        removed = f" (removed {workflow.removed_at:%Y-%m-%d})" if workflow.removed_at else ""
        return (
            f"'{workflow.name}' no longer exists in Nexthink{removed}. "
            "It stays in the catalogue for its run history."
        )
    if workflow.status != Workflow.Status.ACTIVE:
        return f"'{workflow.name}' is inactive in Nexthink; it must be activated there first."
    if not workflow.trigger_api:
        return (
            f"'{workflow.name}' does not have its API trigger enabled in Nexthink, so the portal "
            "cannot start it. Ask a Nexthink administrator to enable the API trigger."
        )
    return needs_no_target_refusal(workflow)


def run_refusal(user: AnyUser, workflow: Workflow) -> str | None:
    """Why this person may not run this workflow from the portal, or None when they may."""
    role = user_role(user)
    curation = workflow.curation_or_none
    if role is None:
        return "You have no portal role."
    if reason := not_runnable_reason(workflow):
        return reason
    if role is Role.ADMIN:
        return None
    if role is Role.EMPLOYEE:
        if curation is None or not curation.self_service:
            return f"'{workflow.name}' is not offered for self-service."
        return None
    allowed = curation.allowed_roles if curation is not None else []
    if allowed and Role.HELPDESK.value not in allowed:
        return f"Your role may not run '{workflow.name}'; ask an admin."
    return None


def runnable_workflow_for(user: AnyUser, workflow_id: int) -> Workflow:
    """The workflow if this person may run it.

    Raises Http404 when they cannot see it, PermissionDenied when they see it but may not run it.
    """
    role = user_role(user)
    if role is Role.ADMIN:
        candidates = Workflow.objects.select_related("curation")
    else:
        candidates = visible_workflows(user)
    workflow = candidates.filter(pk=workflow_id).first()
    if workflow is None:
        raise Http404("No such workflow.")
    refusal = run_refusal(user, workflow)
    if refusal is not None:
        raise PermissionDenied(refusal)
    return workflow
