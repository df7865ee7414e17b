"""An employee's recent fixes as they read them: fixed, did not work (and why), waiting, running.

No request ids or batches here: a run's status becomes one of a few plain states, and a fix that
did not work carries what Nexthink said about its target (or that it could not be started).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from django.contrib.auth.models import User

from workflows_app.models import HelpRequest, Outcome, Run, RunStatus, Target
from workflows_app.selectors.help_requests import help_requests_of

RECENT_FIXES = 5
MAX_DETAILS = 300


class FixState(StrEnum):
    """Where an employee's fix stands, in the words of the self-service page."""

    FIXED = "fixed"
    SENT = "sent"  # a remote action every Engine accepted for the device
    FAILED = "failed"
    UNKNOWN = "unknown"  # it may or may not have worked
    WAITING = "waiting"  # for an approver's decision (four-eyes)
    PAUSED = "paused"  # on a "wait for event" step, until IT continues it
    RUNNING = "running"


STATES: dict[str, FixState] = {
    RunStatus.QUEUED: FixState.RUNNING,
    RunStatus.IN_PROGRESS: FixState.RUNNING,
    RunStatus.WAITING: FixState.PAUSED,
    RunStatus.SUCCEEDED: FixState.FIXED,
    RunStatus.SENT: FixState.SENT,
    RunStatus.PARTIAL: FixState.FAILED,
    RunStatus.FAILED: FixState.FAILED,
    RunStatus.UNKNOWN: FixState.UNKNOWN,
    RunStatus.AWAITING_APPROVAL: FixState.WAITING,
    RunStatus.REJECTED: FixState.FAILED,
    RunStatus.EXPIRED: FixState.FAILED,
}
NOT_STARTED = "it could not be started."
# Outcomes whose details explain a fix that did not work, the most telling first.
_EXPLAINING = (Outcome.FAILURE, Outcome.NOT_SENT, Outcome.UNKNOWN)


@dataclass(frozen=True)
class RecentFix:
    """One of the person's recent self-service runs, as their page shows it."""

    run: Run
    title: str
    state: FixState
    details: str
    offered: bool  # whether the fix can be asked for again from the self-service page
    help_request: HelpRequest | None = None  # the helpdesk request the person made about it

    @property
    def did_not_work(self) -> bool:
        return self.state in (FixState.FAILED, FixState.UNKNOWN)


def recent_fixes(user: User, *, size: int = RECENT_FIXES) -> list[RecentFix]:
    """The person's last self-service runs, newest first."""
    runs = list(
        Run.objects.filter(created_by=user, source=Run.Source.SELF_SERVICE)
        .select_related("workflow__curation")
        .order_by("-created_at", "-id")[:size]
    )
    states = {run.pk: STATES.get(run.status, FixState.RUNNING) for run in runs}
    unsure = [pk for pk, state in states.items() if state in (FixState.FAILED, FixState.UNKNOWN)]
    details = _details(unsure) if unsure else {}
    helped = help_requests_of(states) if runs else {}
    fixes = []
    for run in runs:
        curation = run.workflow.curation_or_none
        title = curation.title if curation is not None and curation.title else run.workflow_name
        fixes.append(
            RecentFix(
                run=run,
                title=title,
                state=states[run.pk],
                details=details.get(run.pk, ""),
                offered=curation is not None and curation.self_service,
                help_request=helped.get(run.pk),
            )
        )
    return fixes


def _details(run_ids: list[int]) -> dict[int, str]:
    """What Nexthink (or the portal) said about the target of each fix that did not work."""
    # A self-service run targets the person's own device and/or account: a row or two each.
    targets = (
        Target.objects.filter(run_id__in=run_ids, outcome__in=_EXPLAINING)
        .order_by("run_id", "position")
        .only("run_id", "outcome", "outcome_details", "status_details")
    )
    found: dict[int, tuple[int, str]] = {}
    for target in targets:
        rank = _EXPLAINING.index(Outcome(target.outcome))
        if target.outcome == Outcome.NOT_SENT:
            text = NOT_STARTED
        else:
            text = (target.outcome_details or target.status_details).strip()
        if text and (target.run_id not in found or rank < found[target.run_id][0]):
            found[target.run_id] = (rank, _shorten(text))
    return {run_id: text for run_id, (_, text) in found.items()}


def _shorten(text: str) -> str:
    return text if len(text) <= MAX_DETAILS else text[: MAX_DETAILS - 1].rstrip() + "…"


def any_unfinished(fixes: list[RecentFix]) -> bool:
    """Whether one of these fixes may still change by itself (the page then refreshes)."""
    return any(not fix.run.is_final for fix in fixes)
