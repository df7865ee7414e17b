"""How the flows API shows flows and flow runs (seed 003's field names)."""

from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from workflows_app.api.approvals import approval_out
from workflows_app.api.flow_schemas import (
    ExceptionBehaviorOut,
    FlowOut,
    FlowRunOut,
    FlowRunStepOut,
    FlowRunSummaryOut,
    FlowStepOut,
    FlowSummaryOut,
    LatestRunOut,
)
from workflows_app.api.runs import run_url
from workflows_app.models import Flow, FlowRun, FlowVersion
from workflows_app.selectors.approvals import approval_of_flow_run
from workflows_app.selectors.flows import latest_runs, step_rows


def flow_run_out(request: HttpRequest, flow_run: FlowRun, *, created: bool = True) -> FlowRunOut:
    """A flow run as the API shows it, with its steps."""
    approval = approval_of_flow_run(flow_run)
    return FlowRunOut(
        **flow_run_summary(request, flow_run).model_dump(),
        approval=approval_out(approval) if approval is not None else None,
        steps=[
            FlowRunStepOut(
                id=s.step_id,
                state=s.state,
                outcome=s.outcome,
                reason=s.reason,
                run=s.run_id,
                run_url=run_url(request, s.run_id) if s.run_id else None,
            )
            for s in step_rows(flow_run)
        ],
        created=created,
    )


def flow_run_summary(request: HttpRequest, flow_run: FlowRun) -> FlowRunSummaryOut:
    """A flow run as the API lists it (its steps are in the flow run's own answer)."""
    return FlowRunSummaryOut(
        id=flow_run.pk,
        url=request.build_absolute_uri(reverse("api:flow_run", args=[flow_run.pk])),
        page_url=request.build_absolute_uri(reverse("flows:run", args=[flow_run.pk])),
        flow=flow_run.flow_id,
        flow_name=flow_run.flow_version.name,
        version_number=flow_run.flow_version.number,
        status=flow_run.status,
        stop_reason=flow_run.stop_reason,
        target_count=flow_run.target_count,
        created_at=flow_run.created_at,
        finished_at=flow_run.finished_at,
        requester=flow_run.created_by.get_username(),
        reason=flow_run.reason,
    )


def current_steps(flows: list[Flow]) -> dict[int, list[dict[str, Any]]]:
    wanted = {(f.pk, f.version) for f in flows}
    found: dict[int, list[dict[str, Any]]] = {f.pk: [] for f in flows}
    for version in FlowVersion.objects.filter(flow__in=flows):
        if (version.flow_id, version.number) in wanted:
            found[version.flow_id] = version.steps
    return found


def summary(
    request: HttpRequest, flow: Flow, latest: FlowRun | None, steps_count: int
) -> FlowSummaryOut:
    return FlowSummaryOut(
        id=flow.pk,
        name=flow.name,
        steps_count=steps_count,
        created_by=flow.created_by.get_username() if flow.created_by else "",
        creation_date=flow.created_at,
        modified_by=flow.modified_by.get_username() if flow.modified_by else None,
        modification_date=flow.modified_at,
        latest_run=(
            LatestRunOut(
                id=latest.pk,
                url=request.build_absolute_uri(reverse("api:flow_run", args=[latest.pk])),
                started_at=latest.created_at,
                started_by=latest.created_by.get_username(),
                status=latest.status,
            )
            if latest is not None
            else None
        ),
        self_service=flow.self_service,
        version_number=flow.version,
    )


def flow_out(request: HttpRequest, flow: Flow, version: FlowVersion | None) -> FlowOut:
    assert version is not None
    latest = latest_runs([flow]).get(flow.pk)
    return FlowOut(
        **summary(request, flow, latest, len(version.steps)).model_dump(),
        version="2.0",
        type="IntegrationFlow",
        steps=[
            FlowStepOut(
                **{
                    **s,
                    "exception_behavior": [
                        ExceptionBehaviorOut(**b) for b in s["exception_behavior"]
                    ],
                }
            )
            for s in version.steps
        ],
    )
