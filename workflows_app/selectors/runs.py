"""Reading runs as each role may see them: pages of runs, one run's progress, pages of its targets,
an employee's plain answer, the failed targets to run again, and the batches admins decide on.

Pages are keyset pages (on the run id, on the target position), never OFFSET and never COUNT:
one more row than a page is read to tell whether another page follows. How many targets have
each outcome is read from `Run.outcome_counts`, which the lifecycle keeps, never counted here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Q, QuerySet, Subquery

from workflows_app import targets as targets_mod
from workflows_app.models import (
    Approval,
    Batch,
    BatchState,
    Outcome,
    PortalSettings,
    Resumption,
    Run,
    RunEvent,
    RunnableKind,
    RunStatus,
    Target,
    Workflow,
)
from workflows_app.roles import Role, has_role
from workflows_app.selectors.approvals import POLL_SECONDS, poll_seconds
from workflows_app.time_zones import local_time_text

RUNS_PER_PAGE = 50
TARGETS_PER_PAGE = 100
RESUMPTIONS_SHOWN = 100
TIMELINE_SHOWN = 200
CONSOLE_BATCHES_SHOWN = 100
# The columns a page of targets shows: a target row is read with these only (there can be
# millions of rows; the run page needs no other column).
TARGET_COLUMNS = (
    "position",
    "kind",
    "value",
    "execution_uuid",
    "outcome",
    "status",
    "status_details",
    "outcome_details",
)
# What "re-run on the failed targets" takes: those that ran and failed, and those never sent.
FAILED_OUTCOMES: tuple[str, ...] = (Outcome.FAILURE, Outcome.NOT_SENT)


def sees_all_runs(user: User | AnonymousUser) -> bool:
    """Whether this person sees everyone's runs (helpdesk and admins) or only their own."""
    return has_role(user, Role.HELPDESK, Role.ADMIN)


def visible_runs(user: User | AnonymousUser) -> QuerySet[Run]:
    """Runs this person may open: helpdesk and admins all of them, anyone else their own."""
    runs = Run.objects.select_related("created_by")
    if sees_all_runs(user):
        return runs
    return runs.filter(created_by_id=user.pk)


# --- one run ---------------------------------------------------------------------------------


def one_run(user: User | AnonymousUser, pk: int) -> Run | None:
    """The run `pk` if this person may open it, with its workflow and curation; else None."""
    runs = visible_runs(user).select_related("workflow", "workflow__curation")
    return runs.filter(pk=pk).first()


def find_run(pk: int) -> Run | None:
    """Any run by its id, for the shell (which sees every run), or None."""
    if not 0 < pk < 2**63:
        return None
    return Run.objects.select_related("created_by").filter(pk=pk).first()


def outcome_counts(run: Run) -> dict[str, int]:
    """How many of the run's targets have each outcome ("" for not sent yet), from its counts.

    Targets no count covers yet (a run nobody has touched) are not sent yet.
    """
    counts = {str(k): int(v) for k, v in (run.outcome_counts or {}).items() if v}
    counted = sum(n for outcome, n in counts.items() if outcome)
    unsent = max(counts.get("", 0), run.target_count - counted)
    if unsent:
        counts[""] = unsent
    else:
        counts.pop("", None)
    return counts


def failed_count(run: Run) -> int:
    """How many targets a re-run on the failed ones would take (failed, and not sent)."""
    counts = outcome_counts(run)
    return sum(counts.get(outcome, 0) for outcome in FAILED_OUTCOMES)


@dataclass
class Segment:
    """One part of the progress bar: the targets with one group of outcomes."""

    key: str
    label: str
    targets: int = 0
    percent: float = 0.0
    # The targets table's filter showing these targets ("" when there is none).
    filter: str = ""
    # Where the segment starts on the bar, in percent (the bar is an SVG: no inline style).
    offset: float = 0.0


