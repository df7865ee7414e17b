"""Following runs: the list of recent runs, one run's page and its live progress partial."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_safe
from django_htmx.http import trigger_client_event

from workflows_app.forms.runs import KIND_LABELS
from workflows_app.models import Batch, BatchState, Run, RunStatus, Target
from workflows_app.roles import Role, has_role, role_required

RUNS_PER_PAGE = 50
TARGETS_PER_PAGE = 100
MAX_FILTER_LENGTH = 255
_TARGET_COLUMNS = ("position", "kind", "value", "execution_uuid", "status", "status_details")


# Every role may follow runs (employees only their own); an account without a role may not.
ANY_ROLE = (Role.EMPLOYEE, Role.HELPDESK, Role.ADMIN)


def visible_runs(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Run]:
    """Runs this person may open: helpdesk and admins all of them, anyone else their own."""
    runs = Run.objects.select_related("created_by")
    if has_role(user, Role.HELPDESK, Role.ADMIN):
        return runs
    return runs.filter(created_by_id=user.pk)


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


_GROUPS = (
    ("submitted", "Submitted", (BatchState.SUBMITTED,)),
    ("failed", "Failed", (BatchState.FAILED,)),
    ("unknown", "Outcome unknown", (BatchState.UNKNOWN,)),
    ("in_flight", "In flight", (BatchState.QUEUED, BatchState.SENDING)),
)


def progress_of(run: Run) -> Progress:
    """Counts of batches and targets per outcome, and whether the page should keep polling."""
    batches = list(Batch.objects.filter(run=run).order_by("number"))
    progress = Progress(batches=batches, total_targets=sum(b.target_count for b in batches))
    for key, label, states in _GROUPS:
        members = [b for b in batches if b.state in states]
        targets = sum(b.target_count for b in members)
        share = 100 * targets / progress.total_targets if progress.total_targets else 0.0
        progress.segments.append(Segment(key, label, len(members), targets, round(share, 1)))
    in_flight = any(not b.is_final for b in batches)
    progress.polling = in_flight or not run.is_final
    return progress


@require_safe
@role_required(*ANY_ROLE)
def run_list(request: HttpRequest) -> HttpResponse:
    """Recent runs visible to this person, newest first, 50 a page (keyset on id, no COUNT)."""
    runs = visible_runs(request.user).order_by("-id")
    status = request.GET.get("status", "")
    if status not in RunStatus.values:
        status = ""
    # No NQL id holds a NUL, and PostgreSQL text cannot: dropped, not a 500.
    workflow = request.GET.get("workflow", "").replace("\x00", "").strip()[:MAX_FILTER_LENGTH]
    if status:
        runs = runs.filter(status=status)
    if workflow:
        runs = runs.filter(workflow_nql_id=workflow)
    before = _int(request.GET.get("before"))
    if before is not None:
        runs = runs.filter(pk__lt=before)
    page = list(runs[: RUNS_PER_PAGE + 1])
    has_next = len(page) > RUNS_PER_PAGE
    page = page[:RUNS_PER_PAGE]
    filters = {k: v for k, v in (("status", status), ("workflow", workflow)) if v}
    context = {
        "runs": page,
        "statuses": RunStatus.choices,
        "status": status,
        "workflow": workflow,
        "filter_query": urlencode(filters),
        "next_query": urlencode({**filters, "before": page[-1].pk}) if has_next else "",
        "paged": before is not None,
        "mine_only": not has_role(request.user, Role.HELPDESK, Role.ADMIN),
    }
    return render(request, "runs/list.html", context)


@require_safe
@role_required(*ANY_ROLE)
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One run: who, what, why, its live progress, its batches and a page of its targets."""
    run = get_object_or_404(visible_runs(request.user), pk=pk)
    after = _int(request.GET.get("after"))
    rows = Target.objects.filter(run=run).only(*_TARGET_COLUMNS).order_by("position")
    if after is not None:
        rows = rows.filter(position__gt=after)
    targets = list(rows[: TARGETS_PER_PAGE + 1])
    has_next = len(targets) > TARGETS_PER_PAGE
    targets = targets[:TARGETS_PER_PAGE]
    context = {
        "run": run,
        "progress": progress_of(run),
        "targets": [(t, KIND_LABELS.get(t.kind, t.kind)) for t in targets],
        "first_shown": targets[0].position + 1 if targets else 0,
        "last_shown": targets[-1].position + 1 if targets else 0,
        "next_after": targets[-1].position if has_next else None,
        "paged": after is not None,
    }
    return render(request, "runs/detail.html", context)


@require_safe
@role_required(*ANY_ROLE)
def run_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The progress partial alone, polled by htmx; once final it renders without polling."""
    run = get_object_or_404(visible_runs(request.user), pk=pk)
    context = {"run": run, "progress": progress_of(run)}
    response = render(request, "runs/_progress.html", context)
    if not context["progress"].polling:
        # The last poll: tell the page to reload its targets, which now carry execution ids.
        trigger_client_event(response, "run-settled")
    return response


def _int(raw: str | None) -> int | None:
    """A non-negative integer query value, or None for anything else (never a 500)."""
    if raw is None:
        return None
    raw = raw.strip()
    # isdigit() also takes digits int() refuses ('²'); ten digits are past any id already.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10:
        return None
    value = int(raw)
    return value if value < 2**31 else None
