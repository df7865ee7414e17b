"""Flow pages: the list, one flow (graph, steps, versions, runs), the admins' editor, delete,
export and import in the curation's JSON habit (one document, all or nothing)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from workflows_app.flow_graph import layout
from workflows_app.forms.flows import (
    MAX_ROWS,
    RUN_ON,
    STRATEGIES,
    StepRow,
    attach_errors,
    flow_input,
    rows_from_post,
    rows_from_steps,
)
from workflows_app.models import Flow
from workflows_app.roles import Role, role_required
from workflows_app.selectors.flows import (
    flow_page,
    flow_runs_of,
    latest_runs,
    live_flows,
    one_flow,
    version_of,
)
from workflows_app.services import flows as flow_service
from workflows_app.services.audit import client_address
from workflows_app.services.flow_referrers import choices
from workflows_app.views.http import AuthenticatedHttpRequest, search_query
from workflows_app.views.runs_follow import query_int

STAFF = (Role.HELPDESK, Role.ADMIN)
RUN_ON_LABELS = dict(RUN_ON)
STRATEGY_LABELS = dict(STRATEGIES)
EXPORT_FORMAT = "nexthink-portal-flows"


def flow_or_404(pk: int) -> Flow:
    flow = one_flow(pk)
    if flow is None:
        raise Http404("No such flow.")
    return flow


@require_safe
@role_required(*STAFF)
def flow_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Every flow, by name; `q` filters names (substring, or a glob such as clear*cache)."""
    q = search_query(request)
    page = flow_page(sort_field="name", descending=False, page=0, per_page=1000, name_glob=q)
    latest = latest_runs(page.flows)
    rows = [
        {"flow": f, "latest": latest.get(f.pk), "steps": len(version.steps) if version else 0}
        for f in page.flows
        for version in [version_of(f)]
    ]
    return render(request, "flows/list.html", {"rows": rows, "q": q, "nav_section": "flows"})


@require_safe
@role_required(*STAFF)
def flow_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """A flow's version (the current one, or `?version=n`): graph, steps, versions, runs."""
    flow = flow_or_404(pk)
    version = version_of(flow, query_int(request.GET.get("version")) or flow.version)
    if version is None:
        raise Http404("No such version.")
    steps = [
        {
            **s,
            "on_failure": _strategy(s, "failure"),
            "on_partial": _strategy(s, "partial_success"),
            "run_on_label": RUN_ON_LABELS.get(s.get("run_on", "all"), ""),
        }
        for s in version.steps
    ]
    context = {
        "flow": flow,
        "version": version,
        "steps": steps,
        "graph": layout(version.steps),
        "versions": flow.versions.select_related("created_by").order_by("-number"),
        "runs": flow_runs_of(flow),
        "nav_section": "flows",
    }
    return render(request, "flows/detail.html", context)


def _strategy(step: dict[str, Any], kind: str) -> str:
    chosen = {b["type"]: b["strategy"] for b in step["exception_behavior"]}
    return STRATEGY_LABELS.get(chosen.get(kind, ""), "")


@dataclass(frozen=True)
class _Approval:
    """The editor's four-eyes choice: whether runs wait for approval, and by whom."""

    required: bool = False
    role: str = ""