@dataclass
class Progress:
    """Where a run stands: targets per outcome, its batches (few), whether to keep polling."""

    batches: list[Batch]
    segments: list[Segment] = field(default_factory=list)
    total_targets: int = 0
    polling: bool = False
    failed_targets: int = 0
    poll_seconds: int = POLL_SECONDS


# The progress bar's segments, in the order shown: key, label, the outcomes in it ("" is a
# target not sent yet) and the targets table's filter for them.
PROGRESS_GROUPS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("succeeded", "Succeeded", (Outcome.SUCCESS,), Outcome.SUCCESS),
    ("sent", "Sent", (Outcome.SENT,), Outcome.SENT),
    ("failed", "Failed", (Outcome.FAILURE,), Outcome.FAILURE),
    ("not_sent", "Not sent", (Outcome.NOT_SENT,), Outcome.NOT_SENT),
    ("unknown", "Unknown", (Outcome.UNKNOWN,), Outcome.UNKNOWN),
    ("waiting", "Waiting for an event", (Outcome.WAITING,), Outcome.WAITING),
    ("running", "Running", (Outcome.PENDING, Outcome.RUNNING), ""),
    ("queued", "Queued", ("",), ""),
)


HELD_LABEL = "Held for approval"


def progress_of(run: Run) -> Progress:
    """Targets per outcome, the batches, and whether the page should keep polling.

    It polls while the run is not final, and while any batch is still followed up or
    reconciled (a check is planned): a final run's outcomes may still be corrected then.
    """
    batches = list(
        Batch.objects.filter(run=run).select_related("resent_by", "resent_as").order_by("number")
    )
    counts = outcome_counts(run)
    total = sum(counts.values())
    progress = Progress(batches=batches, total_targets=total, failed_targets=failed_count(run))
    before = 0
    held = run.status == RunStatus.AWAITING_APPROVAL
    for key, label, outcomes, target_filter in PROGRESS_GROUPS:
        if held and key == "queued":
            label = HELD_LABEL  # nothing is queued before an approver says yes
        targets = sum(counts.get(outcome, 0) for outcome in outcomes)
        share = 100 * targets / total if total else 0.0
        offset = 100 * before / total if total else 0.0
        progress.segments.append(
            Segment(key, label, targets, round(share, 1), target_filter, round(offset, 1))
        )
        before += targets
    followed = any(b.next_check_at is not None for b in batches)
    progress.polling = followed or not run.is_final
    progress.poll_seconds = poll_seconds(run.status)
    return progress


def resumptions_of(run: Run, *, limit: int = RESUMPTIONS_SHOWN) -> list[Resumption]:
    """The latest resumptions of the run's waiting executions: who, when, what, the answer."""
    rows = Resumption.objects.filter(run=run).select_related("requested_by", "target")
    return list(rows.order_by("-requested_at", "-id")[:limit])


@dataclass(frozen=True)
class Timeline:
    """A page of a run's timeline, oldest first, and the event the next page follows."""

    events: list[RunEvent]
    next_after: int | None = None


def timeline_of(run: Run, *, after: int | None = None, limit: int = TIMELINE_SHOWN) -> Timeline:
    """What happened to the run, oldest first: `limit` events following the event `after`.

    One query whatever the run's size: a keyset page on (at, id) along the (run, at) index, one
    more row than the page read to tell whether another follows, never a COUNT. An `after`
    that is not an event of this run gives an empty page.
    """
    rows = RunEvent.objects.filter(run=run).select_related("actor").order_by("at", "id")
    if after is not None:
        at = Subquery(RunEvent.objects.filter(run=run, pk=after).values("at")[:1])
        rows = rows.filter(Q(at__gt=at) | Q(at=at, pk__gt=after))
    fetched = list(rows[: limit + 1])
    events = fetched[:limit]
    return Timeline(events, events[-1].pk if len(fetched) > limit else None)


