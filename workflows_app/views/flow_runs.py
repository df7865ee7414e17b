"""Running a flow (targets and a reason, like a workflow) and following it: the graph of its
steps live (htmx polling until the flow run ends), each step linking to its run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_htmx.http import HttpResponseStopPolling

from workflows_app import targets as targets_mod
from workflows_app.flow_graph import StepState, layout
from workflows_app.forms.runs import KIND_LABELS
from workflows_app.models import Flow, FlowRun, FlowRunStatus, FlowStepRun, FlowVersion, Run
from workflows_app.roles import Role, role_required
from workflows_app.selectors.approvals import approval_of_flow_run, poll_seconds, status_context
from workflows_app.selectors.flows import (
    NOT_A_FLOW_RUN_ID,
    flow_run_filters,
    flow_run_page,
    latest_runs,
    matching_flow_runs,
    step_rows,
    version_of,
    visible_flow_runs,
)
from workflows_app.services import idempotency, pending_runs
from workflows_app.services.audit import client_address
from workflows_app.services.flow_referrers import resolve
from workflows_app.services.flow_runs import (
    FlowRunRefused,
    approval_need,
    check_flow_run,
    flow_dependency,
    start_flow_run,
)
from workflows_app.services.help_requests import flow_help_offer
from workflows_app.services.params import mask_params
from workflows_app.views.catalogue import NEEDS
from workflows_app.views.csv_files import csv_download, export_refused
from workflows_app.views.flows import RUN_ON_LABELS, STAFF, flow_or_404
from workflows_app.views.http import AuthenticatedHttpRequest
from workflows_app.views.runs_follow import query_int
from workflows_app.views.runs_start import EXPIRED, SAMPLE_SIZE

MAX_TEXT = 5_000_000


@require_http_methods(["GET", "POST"])
@role_required(*STAFF)
def start(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """The targets and reason of a flow run; on POST every problem listed at once, or the
    confirmation page (as for a workflow: nothing starts before "Run now")."""
    flow = flow_or_404(pk)
    if request.method == "GET":
        return _form_page(request, flow)
    text = request.POST.get("targets_text", "")[:MAX_TEXT].replace("\x00", "")
    reason = request.POST.get("reason", "").replace("\x00", "").strip()[:500]
    parsed = targets_mod.parse_text(text)
    errors = [f"Line {e.line}: {e.reason}" if e.line else e.reason for e in parsed.errors]
    if errors:
        return _form_page(request, flow, text, reason, errors=errors, status=400)
    try:
        version = check_flow_run(
            user=request.user, flow=flow, targets=parsed.targets, source=Run.Source.HELPDESK
        )
    except FlowRunRefused as exc:
        status = 403 if exc.forbidden else 400
        return _form_page(request, flow, text, reason, errors=exc.messages, status=status)
    token = pending_runs.stash_flow_run(
        request.session,
        flow=flow,
        version=version.number,
        targets=parsed.targets,
        duplicates=parsed.duplicates,
        reason=reason,
    )
    context = _confirm_context(flow, version, parsed.targets, parsed.duplicates, reason, token)
    return render(request, "flows/confirm.html", context)


@require_POST
@role_required(*STAFF)
def change(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """ "Change something" on the confirmation page: the form again, with what waited there."""
    flow = flow_or_404(pk)
    pending = pending_runs.take_flow_run(request.session, request.POST.get("token", ""), flow)
    if pending is None:
        return _expired(request, flow)
    messages.info(request, "Nothing was started. The targets and reason are back in the form.")
    return _form_page(request, flow, _lines(pending.targets), pending.reason)


@require_POST
@role_required(*STAFF)
def confirm(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Start the flow run the confirmation page describes; a second click finds the first."""
    flow = flow_or_404(pk)
    token = request.POST.get("token", "")
    started = pending_runs.started_flow_run_id(request.session, token)
    if started is not None:
        messages.info(request, "This flow run was already started; here it is.")
        return redirect("flows:run", started)
    pending = pending_runs.take_flow_run(request.session, token, flow)
    if pending is None:
        return _expired(request, flow)
    text = _lines(pending.targets)
    if pending.version != flow.version:
        changed = (
            f"{flow.name} was changed (version {flow.version} now, you confirmed version "
            f"{pending.version}): nothing was started. Check its steps and submit again."
        )
        return _form_page(request, flow, text, pending.reason, errors=[changed], status=409)

    def create() -> FlowRun:
        return start_flow_run(
            user=request.user,
            flow=flow,
            targets=pending.targets,
            reason=pending.reason,
            source=Run.Source.HELPDESK,
            ip=client_address(request),
        )

    try:
        # The session alone cannot stop two clicks sent at once (each reads it before either
        # saves): the token is claimed in the database, and the second click finds the first.
        flow_run, _ = idempotency.create_once(
            user=request.user, key=f"confirm:{token}", body={"flow": flow.pk}, create=create
        )
    except FlowRunRefused as exc:
        status = 403 if exc.forbidden else 400
        return _form_page(request, flow, text, pending.reason, errors=exc.messages, status=status)
    pending_runs.remember_flow_run(request.session, token, flow_run.pk)
    messages.success(request, _started(flow_run))
    return redirect("flows:run", flow_run.pk)