@require_http_methods(["GET", "POST"])
@role_required(Role.ADMIN)
def flow_edit(request: AuthenticatedHttpRequest, pk: int | None = None) -> HttpResponse:
    """Compose a flow (new, or a new version of one): its steps, then its graph once saved."""
    flow = flow_or_404(pk) if pk is not None else None
    if request.method == "GET":
        current = version_of(flow) if flow is not None else None
        rows = rows_from_steps(current.steps) if current else []
        name = flow.name if flow else ""
        self_service = flow.self_service if flow else False
        approval = _Approval(flow.requires_approval, flow.approver_role) if flow else _Approval()
        return _editor(request, flow, name, self_service, [*rows, StepRow()], [], approval)
    name = request.POST.get("name", "").strip()
    self_service = request.POST.get("self_service") == "on"
    approval = _Approval(
        request.POST.get("requires_approval") == "on", request.POST.get("approver_role", "")
    )
    rows = rows_from_post(request.POST)
    if request.POST.get("action") == "add":
        more = [*rows, StepRow()][:MAX_ROWS]
        return _editor(request, flow, name, self_service, more, [], approval)
    data = flow_input(
        name,
        self_service,
        rows,
        requires_approval=approval.required,
        approver_role=approval.role,
    )
    try:
        if flow is None:
            flow = flow_service.create_flow(
                user=request.user, data=data, ip=client_address(request)
            )
        else:
            flow_service.update_flow(
                flow=flow, user=request.user, data=data, ip=client_address(request)
            )
    except flow_service.FlowInvalid as exc:
        general = attach_errors(rows, exc.errors)
        return _editor(request, flow, name, self_service, rows, general, approval, status=400)
    messages.success(request, f"Saved version {flow.version} of '{flow.name}'.")
    return redirect("flows:detail", flow.pk)


def _editor(
    request: AuthenticatedHttpRequest,
    flow: Flow | None,
    name: str,
    self_service: bool,
    rows: list[StepRow],
    errors: list[str],
    approval: _Approval,
    status: int = 200,
) -> HttpResponse:
    context = {
        "flow": flow,
        "name": name,
        "self_service": self_service,
        "approval": approval,
        "rows": rows,
        "errors": errors,
        "has_errors": bool(errors) or any(r.errors for r in rows),
        "workflows": _with_unknown(choices(), rows),
        "strategies": STRATEGIES,
        "run_on": RUN_ON,
        "nav_section": "flows",
    }
    return render(request, "flows/edit.html", context, status=status)


def _with_unknown(known: list[tuple[str, str]], rows: list[StepRow]) -> list[tuple[str, str]]:
    """The editor's workflows, plus any a row names that the catalogue no longer offers (kept
    selected, so saving says what is wrong instead of silently dropping the step)."""
    offered = {value for value, _ in known}
    missing = sorted({r.referrer for r in rows if r.referrer and r.referrer not in offered})
    return known + [(ref, f"{ref} (not in the catalogue)") for ref in missing]


@require_POST
@role_required(Role.ADMIN)
def flow_delete(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    flow = flow_or_404(pk)
    flow_service.delete_flow(flow=flow, user=request.user, ip=client_address(request))
    messages.success(request, f"Deleted '{flow.name}'; its runs stay in the history.")
    return redirect("flows:list")


@require_safe
@role_required(Role.ADMIN)
def flow_export(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Every flow's current version as one JSON document the import reads back."""
    document = {
        "format": EXPORT_FORMAT,
        "version": 1,
        "exported_at": timezone.now().isoformat(),
        "flows": flow_service.export_items(list(live_flows().order_by("name", "pk"))),
    }
    response = HttpResponse(json.dumps(document, indent=2), content_type="application/json")
    response["Content-Disposition"] = 'attachment; filename="flows.json"'
    return response


@require_http_methods(["GET", "POST"])
@role_required(Role.ADMIN)
def flow_import(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Paste or upload an exported document (or a bare array of flows): all of it or nothing."""
    if request.method == "GET":
        return render(request, "flows/import.html", {"nav_section": "flows"})
    upload = request.FILES.get("document")
    text = upload.read().decode("utf-8", "replace") if upload else request.POST.get("text", "")
    errors: list[str] = []
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        errors = ["document: not valid JSON; paste an exported flows document."]
        data = None
    items = data.get("flows") if isinstance(data, dict) else data
    if not errors:
        try:
            saved = flow_service.import_flows(
                user=request.user, items=items, ip=client_address(request)
            )
        except flow_service.FlowInvalid as exc:
            errors = [f"flows{e}" if e.startswith("[") else e for e in exc.errors]
    if errors:
        context = {"errors": errors, "text": text[:200_000], "nav_section": "flows"}
        return render(request, "flows/import.html", context, status=400)
    messages.success(request, f"Imported {len(saved)} flow(s).")
    return redirect("flows:list")