# --- its targets ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetFilter:
    """A choice of the targets table: its query value, its label and the outcomes it shows."""

    value: str
    label: str
    outcomes: tuple[str, ...]


# `?outcome=` values: each outcome, and "failed" for what a re-run would take.
TARGET_FILTERS: Mapping[str, TargetFilter] = {
    "failed": TargetFilter("failed", "Failed or not sent", FAILED_OUTCOMES),
    **{o.value: TargetFilter(o.value, str(o.label), (o.value,)) for o in Outcome},
}


def filtered_count(run: Run, target_filter: TargetFilter | None) -> int:
    """How many targets the filter shows, from the run's counts (no COUNT over targets)."""
    if target_filter is None:
        return run.target_count
    counts = outcome_counts(run)
    return sum(counts.get(outcome, 0) for outcome in target_filter.outcomes)


def target_filters(run: Run) -> list[tuple[TargetFilter, int]]:
    """Every filter of the targets table with how many of the run's targets it shows."""
    return [(f, filtered_count(run, f)) for f in TARGET_FILTERS.values()]


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


def target_page(
    run: Run,
    *,
    after: int | None = None,
    size: int = TARGETS_PER_PAGE,
    target_filter: TargetFilter | None = None,
) -> TargetPage:
    """A page of the run's targets (those the filter shows) at a position past `after`.

    Rows are read with TARGET_COLUMNS only. A filtered page walks the (run, position) index and
    skips the other outcomes: a run has at most 100,000 targets, which bounds that walk, so no
    index on the outcome (which follow-up rewrites often) is kept for it.
    """
    rows = Target.objects.filter(run=run).only(*TARGET_COLUMNS).order_by("position")
    if target_filter is not None:
        rows = rows.filter(outcome__in=target_filter.outcomes)
    if after is not None:
        rows = rows.filter(position__gt=after)
    fetched = list(rows[: size + 1])
    page = fetched[:size]
    next_after = page[-1].position if len(fetched) > size else None
    return TargetPage(targets=page, next_after=next_after)


def details_of(target: Target) -> str:
    """What is known of how a target's execution went: the portal's words, else Nexthink's."""
    return target.outcome_details or target.status_details


def targets_of(
    run: Run, *, outcomes: tuple[str, ...] | None = None, chunk_size: int = 2_000
) -> Iterator[Target]:
    """The run's targets (with one of `outcomes`, else all) in pasted order, streamed (a run
    may have 100,000 of them)."""
    rows = Target.objects.filter(run=run).only(*TARGET_COLUMNS).order_by("position")
    if outcomes is not None:
        rows = rows.filter(outcome__in=outcomes)
    return rows.iterator(chunk_size=chunk_size)


@dataclass(frozen=True)
class RerunPrefill:
    """What the run form starts from to run a workflow again on a run's failed targets."""

    run: Run
    targets_text: str
    target_count: int
    # As the run stored them: secret values are masked, and are never pre-filled.
    params: dict[str, str]
    reason: str


def rerun_prefill(
    user: User | AnonymousUser, run_id: int, workflow: Workflow
) -> RerunPrefill | None:
    """A run of `workflow` this person may open, with its failed targets as the form's lines."""
    return run_prefill(user, run_id, workflow, outcomes=FAILED_OUTCOMES)


def run_of_workflow(user: User | AnonymousUser, run_id: int, workflow: Workflow) -> Run | None:
    """The run `run_id` if it is a run of `workflow` this person may open; else None."""
    if not 0 < run_id < 2**63:
        return None
    return visible_runs(user).filter(pk=run_id, workflow=workflow).first()


