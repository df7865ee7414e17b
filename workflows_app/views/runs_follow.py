"""Following runs: the list of recent runs, one run's page and its live progress partial.

The views parse the query string, ask `selectors.runs`, and render; what a page shows and how it
is read lives in the selector. Helpdesk and admins see a run's outcomes, batches and targets;
an employee sees their fix in plain words.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django.http import Http404, HttpResponse, QueryDict
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from django_htmx.http import trigger_client_event

from workflows_app import permissions
from workflows_app.forms.runs import KIND_LABELS
from workflows_app.models import Run, RunStatus
from workflows_app.roles import Role, role_required
from workflows_app.selectors.approvals import approval_of_run, status_context
from workflows_app.selectors.help_requests import help_request_of
from workflows_app.selectors.runs import (
    TARGET_FILTERS,
    Progress,
    TargetFilter,
    details_of,
    employee_title,
    filtered_count,
    fix_status,
    helpdesk_link,
    one_run,
    progress_of,
    resumptions_of,
    sees_all_runs,
    target_filters,
    target_page,
    timeline_of,
)
from workflows_app.services.help_requests import help_offer
from workflows_app.views.http import AuthenticatedHttpRequest

MAX_FILTER_LENGTH = 255
MAX_ECHOED = 40

# Every role may follow runs (employees only their own); an account without a role may not.
ANY_ROLE = (Role.EMPLOYEE, Role.HELPDESK, Role.ADMIN)


@never_cache  # shows people's runs: no copy kept by browsers or proxies
@require_safe
@role_required(*ANY_ROLE)
def run_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """One run: who, what, why, its live progress, its batches, its timeline and a page of its
    targets (employees: their fix in plain words)."""
    run = _run_or_404(request, pk)
    if not sees_all_runs(request.user):
        return render(request, "runs/fix.html", _fix_context(request, run, progress_of(run)))
    chosen = target_filter(request.GET)
    after = query_int(request.GET.get("after"))
    page = target_page(run, after=after, target_filter=chosen.filter)
    progress = progress_of(run)
    filter_query = {"outcome": chosen.filter.value} if chosen.filter else {}
    events_after = query_int(request.GET.get("events_after"))
    may_run = _may_run(request, run)
    help_request = help_request_of(run)
    context = {
        **status_context(request.user, approval_of_run(run)),
        "run": run,
        "progress": progress,
        "page": page,
        "targets": [(t, KIND_LABELS.get(t.kind, t.kind), details_of(t)) for t in page.targets],
        "paged": after is not None,
        "filters": target_filters(run),
        "chosen": chosen,
        "shown_total": filtered_count(run, chosen.filter),
        "filter_query": urlencode(filter_query),
        "next_query": urlencode({**filter_query, "after": str(page.next_after)}),
        "may_rerun": _may_rerun(run, progress) and may_run,
        "may_run_again": may_run,
        "resumptions": resumptions_of(run),
        "timeline": timeline_of(run, after=events_after),
        "timeline_paged": events_after is not None,
        "help_request": help_request,
        "help": help_offer(request.user, run, existing=help_request),
    }
    return render(request, "runs/detail.html", context)


@never_cache  # shows people's runs: no copy kept by browsers or proxies
@require_safe
@role_required(*ANY_ROLE)
def run_progress(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """The progress partial alone, polled by htmx; once settled it renders without polling."""
    run = _run_or_404(request, pk)
    progress = progress_of(run)
    if sees_all_runs(request.user):
        may_rerun = _may_rerun(run, progress) and _may_run(request, run)
        context = {"run": run, "progress": progress, "may_rerun": may_rerun}
        response = render(request, "runs/_progress.html", context)
    else:
        response = render(request, "runs/_fix.html", _fix_context(request, run, progress))
    if not progress.polling:
        # The last poll: tell the page to reload its targets, which now carry their outcomes.
        trigger_client_event(response, "run-settled")
    return response


# --- parsing and helpers -------------------------------------------------------------------------


@dataclass(frozen=True)
class ChosenFilter:
    """The targets table's `?outcome=` filter, or None; `ignored` echoes a value not known."""

    filter: TargetFilter | None
    ignored: str = ""


def target_filter(query: QueryDict) -> ChosenFilter:
    """The targets table's filter from `?outcome=`; an unknown value is ignored, and said so."""
    raw = query.get("outcome", "")
    if not raw:
        return ChosenFilter(None)
    known = TARGET_FILTERS.get(raw)
    if known is not None:
        return ChosenFilter(known)
    shown = raw.replace("\x00", "")
    return ChosenFilter(None, ignored=shown[:MAX_ECHOED] + ("…" if len(shown) > MAX_ECHOED else ""))


def query_int(raw: str | None) -> int | None:
    """A non-negative integer query value, or None for anything else (never a 500)."""
    if raw is None:
        return None
    raw = raw.strip()
    # isdigit() also takes digits int() refuses ('²'); ten digits are past any id already.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10:
        return None
    value = int(raw)
    return value if value < 2**31 else None


def _run_or_404(request: AuthenticatedHttpRequest, pk: int) -> Run:
    run = one_run(request.user, pk)
    if run is None:
        raise Http404("No such run.")
    return run


def _may_run(request: AuthenticatedHttpRequest, run: Run) -> bool:
    """Whether this person may start the run's workflow from the run form now."""
    return permissions.refusal(request.user, run.workflow, Run.Source.HELPDESK) is None


def _fix_context(
    request: AuthenticatedHttpRequest, run: Run, progress: Progress
) -> dict[str, object]:
    """What an employee's page of their fix shows, and the help they can ask for."""
    fix = fix_status(run)
    return {
        "run": run,
        "title": employee_title(run),
        "fix": fix,
        "progress": progress,
        "helpdesk_url": helpdesk_link() if fix.may_contact else "",
        "help": help_offer(request.user, run),
    }


def _may_rerun(run: Run, progress: Progress) -> bool:
    """Whether "Re-run on the failed targets" makes sense: some failed, and it was not refused."""
    refused = run.status in (RunStatus.REJECTED, RunStatus.EXPIRED)
    return bool(progress.failed_targets) and not refused
