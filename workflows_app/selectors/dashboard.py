"""What the admins' dashboard reads: runs per day by source, success per workflow, the devices
that fail most (from the daily counts, models/dashboard.py), and how long runs take from the
click to Nexthink and to their outcome (from the runs themselves: percentiles do not add up).

Days are calendar days in the portal's TIME_ZONE (the days the counts are kept in); a period
of N days is today and the N - 1 days before it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection
from django.db.models import Aggregate, Count, DurationField, F, QuerySet, Sum
from django.db.models.expressions import Combinable
from django.utils import timezone

from workflows_app.models import (
    BatchState,
    DailyDeviceFailure,
    DailyRunCount,
    DashboardCounting,
    Run,
    Workflow,
)

PERIODS = (7, 30, 90)
DEFAULT_PERIOD = 30
# Sources in the order the charts stack them: what employees did themselves first.
SOURCES = (Run.Source.SELF_SERVICE, Run.Source.HELPDESK, Run.Source.CLI, Run.Source.API)
TOP = 10
# Without percentile_cont (SQLite, the demo), durations come from the newest runs only.
PYTHON_SAMPLE = 5000


@dataclass(frozen=True)
class Period:
    """The days a dashboard shows, first to last inclusive, in the portal's TIME_ZONE."""

    days: int
    first: dt.date
    last: dt.date

    @property
    def start(self) -> dt.datetime:
        """Midnight at the start of the first day."""
        return dt.datetime.combine(self.first, dt.time.min, tzinfo=timezone.get_default_timezone())

    def each_day(self) -> list[dt.date]:
        return [self.first + dt.timedelta(days=n) for n in range(self.days)]


def period_of(days: int, *, now: dt.datetime | None = None) -> Period:
    """The last `days` days, today included."""
    last = timezone.localdate(now or timezone.now(), timezone.get_default_timezone())
    return Period(days=days, first=last - dt.timedelta(days=days - 1), last=last)


def counting() -> DashboardCounting | None:
    """When the daily counts were last recounted (None: never yet)."""
    return DashboardCounting.objects.filter(pk=1, counted_at__isnull=False).first()


# --- runs per day by source ----------------------------------------------------------------------


@dataclass(frozen=True)
class DayRuns:
    """Runs created on one day, by source."""

    day: dt.date
    by_source: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_source.values())

    @property
    def counts(self) -> list[int]:
        """Its runs per source, in the order of SOURCES."""
        return [self.by_source[source] for source in SOURCES]

    @property
    def self_service_share(self) -> float | None:
        return self.by_source[Run.Source.SELF_SERVICE] / self.total if self.total else None


@dataclass(frozen=True)
class SourceTotals:
    """Runs of the whole period by source: how much the helpdesk is spared."""

    by_source: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_source.values())

    @property
    def self_service(self) -> int:
        return self.by_source[Run.Source.SELF_SERVICE]

    @property
    def self_service_share(self) -> float | None:
        return self.self_service / self.total if self.total else None


def runs_per_day(period: Period) -> list[DayRuns]:
    """Every day of the period (days without runs too), its runs by source."""
    counts: dict[dt.date, dict[str, int]] = {
        day: dict.fromkeys(SOURCES, 0) for day in period.each_day()
    }
    rows = (
        _daily(period)
        .values("day", "source")
        .annotate(runs=Sum("runs"))
        .values_list("day", "source", "runs")
    )
    for day, source, runs in rows:
        if day in counts and source in counts[day]:
            counts[day][source] += runs
    return [DayRuns(day, by_source) for day, by_source in counts.items()]


def source_totals(days: Sequence[DayRuns]) -> SourceTotals:
    totals: dict[str, int] = dict.fromkeys(SOURCES, 0)
    for day in days:
        for source, runs in day.by_source.items():
            totals[source] += runs
    return SourceTotals(totals)


# --- per workflow --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkflowFigures:
    """One workflow's runs in the period and its targets by final outcome."""

    workflow_id: int
    title: str
    nql_id: str
    runs: int
    succeeded: int
    failed: int
    unknown: int
    not_sent: int

    @property
    def final(self) -> int:
        """Targets with a final outcome: succeeded, failed, unknown or not sent."""
        return self.succeeded + self.failed + self.unknown + self.not_sent

    @property
    def success_rate(self) -> float | None:
        """Targets succeeded / targets with a final outcome (None before any is final)."""
        return self.succeeded / self.final if self.final else None

    @property
    def failure_rate(self) -> float | None:
        return self.failed / self.final if self.final else None