def run_prefill(
    user: User | AnonymousUser,
    run_id: int,
    workflow: Workflow,
    *,
    outcomes: tuple[str, ...] | None = None,
) -> RerunPrefill | None:
    """A run of `workflow` this person may open, with its targets as the form's lines: all of
    them ("run again"), or those with one of `outcomes` (the failed ones, to re-run them).

    None when there is no such run. The lines carry their kind as a prefix, so the form reads
    each back as the same target; the list is read here, never carried in a URL.
    """
    run = run_of_workflow(user, run_id, workflow)
    if run is None:
        return None
    chosen = Target.objects.filter(run=run)
    if outcomes is not None:
        chosen = chosen.filter(outcome__in=outcomes)
    rows = chosen.order_by("position").values_list("kind", "value").iterator(chunk_size=5_000)
    lines = [targets_mod.to_line(kind, value) for kind, value in rows]
    return RerunPrefill(
        run=run,
        targets_text="\n".join(lines),
        target_count=len(lines),
        params=dict(run.params or {}),
        reason=run.reason,
    )


# --- what an employee reads ----------------------------------------------------------------------


@dataclass(frozen=True)
class FixStatus:
    """An employee's run in plain words: a headline, what went wrong, and what they may do."""

    key: str  # running, waiting (for approval), paused (for IT), fixed, failed, unsure
    headline: str
    details: str = ""
    may_try_again: bool = False
    may_contact: bool = False


# A fix paused on a "wait for event" step, in words that never read like four-eyes approval.
PAUSED_HEADLINE = "Paused until IT continues it"


def fix_status(run: Run) -> FixStatus:
    """How an employee's fix went, in plain words (no request ids, no batches)."""
    status = run.status
    if status in (RunStatus.QUEUED, RunStatus.IN_PROGRESS):
        return FixStatus("running", "Running")
    if status == RunStatus.AWAITING_APPROVAL:
        approval = Approval.objects.filter(run=run).only("expires_at").first()
        until = f" before {local_time_text(approval.expires_at)}" if approval is not None else ""
        return FixStatus(
            "waiting",
            "Waiting for approval",
            f"An IT approver must accept this fix{until}; if nobody does, it will not run. "
            "This page updates by itself.",
        )
    if status == RunStatus.WAITING:
        # Paused on a "wait for event" step: IT resumes it (employees never may), not an approver.
        return FixStatus(
            "paused",
            PAUSED_HEADLINE,
            "The fix stopped at a step where IT must check something and continue it; it then "
            "carries on by itself. Nothing is needed from you; this page updates by itself.",
        )
    if status == RunStatus.SUCCEEDED:
        return FixStatus("fixed", "Fixed")
    if status == RunStatus.SENT:
        return FixStatus(
            "sent",
            "Sent to your device",
            "Nexthink accepted the fix for your device; it runs there within a few minutes.",
        )
    # A remote action some Engines did not take: nobody can tell whether yours did.
    partly = status == RunStatus.PARTIAL and run.kind == RunnableKind.REMOTE_ACTION
    if status == RunStatus.UNKNOWN or partly:
        return FixStatus(
            "unsure",
            "Not sure it worked",
            "The portal could not find out whether the fix ran. Contact the helpdesk before "
            "trying again.",
            may_contact=True,
        )
    failed = (
        Target.objects.filter(run=run, outcome__in=FAILED_OUTCOMES)
        .only("outcome_details", "status_details")
        .order_by("position")
        .first()
    )
    details = (details_of(failed) if failed else "") or "The fix reported no reason."
    if status in NOT_APPROVED:
        details = _not_approved(run)
    headline = NOT_APPROVED.get(status, "Did not work")
    return FixStatus("failed", headline, details, may_try_again=True, may_contact=True)


def _not_approved(run: Run) -> str:
    """Why a fix never ran, as the employee reads it: who said no and why, or nobody answered."""
    approval = Approval.objects.filter(run=run).select_related("decided_by").first()
    if run.status == RunStatus.EXPIRED or approval is None or approval.decided_by is None:
        return "Nobody approved it in time, so it did not run."
    said = f": “{approval.comment}”" if approval.comment else "."
    return f"{approval.decided_by.get_username()} did not approve it{said}"


