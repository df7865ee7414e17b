"""Reading runs as each role may see them: pages of runs, one run's progress, pages of its targets.

Pages are keyset pages (on the run id, on the target position), never OFFSET and never COUNT:
one more row than a page is read to tell whether another page follows.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from workflows_app.models import Batch, BatchState, Run, Target
from workflows_app.roles import Role, has_role

RUNS_PER_PAGE = 50
TARGETS_PER_PAGE = 100
# The columns a page of targets shows: a target row is read with these only (there can be
# millions of rows; the run page needs no other column).
TARGET_COLUMNS = ("position", "kind", "value", "execution_uuid", "status", "status_details")


def sees_all_runs(user: User | AnonymousUser) -> bool:
    """Whether this person sees everyone's runs (helpdesk and admins) or only their own."""
    return has_role(user, Role.HELPDESK, Role.ADMIN)


def visible_runs(user: User | AnonymousUser) -> QuerySet[Run]:
    """Runs this person may open: helpdesk and admins all of them, anyone else their own."""
    runs = Run.objects.select_related("created_by")
    if sees_all_runs(user):
        return runs
    return runs.filter(created_by_id=user.pk)


# --- lists of runs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RunFilters:
    """What a list of runs is narrowed to; the view parses it, `runs_matching` applies it.

    An empty value means "any". Values are trusted here: the view has already dropped what is
    not a valid choice.
    """

    status: str = ""
    workflow: str = ""

    @property
    def active(self) -> bool:
        """Whether any filter narrows the list."""
        return bool(self.as_query())

    def as_query(self) -> dict[str, str]:
        """The filters that are set, as query-string values (to link to another page)."""
        values = ((f.name, getattr(self, f.name)) for f in fields(self))
        return {name: str(value) for name, value in values if value}


def runs_matching(user: User | AnonymousUser, filters: RunFilters) -> QuerySet[Run]:
    """The runs this person may open that match the filters, newest first."""
    runs = visible_runs(user)
    if filters.status:
        runs = runs.filter(status=filters.status)
    if filters.workflow:
        runs = runs.filter(workflow_nql_id=filters.workflow)
    return runs.order_by("-id")


@dataclass(frozen=True)
class RunPage:
    """One page of runs, newest first, and where the next (older) page starts."""

    runs: list[Run]
    filters: RunFilters
    next_before: int | None = None

    @property
    def next_query(self) -> dict[str, str]:
        """Query values of the next page, or an empty dict when this is the last page."""
        if self.next_before is None:
            return {}
        return {**self.filters.as_query(), "before": str(self.next_before)}


def run_page(
    user: User | AnonymousUser,
    *,
    filters: RunFilters | None = None,
    before: int | None = None,
    size: int = RUNS_PER_PAGE,
) -> RunPage:
    """A page of the runs this person may open: those matching, with an id below `before`."""
    filters = filters or RunFilters()
    runs = runs_matching(user, filters)
    if before is not None:
        runs = runs.filter(pk__lt=before)
    rows = list(runs[: size + 1])
    page = rows[:size]
    next_before = page[-1].pk if len(rows) > size else None
    return RunPage(runs=page, filters=filters, next_before=next_before)


# --- one run ---------------------------------------------------------------------------------


@dataclass
class Segment:
    """One part of the progress bar: batches and targets in one group of states."""

    key: str
    label: str
    batches: int = 0
    targets: int = 0
    percent: float = 0.0


@dataclass
class Progress:
    """Where a run stands, from its batches (a run has at most ten of them)."""

    batches: list[Batch]
    segments: list[Segment] = field(default_factory=list)
    total_targets: int = 0
    polling: bool = False


# The progress bar's segments, in the order shown: key, label and the batch states in it.
PROGRESS_GROUPS: tuple[tuple[str, str, tuple[BatchState, ...]], ...] = (
    ("submitted", "Submitted", (BatchState.SUBMITTED,)),
    ("failed", "Failed", (BatchState.FAILED,)),
    ("unknown", "Outcome unknown", (BatchState.UNKNOWN,)),
    ("in_flight", "In flight", (BatchState.QUEUED, BatchState.SENDING)),
)


def progress_of(run: Run) -> Progress:
    """Counts of batches and targets per outcome, and whether the page should keep polling."""
    batches = list(Batch.objects.filter(run=run).order_by("number"))
    progress = Progress(batches=batches, total_targets=sum(b.target_count for b in batches))
    for key, label, states in PROGRESS_GROUPS:
        members = [b for b in batches if b.state in states]
        targets = sum(b.target_count for b in members)
        share = 100 * targets / progress.total_targets if progress.total_targets else 0.0
        progress.segments.append(Segment(key, label, len(members), targets, round(share, 1)))
    in_flight = any(not b.is_final for b in batches)
    progress.polling = in_flight or not run.is_final
    return progress


@dataclass(frozen=True)
class TargetPage:
    """One page of a run's targets in pasted order, and where the next page starts."""

    targets: list[Target]
    next_after: int | None = None

    @property
    def first_shown(self) -> int:
        """The 1-based number of the first target on this page (0 when the page is empty)."""
        return self.targets[0].position + 1 if self.targets else 0

    @property
    def last_shown(self) -> int:
        """The 1-based number of the last target on this page (0 when the page is empty)."""
        return self.targets[-1].position + 1 if self.targets else 0


def target_page(run: Run, *, after: int | None = None, size: int = TARGETS_PER_PAGE) -> TargetPage:
    """A page of the run's targets: those at a position past `after`, with TARGET_COLUMNS only."""
    rows = Target.objects.filter(run=run).only(*TARGET_COLUMNS).order_by("position")
    if after is not None:
        rows = rows.filter(position__gt=after)
    fetched = list(rows[: size + 1])
    page = fetched[:size]
    next_after = page[-1].position if len(fetched) > size else None
    return TargetPage(targets=page, next_after=next_after)
