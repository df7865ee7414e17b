"""Reading the catalogue as each role may see it (who may run what: workflows_app.permissions)."""

from __future__ import annotations

from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F, Lookup, Q, QuerySet, Value
from django.db.models.functions import Upper
from django.db.models.sql.compiler import SQLCompiler

from workflows_app.models import Workflow
from workflows_app.models.catalogue import TRIGGER_FIELDS
from workflows_app.permissions import AnyUser, runnable_in_nexthink
from workflows_app.platforms import enabled_kinds
from workflows_app.roles import Role, user_role

SORTS = {
    "name": (F("name").asc(), F("nql_id").asc()),
    "-name": (F("name").desc(), F("nql_id").asc()),
    "updated": (F("last_update_time").asc(nulls_last=True), F("name").asc()),
    "-updated": (F("last_update_time").desc(nulls_last=True), F("name").asc()),
}
_TRIGGER_COLUMNS = {str(method): column for method, column in TRIGGER_FIELDS.items()}
MAX_QUERY_LENGTH = 200


def self_service_workflows() -> QuerySet[Workflow]:
    """Workflows offered to employees: curated for self-service, active, present, API trigger on."""
    return (
        Workflow.objects.filter(runnable_in_nexthink(), curation__self_service=True)
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
    # Only what the configured platforms serve: workflows, remote actions, or both.
    workflows = workflows.filter(kind__in=sorted(enabled_kinds()))
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
    return Q(UpperLike(Upper("name"), Upper(Value(glob_to_like(query)))))


class UpperLike(Lookup):
    """`lhs LIKE rhs ESCAPE '\\'`, both sides already upper-cased by the caller.

    LIKE, unlike a regular expression, matches in time bounded by the name's and the pattern's
    lengths on PostgreSQL and SQLite alike (neither backtracks over `%` exponentially).
    """

    lookup_name = "upper_like"

    def as_sql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper
    ) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} LIKE {rhs} ESCAPE '\\'", [*lhs_params, *rhs_params]


def glob_to_like(pattern: str) -> str:
    """Translate a glob to a LIKE pattern: `*` any run, `?` one character, the rest literal.

    A run of wildcards collapses to its `?` count as `_` plus one `%` if it holds a `*`
    (`*?*?` -> `__%`): never two `%` in a row, so no pattern asks for repeated rescans.
    """
    parts: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            parts.append("_" * run.count("?") + ("%" if "*" in run else ""))
            run.clear()

    for char in pattern:
        if char in "*?":
            run.append(char)
            continue
        flush()
        parts.append("\\" + char if char in "%_\\" else char)
    flush()
    return "".join(parts)
