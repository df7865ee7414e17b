"""Following runs: the list of recent runs, one run's page and its live progress partial.

The views parse the query string, ask `selectors.runs`, and render; what a page shows and how it
is read lives in the selector.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_safe
from django_htmx.http import trigger_client_event

from workflows_app.forms.runs import KIND_LABELS
from workflows_app.models import RunStatus
from workflows_app.roles import Role, role_required
from workflows_app.selectors.runs import (
    RunFilters,
    progress_of,
    run_page,
    sees_all_runs,
    target_page,
    visible_runs,
)
from workflows_app.views.http import AuthenticatedHttpRequest

MAX_FILTER_LENGTH = 255

# Every role may follow runs (employees only their own); an account without a role may not.
ANY_ROLE = (Role.EMPLOYEE, Role.HELPDESK, Role.ADMIN)


@require_safe
@role_required(*ANY_ROLE)
def run_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Recent runs visible to this person, newest first, 50 a page (keyset on id, no COUNT)."""
    filters = run_filters(request.GET)
    before = _int(request.GET.get("before"))
    page = run_page(request.user, filters=filters, before=before)
    context = {
        "runs": page.runs,
        "statuses": RunStatus.choices,
        "filters": filters,
        "filter_query": urlencode(filters.as_query()),
        "next_query": urlencode(page.next_query),
        "paged": before is not None,
        "mine_only": not sees_all_runs(request.user),
    }
    return render(request, "runs/list.html", context)


@require_safe
@role_required(*ANY_ROLE)
def run_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """One run: who, what, why, its live progress, its batches and a page of its targets."""
    run = get_object_or_404(visible_runs(request.user), pk=pk)
    after = _int(request.GET.get("after"))
    page = target_page(run, after=after)
    context = {
        "run": run,
        "progress": progress_of(run),
        "page": page,
        "targets": [(t, KIND_LABELS.get(t.kind, t.kind)) for t in page.targets],
        "paged": after is not None,
    }
    return render(request, "runs/detail.html", context)


@require_safe
@role_required(*ANY_ROLE)
def run_progress(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """The progress partial alone, polled by htmx; once final it renders without polling."""
    run = get_object_or_404(visible_runs(request.user), pk=pk)
    progress = progress_of(run)
    response = render(request, "runs/_progress.html", {"run": run, "progress": progress})
    if not progress.polling:
        # The last poll: tell the page to reload its targets, which now carry execution ids.
        trigger_client_event(response, "run-settled")
    return response


def run_filters(query: QueryDict) -> RunFilters:
    """The runs list's filters from the query string; a value that cannot match is dropped."""
    status = query.get("status", "")
    # No NQL id holds a NUL, and PostgreSQL text cannot: dropped, not a 500.
    workflow = query.get("workflow", "").replace("\x00", "").strip()[:MAX_FILTER_LENGTH]
    return RunFilters(status=status if status in RunStatus.values else "", workflow=workflow)


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
