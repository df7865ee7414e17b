"""The waiting inbox: executions paused on a "wait for event" step, and resuming them.

Helpdesk and admins only. The inbox lists waiting targets with a resume form each; a resume
POST goes to the service, then back to the inbox with Nexthink's request id, or shows the one
execution's form again with what went wrong (400, 403, 404, 429 or 503 as it fits).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from workflows_app.forms.runs import KIND_LABELS
from workflows_app.forms.waiting import ADD_ROW, ResumeForm
from workflows_app.models import Run, Target, Workflow
from workflows_app.permissions import may_resume
from workflows_app.roles import Role, role_required
from workflows_app.selectors.runs import employee_title
from workflows_app.selectors.waiting import (
    recent_resumptions,
    visible_execution,
    waiting_page,
)
from workflows_app.services.audit import client_address
from workflows_app.services.resume import ResumeRefused, resume_execution
from workflows_app.views.http import AuthenticatedHttpRequest

STAFF = (Role.HELPDESK, Role.ADMIN)


@dataclass(frozen=True)
class Item:
    """One waiting execution as the inbox shows it, with its form or why it cannot be resumed."""

    target: Target
    run: Run
    title: str
    kind: str
    refusal: str | None
    form: ResumeForm | None


def _item(
    request: AuthenticatedHttpRequest,
    target: Target,
    *,
    data: Any = None,
    more_rows: bool = False,
    refusals: dict[int, str | None] | None = None,
) -> Item:
    """The inbox entry of a target; `refusals` caches the rule per workflow for a page."""
    run = target.run
    workflow: Workflow = run.workflow
    cache = refusals if refusals is not None else {}
    if workflow.pk not in cache:
        cache[workflow.pk] = may_resume(request.user, workflow)
    refusal = cache[workflow.pk]
    form = None
    if refusal is None:
        form = ResumeForm(workflow, data, more_rows=more_rows, auto_id=f"id_resume{target.pk}_%s")
    return Item(
        target=target,
        run=run,
        title=employee_title(run),
        kind=KIND_LABELS.get(target.kind, target.kind),
        refusal=refusal,
        form=form,
    )


@never_cache  # shows people's runs: no copy kept by browsers or proxies
@require_safe
@role_required(*STAFF)
def inbox(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Waiting executions of the runs this person may open, newest first, 25 a page."""
    before = _before(request.GET.get("before", ""))
    page = waiting_page(request.user, before=before)
    refusals: dict[int, str | None] = {}
    context = {
        "items": [_item(request, target, refusals=refusals) for target in page.targets],
        "next_before": page.next_before,
        "paged": before is not None,
        "resumptions": recent_resumptions(request.user),
    }
    return render(request, "waiting/inbox.html", context)


@require_POST
@role_required(*STAFF)
def resume(request: AuthenticatedHttpRequest, execution_uuid: str) -> HttpResponse:
    """Resume one execution with the posted parameters (or add a blank row and show it again)."""
    target = visible_execution(request.user, execution_uuid)
    if target is None:
        raise Http404("No such execution in the portal's runs.")
    more_rows = ADD_ROW in request.POST
    item = _item(request, target, data=request.POST, more_rows=more_rows)
    if item.form is None:
        return _page(request, item, item.refusal, status=403)
    if more_rows:
        return _page(request, item, None, status=200)
    if not item.form.is_valid():
        return _page(request, item, "Nothing was resumed: correct the fields marked below.", 400)
    try:
        resumption = resume_execution(
            user=request.user,
            execution_uuid=target.execution_uuid,
            params=item.form.params(),
            source=Run.Source.HELPDESK,
            secret=item.form.secret_names(),
            ip=client_address(request),
        )
    except ResumeRefused as exc:
        return _page(request, item, exc.message, status=exc.status)
    messages.success(
        request,
        f"{item.title} resumed for {target.value}: Nexthink's request id is "
        f"{resumption.request_uuid}. Run #{item.run.pk} follows it.",
    )
    return redirect("runs:waiting")


def _page(
    request: AuthenticatedHttpRequest, item: Item, error: str | None, status: int
) -> HttpResponse:
    """The one execution's resume page: its form again, and what went wrong if anything."""
    context: dict[str, Any] = {"item": item, "error": error}
    return render(request, "waiting/resume.html", context, status=status)


def _before(raw: str) -> int | None:
    """The keyset cursor (a target id) from the query string, or None for anything else."""
    raw = raw.strip()
    if raw.isascii() and raw.isdigit() and len(raw) <= 10 and int(raw) < 2**63:
        return int(raw)
    return None
