"""Employee self-service: curated fixes as cards, a confirmation, and a run on one's own device."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby
from typing import Any

from django.contrib import messages
from django.db.models import Q, QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe
from django_htmx.http import HttpResponseClientRedirect

from workflows_app import permissions
from workflows_app.models import Run, RunStatus, Workflow
from workflows_app.roles import Role, role_required
from workflows_app.selectors.catalogue import self_service_workflows
from workflows_app.selectors.self_service import any_unfinished, recent_fixes
from workflows_app.services import approvals
from workflows_app.services.audit import client_address
from workflows_app.services.devices import DeviceLookup, user_upn
from workflows_app.services.escalation import channel_configured, contact_text
from workflows_app.services.portal_settings import helpdesk_contact
from workflows_app.services.runs import RunRefused
from workflows_app.services.self_service import (
    SelfServiceRefused,
    devices_offered,
    needs_device,
    needs_user,
    start_self_service_run,
)
from workflows_app.views.flow_fix import offered_flows
from workflows_app.views.http import AuthenticatedHttpRequest, search_query

EVERY_ROLE = (Role.EMPLOYEE, Role.HELPDESK, Role.ADMIN)
OTHER_CATEGORY = "Other"


@dataclass(frozen=True)
class Card:
    """One curated fix as an employee sees it."""

    workflow: Workflow
    title: str
    description: str
    category: str
    unavailable: str | None


@dataclass(frozen=True)
class Category:
    """Cards under one category heading."""

    name: str
    cards: list[Card]


def run_url(run: Run) -> str:
    """The run's page (owned by the runs area)."""
    return f"/runs/{run.pk}/"


def _card(workflow: Workflow, unavailable: str | None) -> Card:
    """The card of a curated workflow (its curation must be loaded)."""
    curation = workflow.curation
    return Card(
        workflow=workflow,
        title=curation.display_title,
        description=curation.description or workflow.description,
        category=curation.category.strip() or OTHER_CATEGORY,
        unavailable=unavailable,
    )


def _unavailable(workflow: Workflow) -> str | None:
    """Why the run rule says no one can start this fix from the self-service page, or None."""
    refused = permissions.workflow_refusal(workflow, Run.Source.SELF_SERVICE)
    return refused.message if refused is not None else None


def _search(workflows: QuerySet[Workflow], q: str) -> QuerySet[Workflow]:
    """Keep the fixes whose employee-facing (or Nexthink) title or description mention `q`."""
    return workflows.filter(
        Q(curation__title__icontains=q)
        | Q(curation__description__icontains=q)
        | Q(name__icontains=q)
        | Q(description__icontains=q)
    )


def _categories(workflows: QuerySet[Workflow]) -> list[Category]:
    """Cards grouped by category (A-Z, uncategorised last), titles A-Z within each."""
    cards = sorted(
        (_card(w, _unavailable(w)) for w in workflows),
        key=lambda c: (c.category == OTHER_CATEGORY, c.category.casefold(), c.title.casefold()),
    )
    return [Category(name, list(group)) for name, group in groupby(cards, key=lambda c: c.category)]


def _recent_context(request: AuthenticatedHttpRequest) -> dict[str, Any]:
    """The person's recent fixes, whether the area refreshes itself, and the helpdesk contact:
    "Get help" when the portal can send requests, else the contact text."""
    fixes = recent_fixes(request.user)
    failed = any(fix.did_not_work for fix in fixes)
    offered = failed and channel_configured()
    return {
        "recent_fixes": fixes,
        "polling": any_unfinished(fixes),
        "helpdesk": helpdesk_contact() if failed else None,
        "help_offered": offered,
        "help_contact": contact_text() if failed and not offered else "",
    }


