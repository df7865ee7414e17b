"""The admins' dashboard (/console/dashboard/): runs per day by source, success per workflow,
what fails most, batches waiting for a decision, how long runs take. Charts are inline SVG drawn
from `charts` geometry, each with its figures as a table beneath: no JavaScript needed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from workflows_app import charts
from workflows_app.models import Run
from workflows_app.roles import Role, role_required
from workflows_app.selectors import dashboard as figures
from workflows_app.selectors.dashboard import (
    DEFAULT_PERIOD,
    PERIODS,
    SOURCES,
    DayRuns,
    DeviceFailures,
    Period,
    WorkflowFigures,
)
from workflows_app.selectors.runs import batches_needing_decision
from workflows_app.services import dashboard_counts
from workflows_app.views.http import AuthenticatedHttpRequest

SOURCE_LABELS = {
    Run.Source.SELF_SERVICE: "Self-service",
    Run.Source.HELPDESK: "Helpdesk",
    Run.Source.CLI: "Command line",
    Run.Source.API: "API",
}
WORKFLOWS_CHARTED = 15
DECISIONS_SHOWN = 10


@never_cache  # shows people's runs: no copy kept by browsers or proxies
@require_safe
@role_required(Role.ADMIN)
def dashboard(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The dashboard over the last 7, 30 or 90 days (`?days=`, 30 by default)."""
    days, ignored = _days(request.GET.get("days"))
    period = figures.period_of(days)
    day_runs = figures.runs_per_day(period)
    per_workflow = figures.workflow_figures(period)
    failing = figures.failing_workflows(per_workflow)
    devices = figures.failing_devices(period)
    context: dict[str, Any] = {
        "period": period,
        "periods": PERIODS,
        "ignored_days": ignored,
        "counting": figures.counting(),
        "recount_minutes": settings.DASHBOARD_RECOUNT_MINUTES,
        "days_time_zone": settings.TIME_ZONE,
        "day_runs": day_runs,
        "totals": figures.source_totals(day_runs),
        "sources": [(source, SOURCE_LABELS[source]) for source in SOURCES],
        "runs_chart": _runs_chart(day_runs),
        "runs_summary": _runs_summary(day_runs),
        "share_chart": _share_chart(day_runs),
        "share_summary": _share_summary(day_runs),
        "workflows": per_workflow,
        "success_chart": _success_chart(per_workflow[:WORKFLOWS_CHARTED], period),
        "failing": failing,
        "failing_chart": _failing_chart(failing, period),
        "devices": devices,
        "devices_chart": _devices_chart(devices, period),
        "to_submission": figures.time_to_submission(period),
        "to_outcome": figures.time_to_outcome(period),
        "to_decide": batches_needing_decision(limit=DECISIONS_SHOWN),
    }
    return render(request, "dashboard/home.html", context)


