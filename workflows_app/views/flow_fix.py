"""A flow offered for self-service: one fix of several steps on the employee's own device.

As with a single fix, nothing the request says about targets is trusted: the device is found
among the person's own (services.devices) and the user target is their own UPN.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from workflows_app.models import Flow, FlowRunStatus, Run
from workflows_app.roles import Role, role_required
from workflows_app.selectors.flows import live_flows, version_of
from workflows_app.services.audit import client_address
from workflows_app.services.devices import devices_for, user_upn
from workflows_app.services.flow_runs import FlowRunRefused, flow_dependency, start_flow_run
from workflows_app.services.self_service import (
    DEVICE_DEPENDENCIES,
    USER_DEPENDENCIES,
    SelfServiceRefused,
    targets_for,
)
from workflows_app.views.http import AuthenticatedHttpRequest


def offered_flows() -> list[Flow]:
    """The flows admins offer to employees, by name."""
    return list(live_flows().filter(self_service=True).order_by("name", "pk"))


@never_cache
@require_http_methods(["GET", "POST"])
@role_required(Role.EMPLOYEE, Role.HELPDESK, Role.ADMIN)
def fix(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Confirm, then run an offered flow on the person's own device and account."""
    flow = live_flows().filter(pk=pk, self_service=True).first() if pk < 2**31 else None
    version = version_of(flow) if flow is not None else None
    if flow is None or version is None:
        raise Http404("No such fix.")
    dependency = flow_dependency(version)
    lookup = devices_for(request.user) if dependency in DEVICE_DEPENDENCIES else None
    upn = user_upn(request.user) if dependency in USER_DEPENDENCIES else None
    context: dict[str, Any] = {
        "flow": flow,
        "steps": [s for s in version.steps if not s["is_skipped"]],
        "lookup": lookup,
        "selected_key": lookup.preselected.key if lookup and lookup.preselected else "",
        "upn": upn,
        "needs_user": dependency in USER_DEPENDENCIES,
        "error": "",
    }
    if request.method == "GET":
        return render(request, "flows/fix.html", context)
    device = lookup.find(request.POST.get("device", "")) if lookup is not None else None
    try:
        targets = targets_for(dependency, upn=upn, device=device)
        flow_run = start_flow_run(
            user=request.user,
            flow=flow,
            targets=targets,
            reason=f"Self-service on {device.label}" if device else "Self-service",
            source=Run.Source.SELF_SERVICE,
            ip=client_address(request),
        )
    except SelfServiceRefused as exc:
        return render(request, "flows/fix.html", {**context, "error": exc.message}, status=400)
    except FlowRunRefused as exc:
        status = 403 if exc.forbidden else 400
        return render(request, "flows/fix.html", {**context, "error": str(exc)}, status=status)
    if flow_run.status == FlowRunStatus.AWAITING_APPROVAL:
        messages.info(
            request,
            f"{flow.name} is waiting for approval: it runs once someone approves it. "
            "This page shows when it does.",
        )
    else:
        messages.success(request, f"{flow.name} started; this page shows how it goes.")
    return redirect("flows:run", flow_run.pk)
