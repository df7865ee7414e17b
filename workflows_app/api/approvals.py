"""Four-eyes approval through the API: approve or reject a held run or flow run.

403 for someone who may not decide (their role, or their own request), 404 when the caller may
not open the run, 409 when it does not wait for approval (any more: the answer says who decided).
"""

from django.http import HttpRequest
from ninja import Router

from workflows_app.api.auth import audited, caller
from workflows_app.api.errors import ApiError
from workflows_app.api.schemas import ApprovalOut, DecisionIn, ErrorOut
from workflows_app.models import Approval, ApprovalState
from workflows_app.selectors.approvals import approval_of_flow_run, approval_of_run
from workflows_app.selectors.flows import visible_flow_runs
from workflows_app.selectors.runs import one_run
from workflows_app.services import approvals
from workflows_app.services.audit import client_address

router = Router(tags=["approvals"])
DECISION_ERRORS = {code: ErrorOut for code in (400, 401, 403, 404, 409, 422, 429)}


def approval_out(approval: Approval) -> ApprovalOut:
    """The API's view of a request for approval."""
    return ApprovalOut(
        state=approval.state,
        approver_role=approval.approver_role,
        why=approval.why,
        requested_by=approval.requested_by.get_username(),
        requested_at=approval.requested_at,
        expires_at=approval.expires_at,
        decided_by=approval.decided_by.get_username() if approval.decided_by else None,
        decided_at=approval.decided_at,
        comment=approval.comment,
    )


@router.post(
    "/runs/{int:run_id}/approve", response={200: ApprovalOut, **DECISION_ERRORS}, url_name="approve"
)
@audited
def approve_run(request: HttpRequest, run_id: int, payload: DecisionIn) -> ApprovalOut:
    """Approve a run awaiting approval: its batches are queued for sending."""
    return _decide(request, _run_approval(request, run_id), payload, approve=True)


@router.post(
    "/runs/{int:run_id}/reject", response={200: ApprovalOut, **DECISION_ERRORS}, url_name="reject"
)
@audited
def reject_run(request: HttpRequest, run_id: int, payload: DecisionIn) -> ApprovalOut:
    """Reject a run awaiting approval (`comment` required): nothing is sent."""
    return _decide(request, _run_approval(request, run_id), payload, approve=False)


@router.post(
    "/flow-runs/{int:flow_run_id}/approve",
    response={200: ApprovalOut, **DECISION_ERRORS},
    url_name="approve_flow_run",
)
@audited
def approve_flow_run(request: HttpRequest, flow_run_id: int, payload: DecisionIn) -> ApprovalOut:
    """Approve a flow run awaiting approval: its first steps start."""
    return _decide(request, _flow_run_approval(request, flow_run_id), payload, approve=True)


@router.post(
    "/flow-runs/{int:flow_run_id}/reject",
    response={200: ApprovalOut, **DECISION_ERRORS},
    url_name="reject_flow_run",
)
@audited
def reject_flow_run(request: HttpRequest, flow_run_id: int, payload: DecisionIn) -> ApprovalOut:
    """Reject a flow run awaiting approval (`comment` required): no step starts."""
    return _decide(request, _flow_run_approval(request, flow_run_id), payload, approve=False)


def _run_approval(request: HttpRequest, run_id: int) -> Approval:
    run = one_run(caller(request), run_id) if run_id < 2**31 else None
    if run is None:
        raise ApiError(404, "not_found", f"No run {run_id} you may open.")
    approval = approval_of_run(run)
    if approval is None:
        raise ApiError(409, "not_awaiting_approval", f"Run {run_id} needs no approval.")
    return approval


def _flow_run_approval(request: HttpRequest, flow_run_id: int) -> Approval:
    rows = visible_flow_runs(caller(request))
    flow_run = rows.filter(pk=flow_run_id).first() if flow_run_id < 2**31 else None
    if flow_run is None:
        raise ApiError(404, "not_found", f"No flow run {flow_run_id} you may open.")
    approval = approval_of_flow_run(flow_run)
    if approval is None:
        raise ApiError(409, "not_awaiting_approval", f"Flow run {flow_run_id} needs no approval.")
    return approval


def _decide(
    request: HttpRequest, approval: Approval, payload: DecisionIn, *, approve: bool
) -> ApprovalOut:
    user, ip = caller(request), client_address(request)
    try:
        if approve:
            decided = approvals.approve(approval, user=user, comment=payload.comment, ip=ip)
        else:
            decided = approvals.reject(approval, user=user, comment=payload.comment, ip=ip)
    except approvals.DecisionRefused as exc:
        code = "forbidden" if exc.status == 403 else "validation_error"
        raise ApiError(exc.status, code, exc.message) from None
    except approvals.AlreadyDecided as exc:
        raise ApiError(409, "not_awaiting_approval", exc.message) from None
    assert decided.state != ApprovalState.PENDING
    return approval_out(decided)