@require_POST
@role_required(Role.ADMIN)
def recount(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Recount the recent days now, instead of waiting for the next scheduled recount."""
    done = dashboard_counts.recount(full=False)
    messages.success(
        request,
        f"Counted again from {done.first_day:%Y-%m-%d} to {done.last_day:%Y-%m-%d} "
        f"in {done.seconds:.1f} s.",
    )
    days, _ = _days(request.POST.get("days"))
    url = reverse("console:dashboard")
    return redirect(url if days == DEFAULT_PERIOD else f"{url}?days={days}")


def _days(value: str | None) -> tuple[int, str | None]:
    """The period asked for, and the value ignored when it is not one of PERIODS."""
    if value is None or value == "":
        return DEFAULT_PERIOD, None
    if value in {str(days) for days in PERIODS}:
        return int(value), None
    return DEFAULT_PERIOD, value[:40]


def _history(period: Period, **filters: str) -> str:
    """The history page filtered the same way (its URL parameters are documented as stable)."""
    query = urlencode({**filters, "since": period.first.isoformat()})
    return f"{reverse('runs:list')}?{query}"


def _runs_chart(day_runs: Sequence[DayRuns]) -> charts.ColumnChart:
    labels = [f"{d.day:%d %b}" for d in day_runs]
    stacks = [
        [
            charts.Part(
                source, d.by_source[source], f"{SOURCE_LABELS[source]}: {d.by_source[source]:,}"
            )
            for source in SOURCES
        ]
        for d in day_runs
    ]
    titles = [
        f"{d.day:%a %d %b}: {d.total:,} run{'s' if d.total != 1 else ''}"
        + "".join(
            f", {d.by_source[s]:,} {SOURCE_LABELS[s].lower()}" for s in SOURCES if d.by_source[s]
        )
        for d in day_runs
    ]
    return charts.stacked_columns(labels, stacks, titles)


def _runs_summary(day_runs: Sequence[DayRuns]) -> str:
    """The column chart in one sentence, for screen readers."""
    totals = figures.source_totals(day_runs)
    parts = ", ".join(
        f"{totals.by_source[s]:,} {SOURCE_LABELS[s].lower()}"
        for s in SOURCES
        if totals.by_source[s]
    )
    busiest = max(day_runs, key=lambda d: d.total, default=None)
    text = f"{totals.total:,} runs over {len(day_runs)} days"
    if busiest is not None and busiest.total:
        text += f": {parts}. Busiest day {busiest.day:%a %d %b} with {busiest.total:,}"
    return text + "."


def _share_summary(day_runs: Sequence[DayRuns]) -> str:
    shares = [d.self_service_share for d in day_runs if d.self_service_share is not None]
    share = figures.source_totals(day_runs).self_service_share
    if share is None or not shares:
        return "No runs in the period."
    return (
        f"{share * 100:.0f} % of the period's runs were started through self-service; "
        f"per day from {min(shares) * 100:.0f} % to {max(shares) * 100:.0f} %."
    )


def _share_chart(day_runs: Sequence[DayRuns]) -> charts.LineChart:
    shares = [d.self_service_share for d in day_runs]
    titles = [
        f"{d.day:%a %d %b}: {share * 100:.0f} % self-service "
        f"({d.by_source[Run.Source.SELF_SERVICE]:,} of {d.total:,})"
        if share is not None
        else ""
        for d, share in zip(day_runs, shares, strict=True)
    ]
    return charts.share_line([f"{d.day:%d %b}" for d in day_runs], shares, titles)


def _success_chart(rows: Sequence[WorkflowFigures], period: Period) -> charts.HBarChart:
    bars = [
        charts.BarInput(
            label=row.title,
            fraction=row.success_rate or 0,
            value_label=f"{(row.success_rate or 0) * 100:.1f} % of {row.final:,}",
            title=f"{row.title}: {row.succeeded:,} of {row.final:,} targets succeeded",
            href=_history(period, workflow=row.nql_id),
        )
        for row in rows
        if row.final
    ]
    return charts.horizontal_bars(bars)


def _failing_chart(rows: Sequence[WorkflowFigures], period: Period) -> charts.HBarChart:
    most = max((row.failed for row in rows), default=0)
    bars = [
        charts.BarInput(
            label=row.title,
            fraction=row.failed / most if most else 0,
            value_label=f"{row.failed:,} ({(row.failure_rate or 0) * 100:.1f} %)",
            title=f"{row.title}: {row.failed:,} of {row.final:,} targets failed",
            href=_history(period, workflow=row.nql_id, outcome="failure"),
        )
        for row in rows
    ]
    return charts.horizontal_bars(bars)


def _devices_chart(rows: Sequence[DeviceFailures], period: Period) -> charts.HBarChart:
    most = max((row.failures for row in rows), default=0)
    bars = [
        charts.BarInput(
            label=row.value,
            fraction=row.failures / most if most else 0,
            value_label=f"{row.failures:,} failed",
            title=f"{row.value}: {row.failures:,} failed target{'s' if row.failures != 1 else ''}",
            href=_history(period, target=row.value, outcome="failure"),
        )
        for row in rows
    ]
    return charts.horizontal_bars(bars)
