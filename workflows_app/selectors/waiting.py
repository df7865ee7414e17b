"""Reading executions paused on a "wait for event" step, and who resumed which.

The inbox must stay cheap however many targets the portal holds, and `Target.outcome` has no
index: the runs that hold a waiting target are found first (their `outcome_counts`, kept with
the run's status, on the `(status, id)` index), then their waiting targets through the
`(run, position)` index. Pages are keyset pages on the target id, never COUNT.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from workflows_app.models import Outcome, Resumption, Run, RunStatus, Target
from workflows_app.nexthink.models import UUID_PATTERN
from workflows_app.selectors.runs import visible_runs

WAITING_PER_PAGE = 25
RECENT_RESUMPTIONS = 10
# A run holding a waiting target is `waiting`, or `in_progress` while others still run.
_STATUSES_WITH_WAITING = (RunStatus.WAITING, RunStatus.IN_PROGRESS)
_UUID = re.compile(UUID_PATTERN)


@dataclass(frozen=True)
class WaitingPage:
    """One page of waiting targets, newest first, and where the next (older) page starts."""

    targets: list[Target]
    next_before: int | None = None


def runs_with_waiting(user: User | AnonymousUser) -> QuerySet[Run]:
    """The runs this person may open that hold at least one waiting target."""
    return visible_runs(user).filter(
        status__in=_STATUSES_WITH_WAITING, **{f"outcome_counts__{Outcome.WAITING}__gt": 0}
    )


def waiting_page(
    user: User | AnonymousUser, *, before: int | None = None, size: int = WAITING_PER_PAGE
) -> WaitingPage:
    """Waiting targets of the runs this person may open, newest first, below target `before`."""
    run_ids = list(runs_with_waiting(user).values_list("pk", flat=True))
    if not run_ids:
        return WaitingPage(targets=[])
    targets = (
        Target.objects.filter(run_id__in=run_ids, outcome=Outcome.WAITING)
        .select_related("run__workflow__curation", "run__created_by", "batch")
        .order_by("-pk")
    )
    if before is not None:
        targets = targets.filter(pk__lt=before)
    rows = list(targets[: size + 1])
    page = rows[:size]
    return WaitingPage(targets=page, next_before=page[-1].pk if len(rows) > size else None)


def target_by_execution(execution_uuid: str) -> Target | None:
    """The target Nexthink gave this execution id, with its run and workflow; None if unknown.

    Anything but a UUID is unknown here (and never reaches the database: no NUL, no long text).
    """
    given = execution_uuid.strip()
    if not _UUID.fullmatch(given):
        return None
    return (
        Target.objects.filter(execution_uuid__in={given, given.lower()})
        .select_related("run__workflow__curation", "batch")
        .order_by("-pk")
        .first()
    )


def visible_execution(user: User | AnonymousUser, execution_uuid: str) -> Target | None:
    """`target_by_execution`, but only in a run this person may open."""
    target = target_by_execution(execution_uuid)
    if target is None or not visible_runs(user).filter(pk=target.run_id).exists():
        return None
    return target


def recent_resumptions(
    user: User | AnonymousUser, *, size: int = RECENT_RESUMPTIONS
) -> list[Resumption]:
    """The latest resumptions in runs this person may open, newest first."""
    return list(
        Resumption.objects.filter(run__in=visible_runs(user))
        .select_related("run__workflow__curation", "target", "requested_by")
        .order_by("-requested_at", "-pk")[:size]
    )
