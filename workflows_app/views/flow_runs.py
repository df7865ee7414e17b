"""Running a flow (targets and a reason, like a workflow) and following it: the graph of its
steps live (htmx polling until the flow run ends), each step linking to its run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe
from django_htmx.http import HttpResponseStopPolling

from workflows_app import targets as targets_mod
from workflows_app.flow_graph import StepState, layout
from workflows_app.models import FlowRun, FlowRunStatus, FlowStepRun, Run
from workflows_app.roles import Role, role_required
from workflows_app.selectors.approvals import approval_of_flow_run, status_context
from workflows_app.selectors.flows import (
    flow_run_page,
    step_rows,
    version_of,
    visible_flow_runs,
)
from workflows_app.services.audit import client_address
from workflows_app.services.flow_runs import FlowRunRefused, start_flow_run
from workflows_app.views.csv_files import csv_download
from workflows_app.views.flows import STAFF, flow_or_404
from workflows_app.views.http import AuthenticatedHttpRequest
from workflows_app.views.runs_follow import query_int

MAX_TEXT = 5_000_000


@require_http_methods(["GET", "POST"])
@role_required(*STAFF)
def start(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """The targets and reason of a flow run; on POST it starts (every problem listed at once)."""
    flow = flow_or_404(pk)
    version = version_of(flow)
    context: dict[str, Any] = {
        "flow": flow,
        "graph": layout(version.steps if version else []),
        "targets_text": "",
        "reason": "",
        "errors": [],
        "nav_section": "flows",
    }
    if request.method == "GET":
        return render(request, "flows/start.html", context)
    text = request.POST.get("targets_text", "")[:MAX_TEXT].replace("\x00", "")
    reason = request.POST.get("reason", "").replace("\x00", "").strip()[:500]
    context.update(targets_text=text, reason=reason)
    parsed = targets_mod.parse_text(text)
    errors = [f"Line {e.line}: {e.reason}" if e.line else e.reason for e in parsed.errors]
    if not errors:
        try:
            flow_run = start_flow_run(
                user=request.user,
                flow=flow,
                targets=parsed.targets,
                reason=reason,
                source=Run.Source.HELPDESK,
                ip=client_address(request),
            )
        except FlowRunRefused as exc:
            errors = exc.messages
            if exc.forbidden:
                context["errors"] = errors
                return render(request, "flows/start.html", context, status=403)
    if errors:
        context["errors"] = errors
        return render(request, "flows/start.html", context, status=400)
    if flow_run.status == FlowRunStatus.AWAITING_APPROVAL:
        messages.info(
            request,
            f"Flow run {flow_run.pk} waits for approval: no step starts until someone else "
            "approves it.",
        )
    else:
        messages.success(
            request, f"Flow run {flow_run.pk} started on {flow_run.target_count} target(s)."
        )
    return redirect("flows:run", flow_run.pk)


def _flow_run_or_404(request: AuthenticatedHttpRequest, pk: int) -> FlowRun:
    rows = visible_flow_runs(request.user)
    flow_run = rows.filter(pk=pk).first() if pk < 2**31 else None
    if flow_run is None:
        raise Http404("No such flow run.")
    return flow_run


def _context(flow_run: FlowRun) -> dict[str, Any]:
    rows = step_rows(flow_run)
    definitions = {s["id"]: s for s in flow_run.flow_version.steps}
    states = {}
    for row in rows:
        key = row.outcome if row.state in ("ended",) and row.outcome else row.state
        label = _label(row)
        href = reverse("runs:detail", args=[row.run_id]) if row.run_id else ""
        states[row.step_id] = StepState(state=key, label=label, href=href)
    return {
        "flow_run": flow_run,
        "steps": [(row, definitions.get(row.step_id, {}), states[row.step_id]) for row in rows],
        "graph": layout(flow_run.flow_version.steps, states),
        "polling": not flow_run.is_final,
    }


def _label(row: FlowStepRun) -> str:
    if row.state == "ended":
        return row.get_outcome_display()
    return row.get_state_display()


@never_cache
@require_safe
@role_required(Role.EMPLOYEE, *STAFF)
def flow_run_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """A flow run: who, what, why, and its steps' graph and table, live while it runs."""
    flow_run = _flow_run_or_404(request, pk)
    approval = status_context(request.user, approval_of_flow_run(flow_run))
    context = {**_context(flow_run), **approval, "nav_section": "flows"}
    return render(request, "flows/run.html", context)


@never_cache
@require_safe
@role_required(Role.EMPLOYEE, *STAFF)
def flow_run_progress(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """The steps partial alone, polled by htmx; once the flow run ended, polling stops."""
    flow_run = _flow_run_or_404(request, pk)
    response = render(request, "flows/_run_steps.html", _context(flow_run))
    if flow_run.is_final and request.htmx:
        stop = HttpResponseStopPolling(response.content)
        return stop
    return response


HISTORY_SIZE = 50
CSV_HEADER = (
    "flow_run",
    "started_at",
    "flow",
    "version",
    "requester",
    "role",
    "source",
    "targets",
    "status",
    "stop_reason",
    "finished_at",
    "reason",
    "steps",
)


@never_cache
@require_safe
@role_required(Role.EMPLOYEE, *STAFF)
def flow_run_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The flow runs this person may see, newest first, 50 a page (`before` an id)."""
    page = flow_run_page(
        request.user, before=query_int(request.GET.get("before")), size=HISTORY_SIZE
    )
    context = {
        "flow_runs": page.flow_runs,
        "next_before": page.next_before,
        "nav_section": "flows",
    }
    return render(request, "flows/runs.html", context)


@never_cache
@require_safe
@role_required(Role.EMPLOYEE, *STAFF)
def flow_runs_export(request: AuthenticatedHttpRequest) -> StreamingHttpResponse:
    """Every flow run this person may see as CSV, one row each, its steps summarised."""

    def rows() -> Iterator[list[object]]:
        for flow_run in (
            visible_flow_runs(request.user).prefetch_related("steps").iterator(chunk_size=500)
        ):
            steps = "; ".join(
                f"{s.step_id}={s.outcome or s.state}" + (f" (run {s.run_id})" if s.run_id else "")
                for s in sorted(flow_run.steps.all(), key=lambda s: s.position)
            )
            yield [
                flow_run.pk,
                flow_run.created_at.isoformat(),
                flow_run.flow_version.name,
                flow_run.flow_version.number,
                flow_run.created_by.get_username(),
                flow_run.role,
                flow_run.source,
                flow_run.target_count,
                flow_run.status,
                flow_run.stop_reason,
                flow_run.finished_at.isoformat() if flow_run.finished_at else "",
                flow_run.reason,
                steps,
            ]

    return csv_download(CSV_HEADER, rows(), name="flow-runs")