def workflow_figures(period: Period) -> list[WorkflowFigures]:
    """Each workflow run in the period, most targets with a final outcome first."""
    groups = list(
        _daily(period)
        .values("workflow_id")
        .annotate(
            runs=Sum("runs"),
            succeeded=Sum("succeeded"),
            failed=Sum("failed"),
            unknown=Sum("unknown"),
            not_sent=Sum("not_sent"),
        )
    )
    workflows = Workflow.objects.select_related("curation").in_bulk(
        [g["workflow_id"] for g in groups]
    )
    figures = []
    for group in groups:
        workflow = workflows.get(group["workflow_id"])
        if workflow is None:
            continue  # deleted since it was counted
        curation = workflow.curation_or_none
        figures.append(
            WorkflowFigures(
                title=curation.display_title if curation else workflow.name,
                nql_id=workflow.nql_id,
                **group,
            )
        )
    return sorted(figures, key=lambda f: (-f.final, -f.runs, f.title))


def failing_workflows(
    figures: Sequence[WorkflowFigures], limit: int = TOP
) -> list[WorkflowFigures]:
    """The workflows with the most failed targets (ties: the higher failure rate first)."""
    failing = [f for f in figures if f.failed]
    failing.sort(key=lambda f: (-f.failed, -(f.failure_rate or 0), f.title))
    return failing[:limit]


@dataclass(frozen=True)
class DeviceFailures:
    """A device (or user) as targets named it, and how many of its targets failed."""

    value: str
    failures: int


def failing_devices(period: Period, limit: int = TOP) -> list[DeviceFailures]:
    """The targets that failed most in the period, grouped by the value people gave."""
    rows = (
        DailyDeviceFailure.objects.filter(day__gte=period.first, day__lte=period.last)
        .values("value")
        .annotate(n=Sum("failures"))
        .order_by("-n", "value")[:limit]
    )
    return [DeviceFailures(row["value"], row["n"]) for row in rows]


def _daily(period: Period) -> QuerySet[DailyRunCount]:
    return DailyRunCount.objects.filter(day__gte=period.first, day__lte=period.last).order_by()


# --- durations -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Durations:
    """Median and 95th percentile of a duration over `runs` runs (None when there are none)."""

    runs: int
    median: dt.timedelta | None = None
    p95: dt.timedelta | None = None
    sampled: bool = False  # computed over the newest PYTHON_SAMPLE runs only


class PercentileCont(Aggregate):
    """PostgreSQL's `percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)`."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression: Combinable, fraction: float) -> None:
        # A float from this module, never from a request: safe to write into the SQL.
        super().__init__(expression, fraction=repr(float(fraction)), output_field=DurationField())


def time_to_submission(period: Period) -> Durations:
    """From the click (the run's creation) to its first batch being accepted by Nexthink."""
    runs = Run.objects.filter(
        created_at__gte=period.start,
        batches__number=1,
        batches__state=BatchState.SUBMITTED,
        batches__finished_at__isnull=False,
    )
    return _durations(runs, F("batches__finished_at") - F("created_at"))


def time_to_outcome(period: Period) -> Durations:
    """From the click to the run's final outcome (runs not final yet are left out)."""
    runs = Run.objects.filter(created_at__gte=period.start, finished_at__isnull=False)
    return _durations(runs, F("finished_at") - F("created_at"))


def _durations(runs: QuerySet[Run], duration: Combinable) -> Durations:
    runs = runs.order_by()
    if connection.vendor == "postgresql":
        figures = runs.aggregate(
            runs=Count("id"),
            median=PercentileCont(duration, 0.5),
            p95=PercentileCont(duration, 0.95),
        )
        return Durations(figures["runs"], figures["median"], figures["p95"])
    newest = list(
        runs.annotate(took=duration)
        .order_by("-created_at")
        .values_list("took", flat=True)[: PYTHON_SAMPLE + 1]
    )
    sampled = len(newest) > PYTHON_SAMPLE
    values = sorted(newest[:PYTHON_SAMPLE])
    return Durations(len(values), percentile(values, 0.5), percentile(values, 0.95), sampled)


def percentile(values: Sequence[dt.timedelta], fraction: float) -> dt.timedelta | None:
    """percentile_cont over sorted values: linear interpolation between the closest two."""
    if not values:
        return None
    position = fraction * (len(values) - 1)
    low, high = math.floor(position), math.ceil(position)
    return values[low] + (values[high] - values[low]) * (position - low)
