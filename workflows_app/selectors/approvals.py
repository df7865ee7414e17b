"""Reading requests for approval as each person may decide them: the inbox, its count in the
navigation, recent decisions, one request, and the approval of a run or flow run."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from workflows_app import permissions
from workflows_app import targets as targets_mod
from workflows_app.models import Approval, ApprovalState, FlowRun, Run
from workflows_app.roles import Role, user_role

INBOX_SHOWN = 200
DECIDED_SHOWN = 50
# The navigation's count stops here ("99+"): it reads ids, never a COUNT over the table.
COUNT_CAP = 99
# How often a run's or flow run's page asks for news: every 2 s while it runs, but a request for
# approval can wait a day, so then every 30 s (an approval still shows within 30 s).
POLL_SECONDS = 2
POLL_SECONDS_AWAITING_APPROVAL = 30


def poll_seconds(status: str) -> int:
    """Seconds between two polls of a page following a run or flow run with this status."""
    return POLL_SECONDS_AWAITING_APPROVAL if status == "awaiting_approval" else POLL_SECONDS


def _roles_decidable(user: User | AnonymousUser) -> list[str]:
    """The approver roles of the requests this person's role may decide."""
    role = user_role(user)
    if role is Role.ADMIN:
        return [Role.ADMIN.value, Role.HELPDESK.value, ""]
    if role is Role.HELPDESK:
        return [Role.HELPDESK.value]
    return []


def _with_subjects(rows: QuerySet[Approval]) -> QuerySet[Approval]:
    return rows.select_related(
        "run", "flow_run__flow", "flow_run__flow_version", "requested_by", "decided_by"
    )


def decidable(user: User | AnonymousUser, *, limit: int = INBOX_SHOWN) -> list[Approval]:
    """Pending requests this person may decide (never their own), oldest first."""
    rows = Approval.objects.filter(
        state=ApprovalState.PENDING, approver_role__in=_roles_decidable(user)
    ).exclude(requested_by_id=user.pk)
    return list(_with_subjects(rows).order_by("requested_at", "pk")[:limit])


def waiting_count(user: User | AnonymousUser) -> int:
    """How many pending requests this person may decide, up to COUNT_CAP + 1."""
    roles = _roles_decidable(user)
    if not roles:
        return 0
    rows = Approval.objects.filter(state=ApprovalState.PENDING, approver_role__in=roles).exclude(
        requested_by_id=user.pk
    )
    return len(rows.order_by().values_list("pk", flat=True)[: COUNT_CAP + 1])


def own_pending(user: User | AnonymousUser, *, limit: int = INBOX_SHOWN) -> list[Approval]:
    """This person's own requests still waiting for someone else, oldest first."""
    rows = Approval.objects.filter(state=ApprovalState.PENDING, requested_by_id=user.pk)
    return list(_with_subjects(rows).order_by("requested_at", "pk")[:limit])


def recent_decisions(user: User | AnonymousUser, *, limit: int = DECIDED_SHOWN) -> list[Approval]:
    """Requests of the kinds this person may decide that were decided or expired, newest first."""
    rows = Approval.objects.filter(approver_role__in=_roles_decidable(user)).exclude(
        state=ApprovalState.PENDING
    )
    return list(_with_subjects(rows).order_by("-decided_at", "-pk")[:limit])


def one_request(pk: int) -> Approval | None:
    """A request by id with what it is about, or None (the view decides who may see it)."""
    if not 0 < pk < 2**31:
        return None
    return _with_subjects(Approval.objects.filter(pk=pk)).first()


def may_view(user: User | AnonymousUser, approval: Approval) -> bool:
    """Whether this person may open the request's page: its approvers, and its requester."""
    return user.pk == approval.requested_by_id or permissions.role_may_decide(
        user, approval.approver_role
    )


def approval_of_run(run: Run) -> Approval | None:
    """The run's request for approval, if it needed one."""
    return Approval.objects.filter(run=run).select_related("decided_by").first()


def approval_of_flow_run(flow_run: FlowRun) -> Approval | None:
    """The flow run's request for approval, if it needed one."""
    return Approval.objects.filter(flow_run=flow_run).select_related("decided_by").first()


def status_context(user: User | AnonymousUser, approval: Approval | None) -> dict[str, object]:
    """What templates/approvals/_status.html shows on a run's or flow run's page."""
    if approval is None:
        return {"approval": None}
    return {
        "approval": approval,
        "approver": permissions.approver_label(approval.approver_role),
        "may_decide": permissions.may_decide(user, approval) is None,
        "may_view": may_view(user, approval),  # its requester sees it read-only
        "show_link": True,
    }


def flow_run_targets(
    flow_run: FlowRun, *, after: int | None, size: int
) -> tuple[list[targets_mod.Target], int | None]:
    """A page of a flow run's targets past position `after`, and the position the next follows."""
    everyone = targets_mod.from_session_text(flow_run.targets)
    start = 0 if after is None else after + 1
    page = everyone[start : start + size]
    following = start + size - 1 if start + size < len(everyone) else None
    return page, following