def _form_page(
    request: AuthenticatedHttpRequest,
    flow: Flow,
    targets_text: str = "",
    reason: str = "",
    *,
    errors: list[str] | None = None,
    status: int = 200,
) -> HttpResponse:
    version = version_of(flow)
    context = {
        "flow": flow,
        "graph": layout(version.steps if version else []),
        "targets_text": targets_text,
        "reason": reason,
        "errors": errors or [],
        "nav_section": "flows",
    }
    return render(request, "flows/start.html", context, status=status)


def _expired(request: AuthenticatedHttpRequest, flow: Flow) -> HttpResponse:
    messages.error(request, EXPIRED)
    return _form_page(request, flow, status=400)


def _lines(targets: list[targets_mod.Target]) -> str:
    return "\n".join(targets_mod.to_line(t.kind, t.value) for t in targets)


def _started(flow_run: FlowRun) -> str:
    count = f"{flow_run.target_count:,} target{'s' if flow_run.target_count != 1 else ''}"
    if flow_run.status == FlowRunStatus.AWAITING_APPROVAL:
        return f"Flow run {flow_run.pk} on {count} waits for approval; nothing runs before."
    return f"Flow run {flow_run.pk} started on {count}."


def _confirm_context(
    flow: Flow,
    version: FlowVersion,
    chosen: list[targets_mod.Target],
    duplicates: int,
    reason: str,
    token: str,
) -> dict[str, Any]:
    """What the confirmation page shows: the steps (parameters masked), counts, a sample."""
    found = resolve(s["referrer"] for s in version.steps)
    steps = []
    for s in version.steps:
        referrer = found.get(s["referrer"])
        params = s["params"]
        if referrer is not None and referrer.workflow is not None:
            params = mask_params(referrer.workflow, params)
        steps.append(
            {**s, "params": params, "run_on_label": RUN_ON_LABELS.get(s.get("run_on", "all"), "")}
        )
    dependency = flow_dependency(version)
    return {
        "flow": flow,
        "version": version,
        "graph": layout(version.steps),
        "steps": steps,
        "needs": NEEDS.get(dependency, dependency),
        "token": token,
        "target_count": len(chosen),
        "duplicates": duplicates,
        "sample": [(KIND_LABELS[t.kind], t.value) for t in chosen[:SAMPLE_SIZE]],
        "reason": reason,
        "ttl_minutes": pending_runs.CONFIRM_TTL_SECONDS // 60,
        "warnings": _warnings(flow),
        "approval_needed": approval_need(flow, version, len(chosen)),
        "nav_section": "flows",
    }


def _warnings(flow: Flow) -> list[str]:
    """What the person should know before starting: a run of this flow still going."""
    latest = latest_runs([flow]).get(flow.pk)
    if latest is None or latest.is_final:
        return []
    return [
        f"Flow run {latest.pk} of this flow, started by {latest.created_by.get_username()} "
        f"on {latest.target_count:,} target(s), is {latest.get_status_display().lower()}."
    ]