@never_cache  # shows people's runs: no copy kept by browsers or proxies
@require_safe
@role_required(*EVERY_ROLE)
def home(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The fixes offered to the signed-in person; an htmx search gets the cards partial only."""
    # PostgreSQL text cannot hold NUL (a 500 in the filter), and no title contains one.
    q = search_query(request)
    workflows = self_service_workflows().prefetch_related("parameters")
    if q:
        workflows = _search(workflows, q)
    context = {"q": q, "categories": _categories(workflows)}
    if request.htmx and not request.htmx.history_restore_request:
        response = render(request, "self_service/_cards.html", context)
    else:
        context.update(_recent_context(request), flows=offered_flows())
        response = render(request, "self_service/home.html", context)
    patch_vary_headers(response, ("HX-Request",))
    return response


@never_cache  # shows people's runs: no copy kept by browsers or proxies
@require_safe
@role_required(*EVERY_ROLE)
def recent(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The recent-fixes area alone, polled by htmx; once every fix is final it stops polling."""
    return render(request, "self_service/_recent.html", _recent_context(request))


def _offered(workflow_id: int) -> Workflow:
    """The curated self-service workflow, or 404 (whatever the person's role)."""
    return get_object_or_404(
        self_service_workflows().prefetch_related("parameters"), pk=workflow_id
    )


def _confirmation(card: Card, lookup: DeviceLookup | None, upn: str | None) -> str:
    """The question asked before running: the admin's text, else one naming the target."""
    custom = card.workflow.curation.confirmation_text.strip()
    if custom:
        return custom
    device = lookup.preselected if lookup is not None else None
    if device is not None:
        return f"This runs {card.title} on {device.label}. Continue?"
    if upn:
        return f"This runs {card.title} for your account {upn}. Continue?"
    return f"This runs {card.title}. Continue?"


def _confirm_context(
    request: AuthenticatedHttpRequest,
    workflow: Workflow,
    *,
    unavailable: str | None,
    chosen: str | None = None,
) -> dict[str, Any]:
    """What the confirmation shows: devices, the one selected, the question, whether it can run."""
    card = _card(workflow, unavailable)
    offered = needs_device(workflow) and not unavailable
    lookup = devices_offered(request.user, workflow) if offered else None
    upn = user_upn(request.user) if needs_user(workflow) else None
    selected = lookup.find(chosen) if lookup is not None else None
    if selected is None and lookup is not None:
        selected = lookup.preselected
    can_run = unavailable is None and (lookup is None or selected is not None)
    if needs_user(workflow) and upn is None:
        can_run = False
    return {
        "card": card,
        "lookup": lookup,
        "selected_key": selected.key if selected is not None else "",
        "needs_user": needs_user(workflow),
        "upn": upn,
        "confirmation": _confirmation(card, lookup, upn),
        "can_run": can_run,
        # A fix runs on one device: only its curation can make it wait for an approver.
        "approval_needed": approvals.requirement(workflow, 1),
    }


@never_cache  # shows people's runs: no copy kept by browsers or proxies
@require_safe
@role_required(*EVERY_ROLE)
def confirm(request: AuthenticatedHttpRequest, workflow_id: int) -> HttpResponse:
    """Ask before running: the confirmation text and the person's devices, recent one chosen."""
    workflow = _offered(workflow_id)
    context = _confirm_context(request, workflow, unavailable=_unavailable(workflow))
    partial = request.htmx and not request.htmx.history_restore_request
    template = "self_service/_confirm.html" if partial else "self_service/confirm.html"
    response = render(request, template, context)
    patch_vary_headers(response, ("HX-Request",))
    return response


@require_POST
@role_required(*EVERY_ROLE)
def run(request: AuthenticatedHttpRequest, workflow_id: int) -> HttpResponse:
    """Start the fix on the device whose key was posted, if it is one of the person's own."""
    workflow = _offered(workflow_id)
    device_key = request.POST.get("device", "")
    try:
        permit = permissions.permit(request.user, workflow, Run.Source.SELF_SERVICE)
    except permissions.Refusal as exc:
        unavailable = exc.message if isinstance(exc, permissions.NotRunnable) else None
        return _refused(request, workflow, device_key, exc.message, 400, unavailable=unavailable)
    try:
        started = start_self_service_run(
            permit=permit, device_key=device_key, ip=client_address(request)
        )
    except SelfServiceRefused as exc:
        return _refused(request, workflow, device_key, exc.message, exc.status)
    except RunRefused as exc:
        status = 409 if exc.existing_run is not None else 400
        return _refused(request, workflow, device_key, exc.message, status, exc.existing_run)
    title = workflow.curation.display_title
    if started.status == RunStatus.AWAITING_APPROVAL:
        messages.info(
            request,
            f"{title} is waiting for approval: it runs once someone approves it. "
            "This page shows when it does.",
        )
    else:
        messages.success(request, f"{title} started; this page shows how it goes.")
    if request.htmx:
        return HttpResponseClientRedirect(run_url(started))
    return redirect(run_url(started))


def _refused(
    request: AuthenticatedHttpRequest,
    workflow: Workflow,
    device_key: str,
    message: str,
    status: int,
    existing: Run | None = None,
    *,
    unavailable: str | None = None,
) -> HttpResponse:
    """The confirmation page again, saying why nothing was started.

    `unavailable` is the run rule's reason when it refused the fix itself; once it permitted
    the run, nothing about the fix is unavailable, whatever went wrong next.
    """
    context = _confirm_context(request, workflow, unavailable=unavailable, chosen=device_key)
    context["error"] = message
    context["existing_run"] = existing
    context["existing_url"] = run_url(existing) if existing is not None else ""
    return render(request, "self_service/confirm.html", context, status=status)