# A fix that never ran because its approver said no, or nobody answered in time.
NOT_APPROVED: dict[str, str] = {
    RunStatus.REJECTED: "Not approved",
    RunStatus.EXPIRED: "Not approved in time",
}


def employee_title(run: Run) -> str:
    """The fix's name as employees know it: its curated title, else the workflow's name."""
    curation = run.workflow.curation_or_none
    return curation.display_title if curation is not None else run.workflow_name


SAFE_LINK_SCHEMES = frozenset({"http", "https", "mailto"})


def helpdesk_link() -> str:
    """The "contact the helpdesk" link admins set, or "" when unset or not a web/mail link."""
    url = PortalSettings.load().helpdesk_url.strip()
    if not url:
        return ""
    scheme = urlsplit(url).scheme.lower()
    if scheme in SAFE_LINK_SCHEMES or (not scheme and url.startswith("/")):
        return url
    return ""


# --- batches admins look after -------------------------------------------------------------------


@dataclass(frozen=True)
class ConsoleBatch:
    """A batch on the console, with what its counts say of it."""

    batch: Batch

    def _count(self, *outcomes: str) -> int:
        counts = self.batch.outcome_counts or {}
        return sum(int(counts.get(outcome, 0)) for outcome in outcomes)

    @property
    def not_sent(self) -> int:
        return self._count(Outcome.NOT_SENT)

    @property
    def found(self) -> int:
        """Targets whose execution Nexthink's history showed (any outcome it reported)."""
        missing = self._count("", Outcome.UNKNOWN, Outcome.NOT_SENT)
        return max(0, self.batch.target_count - missing)


@dataclass(frozen=True)
class ConsoleBatches:
    """Up to `limit` batches of one kind, and whether there are more."""

    rows: list[ConsoleBatch]
    more: bool = False


# The query form of services.reconcile.needs_decision (a test checks that both agree): a
# reconciled batch with targets Nexthink never saw, nobody has decided on yet.
NEEDS_DECISION = Q(
    state=BatchState.RECONCILED,
    resent_at__isnull=True,
    **{f"outcome_counts__{Outcome.NOT_SENT}__gt": 0},
)


def _console_batches(rows: QuerySet[Batch], limit: int) -> ConsoleBatches:
    fetched = list(rows.select_related("run")[: limit + 1])
    return ConsoleBatches([ConsoleBatch(b) for b in fetched[:limit]], len(fetched) > limit)


def batches_being_reconciled(*, limit: int = CONSOLE_BATCHES_SHOWN) -> ConsoleBatches:
    """Batches whose send is unknown, latest first: those looked for in Nexthink's history
    (a check planned) and any left without a check (ended unknown before follow-up existed)."""
    rows = Batch.objects.filter(state=BatchState.UNKNOWN)
    return _console_batches(rows.order_by("-updated_at", "-pk"), limit)


def batches_needing_decision(*, limit: int = CONSOLE_BATCHES_SHOWN) -> ConsoleBatches:
    """Reconciled batches with not-sent targets an admin may send again, oldest first."""
    rows = Batch.objects.filter(NEEDS_DECISION)
    return _console_batches(rows.order_by("updated_at", "pk"), limit)


def batches_with_check_problems(*, limit: int = CONSOLE_BATCHES_SHOWN) -> ConsoleBatches:
    """Batches still followed up whose last NQL check failed (a broken saved query, ...)."""
    rows = Batch.objects.filter(next_check_at__isnull=False).exclude(check_error="")
    return _console_batches(rows.order_by("-last_checked_at", "-pk"), limit)


def resend_decisions(*, limit: int = CONSOLE_BATCHES_SHOWN) -> ConsoleBatches:
    """Decisions already made to send not-sent targets again, latest first."""
    rows = Batch.objects.filter(resent_at__isnull=False).select_related("resent_by", "resent_as")
    return _console_batches(rows.order_by("-resent_at", "-pk"), limit)