def _flow_run_or_404(request: AuthenticatedHttpRequest, pk: int) -> FlowRun:
    rows = visible_flow_runs(request.user)
    flow_run = rows.filter(pk=pk).first() if pk < 2**31 else None
    if flow_run is None:
        raise Http404("No such flow run.")
    return flow_run


def _context(flow_run: FlowRun, request: AuthenticatedHttpRequest) -> dict[str, Any]:
    rows = step_rows(flow_run)
    step_runs = [row.run for row in rows if row.run is not None]
    # "Get help" for the requester of an ended self-service flow run, about a step's run.
    offer = flow_help_offer(request.user, step_runs) if flow_run.is_final else None
    definitions = {s["id"]: s for s in flow_run.flow_version.steps}
    states = {}
    for row in rows:
        key = row.outcome if row.state in ("ended",) and row.outcome else row.state
        label = _label(row, flow_run)
        href = reverse("runs:detail", args=[row.run_id]) if row.run_id else ""
        states[row.step_id] = StepState(state=key, label=label, href=href)
    return {
        "flow_run": flow_run,
        "steps": [(row, definitions.get(row.step_id, {}), states[row.step_id]) for row in rows],
        "graph": layout(flow_run.flow_version.steps, states),
        "polling": not flow_run.is_final,
        "poll_seconds": poll_seconds(flow_run.status),
        "help": offer,
    }


def _label(row: FlowStepRun, flow_run: FlowRun) -> str:
    if row.state == "ended":
        return row.get_outcome_display()
    if row.state == "pending" and flow_run.status == FlowRunStatus.AWAITING_APPROVAL:
        return "Waiting for approval"  # not for other steps: no step starts before it
    return row.get_state_display()


@never_cache
@require_safe
@role_required(Role.EMPLOYEE, *STAFF)
def flow_run_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """A flow run: who, what, why, and its steps' graph and table, live while it runs."""
    flow_run = _flow_run_or_404(request, pk)
    approval = status_context(request.user, approval_of_flow_run(flow_run))
    context = {**_context(flow_run, request), **approval, "nav_section": "flows"}
    return render(request, "flows/run.html", context)


@never_cache
@require_safe
@role_required(Role.EMPLOYEE, *STAFF)
def flow_run_progress(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """The steps partial alone, polled by htmx; once the flow run ended, polling stops."""
    flow_run = _flow_run_or_404(request, pk)
    response = render(request, "flows/_run_steps.html", _context(flow_run, request))
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
    """The flow runs this person may see, filtered by flow and status, newest first, 50 a page
    (`before` an id); a value it cannot use is ignored and said so."""
    filters, ignored = flow_run_filters(request.GET.get("flow"), request.GET.get("status"))
    raw_before = request.GET.get("before")
    before = query_int(raw_before)
    if raw_before is not None and before is None:
        ignored.append(NOT_A_FLOW_RUN_ID)
    page = flow_run_page(
        request.user, before=before, flow=filters.flow, status=filters.status, size=HISTORY_SIZE
    )
    query = filters.as_query()
    context = {
        "flow_runs": page.flow_runs,
        "filters": filters,
        "ignored": ignored,
        "statuses": FlowRunStatus.choices,
        "filter_query": urlencode(query),
        "next_query": urlencode({**query, "before": page.next_before}),
        "more": page.next_before is not None,
        "paged": before is not None,
        "nav_section": "flows",
    }
    return render(request, "flows/runs.html", context)


@never_cache
@require_safe
@role_required(Role.EMPLOYEE, *STAFF)
def flow_runs_export(request: AuthenticatedHttpRequest) -> HttpResponseBase:
    """The flow runs of the list's filters as CSV, one row each, its steps summarised; a filter
    value it cannot use refuses the export (400)."""
    filters, ignored = flow_run_filters(request.GET.get("flow"), request.GET.get("status"))
    if "before" in request.GET:
        ignored.append("'before' is not a filter of the export.")
    if ignored:
        return export_refused(ignored)
    chosen = matching_flow_runs(request.user, filters)

    def rows() -> Iterator[list[object]]:
        for flow_run in chosen.prefetch_related("steps").iterator(chunk_size=500):
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

    return csv_download(CSV_HEADER, rows(), name="flow-runs", slug=filters.status)
