"""Reading flows: the list (sorted, paged, filtered by a name glob), one flow, latest runs, and
the flow runs a person may see (keyset pages, newest first)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import F, Max, Q, QuerySet
from django.db.models.functions import Upper

from workflows_app.models import Flow, FlowRun, FlowRunStatus, FlowStepRun, FlowVersion
from workflows_app.roles import Role, has_role
from workflows_app.selectors.catalogue import name_matches
from workflows_app.selectors.query_values import echo, text_value

SORT_FIELDS: dict[str, Any] = {
    "name": Upper("name"),
    "id": F("pk"),
    "creationDate": F("created_at"),
    "lastUpdated": F("modified_at"),
}
MAX_PER_PAGE = 1_000
FLOW_RUN_PAGE_SIZE = 50
NOT_A_FLOW_RUN_ID = "'before' is not a flow run id: showing the newest."


@dataclass(frozen=True)
class FlowPage:
    flows: list[Flow]
    count: int


def live_flows() -> QuerySet[Flow]:
    """Flows not deleted, with who made and changed them."""
    return Flow.objects.filter(deleted_at__isnull=True).select_related("created_by", "modified_by")


def flow_page(
    *, sort_field: str, descending: bool, page: int, per_page: int, name_glob: str = ""
) -> FlowPage:
    """One page of flows (page from 0) and how many match in all."""
    rows = live_flows()
    if name_glob:
        rows = rows.filter(name_matches(name_glob))
    order = SORT_FIELDS[sort_field]
    rows = rows.order_by(order.desc() if descending else order.asc(), "-pk" if descending else "pk")
    start = page * per_page
    return FlowPage(flows=list(rows[start : start + per_page]), count=rows.count())


def one_flow(flow_id: int) -> Flow | None:
    """A flow people may see (not deleted), or None."""
    if not 0 < flow_id < 2**31:
        return None
    return live_flows().filter(pk=flow_id).first()


def version_of(flow: Flow, number: int | None = None) -> FlowVersion | None:
    """A version of the flow (the current one by default), or None."""
    wanted = flow.version if number is None else number
    if not 0 < wanted < 2**31:
        return None
    return FlowVersion.objects.filter(flow=flow, number=wanted).first()


def latest_runs(flows: Sequence[Flow]) -> dict[int, FlowRun]:
    """Each flow's newest run, if it has one (two queries, on any database)."""
    newest = (
        FlowRun.objects.filter(flow__in=flows)
        .order_by()
        .values("flow_id")
        .annotate(last=Max("pk"))
        .values_list("last", flat=True)
    )
    rows = FlowRun.objects.filter(pk__in=list(newest)).select_related("created_by")
    return {flow_run.flow_id: flow_run for flow_run in rows}


def step_rows(flow_run: FlowRun) -> list[FlowStepRun]:
    """The flow run's steps in the flow's order, each with its run."""
    return list(flow_run.steps.select_related("run").order_by("position"))


@dataclass(frozen=True)
class StepSummary:
    """One step of a flow run as notifications tell it (services/emails.py, webhooks.py)."""

    key: str
    name: str
    referrer: str  # what it runs: the workflow's NQL id (services/flow_referrers.py)
    status: str  # FlowStepRun.status_word
    status_label: str
    run_id: int | None


def step_summaries(flow_run: FlowRun) -> list[StepSummary]:
    """The flow run's steps in the flow's order: key, name and referrer in its version, status,
    run."""
    defined = {s["id"]: s for s in flow_run.flow_version.steps}
    return [
        StepSummary(
            key=row.step_id,
            name=str(defined.get(row.step_id, {}).get("name") or row.step_id),
            referrer=str(defined.get(row.step_id, {}).get("referrer") or ""),
            status=row.status_word,
            status_label=row.status_label,
            run_id=row.run_id,
        )
        for row in flow_run.steps.order_by("position")
    ]


def flow_runs_of(flow: Flow, limit: int = 20) -> list[FlowRun]:
    """The flow's newest runs."""
    return list(
        FlowRun.objects.filter(flow=flow).select_related("created_by", "flow_version")[:limit]
    )


def visible_flow_runs(user: Any) -> QuerySet[FlowRun]:
    """The flow runs this person may see, newest first: staff all, employees their own."""
    from_roles = FlowRun.objects.select_related("flow", "flow_version", "created_by")
    if has_role(user, Role.HELPDESK, Role.ADMIN):
        return from_roles.order_by("-pk")
    return from_roles.filter(created_by=user).order_by("-pk")


@dataclass(frozen=True)
class FlowRunPage:
    """A page of flow runs, newest first, and the id the next (older) page starts below."""

    flow_runs: list[FlowRun]
    next_before: int | None = None


@dataclass(frozen=True)
class FlowRunFilters:
    """The flow run list's filters, as its page, its export and the API read them."""

    flow: str = ""  # a flow's id or part of its name, any case
    status: str = ""  # a FlowRunStatus value

    def as_query(self) -> dict[str, str]:
        """The filters that are set, as query parameters."""
        return {
            name: value for name, value in (("flow", self.flow), ("status", self.status)) if value
        }


def flow_run_filters(flow: str | None, status: str | None) -> tuple[FlowRunFilters, list[str]]:
    """The filters these query values give, and one sentence per value that was ignored."""
    ignored: list[str] = []
    wanted_status = text_value(status or "").lower()
    if wanted_status and wanted_status not in FlowRunStatus.values:
        known = ", ".join(FlowRunStatus.values)
        ignored.append(f"Unknown status {echo(wanted_status)}: ignored (one of {known}).")
        wanted_status = ""
    return FlowRunFilters(flow=text_value(flow or ""), status=wanted_status), ignored


def matching_flow_runs(user: Any, filters: FlowRunFilters) -> QuerySet[FlowRun]:
    """The flow runs this person may see that match the filters, newest first."""
    rows = visible_flow_runs(user)
    if filters.flow:
        named = Q(flow__name__icontains=filters.flow)
        if filters.flow.isascii() and filters.flow.isdigit() and 0 < int(filters.flow) < 2**31:
            named |= Q(flow_id=int(filters.flow))
        rows = rows.filter(named)
    if filters.status:
        rows = rows.filter(status=filters.status)
    return rows


def flow_run_page(
    user: Any,
    *,
    before: int | None = None,
    flow: str = "",
    status: str = "",
    size: int | None = None,
) -> FlowRunPage:
    """The flow runs this person may see with an id below `before`, newest first: `flow` a
    flow's id or part of its name (any case), `status` a flow run status; one row more than a
    page is read to tell whether another follows."""
    size = size or FLOW_RUN_PAGE_SIZE
    rows = matching_flow_runs(user, FlowRunFilters(flow=flow, status=status))
    if before is not None:
        rows = rows.filter(pk__lt=before)
    shown = list(rows[: size + 1])
    more = len(shown) > size
    return FlowRunPage(flow_runs=shown[:size], next_before=shown[size - 1].pk if more else None)
