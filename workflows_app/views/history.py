"""The execution history: the filtered list of runs, its CSV export, and a run's targets as CSV.

The views parse the query string with `selectors.history.parse_filters` (the names are stable:
the API reads the same), ask the selector for a keyset page or a stream, and render. The list
says which values it ignored; an export refuses them instead (400), because a file exported
without the filter someone meant would be silently wrong.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

from django.http import Http404, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from workflows_app.models import Outcome, Run, RunnableKind, RunStatus, Target
from workflows_app.roles import Role, role_required
from workflows_app.selectors.history import (
    export_rows,
    history_page,
    parse_filters,
)
from workflows_app.selectors.runs import (
    HELD_LABEL,
    PROGRESS_GROUPS,
    details_of,
    employee_title,
    one_run,
    outcome_counts,
    sees_all_runs,
    targets_of,
)
from workflows_app.views.csv_files import csv_download, export_refused
from workflows_app.views.http import AuthenticatedHttpRequest
from workflows_app.views.runs_follow import ANY_ROLE, query_int, target_filter

RUNS_HEADER = (
    "run",
    "created_utc",
    "requester",
    "role",
    "source",
    "workflow",
    "workflow_nql_id",
    "targets",
    *(key for key, *_ in PROGRESS_GROUPS),
    "status",
    "reason",
    "finished_utc",
)
TARGETS_HEADER = ("position", "kind", "value", "outcome", "status", "execution_id", "details")


@never_cache  # shows people's runs: no copy kept by browsers or proxies
@require_safe
@role_required(*ANY_ROLE)
def run_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The runs this person may review, filtered, newest first, 50 a page (keyset, no COUNT)."""
    filters, ignored = parse_filters(request.GET, request.user)
    raw_before = request.GET.get("before")
    before = query_int(raw_before)
    if raw_before is not None and before is None:
        ignored.append("The page asked for is not one this history has: showing the newest.")
    page = history_page(request.user, filters, before=before)
    query = filters.as_query()
    everyone = sees_all_runs(request.user)
    context = {
        "rows": [(run, employee_title(run), counts_of(run)) for run in page.runs],
        "filters": filters,
        "ignored": ignored,
        "everyone": everyone,
        "roles": [(role.name.lower(), role.value) for role in Role],
        "sources": Run.Source.choices,
        "kinds": RunnableKind.choices,
        "statuses": RunStatus.choices,
        "outcomes": Outcome.choices,
        "filter_query": urlencode(query),
        "next_query": urlencode(page.next_query),
        "paged": before is not None,
        "more": page.next_before is not None,
        "scope_query": urlencode({**query, "mine": "0" if filters.mine else "1"}),
    }
    return render(request, "runs/list.html", context)


@require_safe
@role_required(*ANY_ROLE)
def runs_export(request: AuthenticatedHttpRequest) -> HttpResponseBase:
    """The filtered history as CSV, one row per run, newest first, streamed."""
    filters, ignored = parse_filters(request.GET, request.user)
    ignored += [
        f"'{name}' is not a filter of the export." for name in request.GET if name == "before"
    ]
    if ignored:
        return export_refused(ignored)
    rows = (run_row(run) for run in export_rows(request.user, filters))
    return csv_download(RUNS_HEADER, rows, name="runs", slug=filters.slug())


@require_safe
@role_required(*ANY_ROLE)
def run_targets_export(request: AuthenticatedHttpRequest, pk: int) -> HttpResponseBase:
    """One run's targets as CSV (those of `?outcome=`, else all), in pasted order, streamed."""
    run = one_run(request.user, pk)
    if run is None:
        raise Http404("No such run.")
    chosen = target_filter(request.GET)
    if chosen.ignored:
        return export_refused([f"Unknown outcome {chosen.ignored!r}."])
    outcomes = chosen.filter.outcomes if chosen.filter else None
    rows = (target_row(t) for t in targets_of(run, outcomes=outcomes))
    slug = f"{run.pk}-targets" + (f"-{chosen.filter.value}" if chosen.filter else "")
    return csv_download(TARGETS_HEADER, rows, name="run", slug=slug)


def counts_of(run: Run) -> list[tuple[str, str, int]]:
    """The run's targets per progress group that has any: key, label, how many."""
    counts = outcome_counts(run)
    shown = []
    for key, label, outcomes, _ in PROGRESS_GROUPS:
        n = sum(counts.get(outcome, 0) for outcome in outcomes)
        if n:
            held = key == "queued" and run.status == RunStatus.AWAITING_APPROVAL
            shown.append((key, HELD_LABEL if held else label, n))
    return shown


def run_row(run: Run) -> list[object]:
    """One run as a row of the history export, in RUNS_HEADER's order."""
    groups = {key: n for key, _, n in counts_of(run)}
    return [
        run.pk,
        _utc(run.created_at),
        run.created_by.get_username(),
        run.role,
        run.source,
        employee_title(run),
        run.workflow_nql_id,
        run.target_count,
        *(groups.get(key, 0) for key, *_ in PROGRESS_GROUPS),
        run.status,
        run.reason,
        _utc(run.finished_at),
    ]


def target_row(target: Target) -> list[object]:
    """One target as a row of a run's targets export, in TARGETS_HEADER's order."""
    return [
        target.position + 1,
        target.kind,
        target.value,
        target.outcome or "queued",
        target.status,
        target.execution_uuid,
        details_of(target),
    ]


def _utc(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else ""
