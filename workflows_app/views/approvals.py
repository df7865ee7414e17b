"""Four-eyes approval pages: the inbox of requests a person may decide, one request showing
exactly what would run, and the decision (approve, or reject with a comment)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from workflows_app import permissions
from workflows_app.forms.approvals import DecisionForm
from workflows_app.forms.runs import KIND_LABELS
from workflows_app.models import Approval
from workflows_app.roles import Role, role_required
from workflows_app.selectors import approvals as selectors
from workflows_app.selectors.runs import target_page
from workflows_app.services import approvals
from workflows_app.services.audit import client_address
from workflows_app.views.http import AuthenticatedHttpRequest
from workflows_app.views.runs_follow import query_int

TARGETS_SHOWN = 100
STAFF = (Role.HELPDESK, Role.ADMIN)


@never_cache
@require_safe
@role_required(*STAFF)
def inbox(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Requests this person may decide, oldest first; their own waiting; recent decisions."""
    decided_tab = request.GET.get("tab") == "decided"
    context = {
        "decided_tab": decided_tab,
        "pending": [] if decided_tab else selectors.decidable(request.user),
        "own": [] if decided_tab else selectors.own_pending(request.user),
        "decided": selectors.recent_decisions(request.user) if decided_tab else [],
    }
    return render(request, "approvals/inbox.html", context)


@never_cache
@require_safe
@role_required(*STAFF)
def detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """One request: exactly what would run (targets, parameters masked, reason, requester)."""
    approval = _request_or_404(request, pk)
    return render(request, "approvals/detail.html", _context(request, approval, DecisionForm()))


@require_POST
@role_required(*STAFF)
def decide(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Approve or reject; a second decision is told who was first, never an error."""
    approval = _request_or_404(request, pk)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        context = _context(request, approval, form)
        return render(request, "approvals/detail.html", context, status=400)
    comment = form.cleaned_data["comment"]
    ip = client_address(request)
    try:
        if form.approves:
            approvals.approve(approval, user=request.user, comment=comment, ip=ip)
        else:
            approvals.reject(approval, user=request.user, comment=comment, ip=ip)
    except approvals.DecisionRefused as exc:
        context = {**_context(request, approval, form), "refusal": exc.message}
        return render(request, "approvals/detail.html", context, status=exc.status)
    except approvals.AlreadyDecided as exc:
        messages.info(request, exc.message)
        return redirect("approvals:detail", pk=approval.pk)
    word = "approved: it is being sent" if form.approves else "rejected: nothing was sent"
    messages.success(request, f"{_subject(approval)} {word}.")
    return redirect(_subject_url(approval))


def _request_or_404(request: AuthenticatedHttpRequest, pk: int) -> Approval:
    approval = selectors.one_request(pk)
    if approval is None:
        raise Http404("No such request for approval.")
    if not selectors.may_view(request.user, approval):
        raise PermissionDenied("Your role may not decide on this request.")
    return approval


def _context(
    request: AuthenticatedHttpRequest, approval: Approval, form: DecisionForm
) -> dict[str, object]:
    after = query_int(request.GET.get("after"))
    context: dict[str, object] = {
        "approval": approval,
        "form": form,
        "refusal": permissions.may_decide(request.user, approval),
        "approver": permissions.approver_label(approval.approver_role),
        "subject": _subject(approval),
        "subject_url": _subject_url(approval),
        "paged": after is not None,
    }
    if approval.run is not None:
        page = target_page(approval.run, after=after, size=TARGETS_SHOWN)
        context["targets"] = [(KIND_LABELS.get(t.kind, t.kind), t.value) for t in page.targets]
        context["next_after"] = page.next_after
        context["params"] = approval.run.params
    elif approval.flow_run is not None:
        found, following = selectors.flow_run_targets(
            approval.flow_run, after=after, size=TARGETS_SHOWN
        )
        context["targets"] = [(KIND_LABELS.get(t.kind, t.kind), t.value) for t in found]
        context["next_after"] = following
        context["steps"] = approval.flow_run.flow_version.steps
    return context


def _subject(approval: Approval) -> str:
    if approval.run_id is not None:
        return f"Run {approval.run_id}"
    return f"Flow run {approval.flow_run_id}"


def _subject_url(approval: Approval) -> str:
    if approval.run_id is not None:
        return reverse("runs:detail", args=[approval.run_id])
    return reverse("flows:run", args=[approval.flow_run_id])
