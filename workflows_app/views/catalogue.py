"""The workflow catalogue pages: the filtered list, one workflow's details, and its refresh."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Page, Paginator
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from workflows_app import permissions
from workflows_app.models import Run, Workflow
from workflows_app.models.catalogue import DEPENDENCY_CHOICES, TRIGGER_CHOICES
from workflows_app.nexthink.errors import NexthinkError
from workflows_app.nexthink.models import Dependency, TriggerMethod
from workflows_app.permissions import Blocker
from workflows_app.roles import Role, role_required, user_role
from workflows_app.selectors.catalogue import MAX_QUERY_LENGTH, SORTS, visible_workflows
from workflows_app.services.catalogue_sync import last_completed_sync, refresh_workflow
from workflows_app.views.http import AuthenticatedHttpRequest, url_for_pk

PER_PAGE = 25
INCLUDES = ("inactive", "removed")
NEEDS: dict[str, str] = {
    Dependency.DEVICE: "Needs devices",
    Dependency.USER: "Needs users",
    Dependency.USER_AND_DEVICE: "Needs a user and a device",
    Dependency.NONE: "Needs no target",
}
# The list's "Not runnable from the portal" badge explains the first of these blockers (the
# status badges already show the others).
BADGE_TITLES = {
    Blocker.API_TRIGGER_OFF: "The API trigger is off in Nexthink",
    Blocker.NO_TARGETS: "Nexthink's execute API needs at least one target",
}


@dataclass
class Filters:
    """The list's filters as understood, plus a notice for every value that was ignored."""

    dependency: str = ""
    trigger: str = ""
    q: str = ""
    sort: str = "name"
    include: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    def query(self, **extra: Any) -> str:
        """The query string of these filters (without ignored values), plus `extra`."""
        pairs = [
            (name, value)
            for name, value in (
                ("dependency", self.dependency),
                ("trigger", self.trigger),
                ("q", self.q),
                ("sort", "" if self.sort == "name" else self.sort),
            )
            if value
        ]
        pairs += [("include", value) for value in self.include]
        pairs += [(name, str(value)) for name, value in extra.items()]
        return urlencode(pairs)


def parse_filters(params: QueryDict, *, is_admin: bool) -> Filters:
    """Read the list's query parameters; unknown values are dropped with a notice, never a 500."""
    filters = Filters()
    dependency = params.get("dependency", "").strip()
    if dependency in set(Dependency):
        filters.dependency = dependency
    elif dependency:
        filters.notices.append(f"Unknown dependency '{dependency}' ignored.")
    trigger = params.get("trigger", "").strip()
    if trigger in set(TriggerMethod):
        filters.trigger = trigger
    elif trigger:
        filters.notices.append(f"Unknown trigger method '{trigger}' ignored.")
    sort = params.get("sort", "").strip()
    if sort in SORTS:
        filters.sort = sort
    elif sort:
        filters.notices.append(f"Unknown sort '{sort}' ignored; sorted by name.")
    filters.q = params.get("q", "").strip()
    if "\x00" in filters.q:  # PostgreSQL text cannot hold NUL, and no name contains one
        filters.q = filters.q.replace("\x00", "").strip()
        filters.notices.append("Search had NUL characters; they were removed.")
    if len(filters.q) > MAX_QUERY_LENGTH:
        filters.q = filters.q[:MAX_QUERY_LENGTH]
        filters.notices.append(f"Search shortened to {MAX_QUERY_LENGTH} characters.")
    for value in params.getlist("include"):
        if value not in INCLUDES:
            filters.notices.append(f"Unknown include '{value}' ignored.")
        elif not is_admin:
            filters.notices.append(f"Only admins can include {value} workflows; ignored.")
        elif value not in filters.include:
            filters.include.append(value)
    return filters


def _page(request: HttpRequest, workflows: Any, notices: list[str]) -> Page:
    """The requested page; a page number that is not one is ignored with a notice."""
    paginator = Paginator(workflows, PER_PAGE)
    raw = request.GET.get("page", "").strip()
    if not raw:
        return paginator.page(1)
    # isdigit() also takes digits int() refuses ('²'); int() refuses over 4,300 digits.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18 or int(raw) < 1:
        notices.append(f"Unknown page '{raw}' ignored.")
        return paginator.page(1)
    if int(raw) > paginator.num_pages:
        notices.append(f"There is no page {raw}; showing page 1.")
        return paginator.page(1)
    return paginator.page(int(raw))


@require_safe
@role_required(Role.HELPDESK, Role.ADMIN)
def workflow_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    """List the workflows the person may see; an htmx request gets the list partial only."""
    is_admin = user_role(request.user) is Role.ADMIN
    filters = parse_filters(request.GET, is_admin=is_admin)
    workflows = visible_workflows(
        request.user,
        dependency=filters.dependency or None,
        trigger=filters.trigger or None,
        q=filters.q or None,
        sort=filters.sort,
        include_inactive="inactive" in filters.include,
        include_removed="removed" in filters.include,
    )
    page = _page(request, workflows, filters.notices)
    context = {
        "page": page,
        "rows": _rows(request, page),
        "filters": filters,
        "is_admin_view": is_admin,
        "dependencies": DEPENDENCY_CHOICES,
        "triggers": TRIGGER_CHOICES,
        "sorts": [
            ("name", "Name A-Z"),
            ("-name", "Name Z-A"),
            ("-updated", "Recently updated"),
            ("updated", "Least recently updated"),
        ],
        "last_sync": last_completed_sync(),
    }
    partial = request.htmx and not request.htmx.history_restore_request
    template = "catalogue/_list.html" if partial else "catalogue/list.html"
    response = render(request, template, context)
    patch_vary_headers(response, ("HX-Request",))
    return response


@dataclass(frozen=True)
class Row:
    """One workflow of the list, as shown: what the template would otherwise look up per row."""

    workflow: Workflow
    dependency: str
    triggers: list[str]
    detail_url: str
    run_url: str  # "" when this person cannot run it from the portal
    badge_title: str


def _rows(request: AuthenticatedHttpRequest, page: Page) -> list[Row]:
    """The page's rows, each with its run rule's answer for this person and its links."""
    detail_url, run_url = url_for_pk("catalogue:detail"), url_for_pk("runs:start")
    labels = dict(DEPENDENCY_CHOICES)
    rows = []
    for workflow in page.object_list:
        refused = permissions.refusal(request.user, workflow, Run.Source.HELPDESK)
        rows.append(
            Row(
                workflow=workflow,
                dependency=labels.get(workflow.dependency, workflow.dependency),
                triggers=workflow.trigger_methods,
                detail_url=detail_url(workflow.pk),
                run_url=run_url(workflow.pk) if refused is None else "",
                badge_title=_badge_title(refused),
            )
        )
    return rows


def _badge_title(refused: permissions.Refusal | None) -> str:
    """Why the list's row says "Not runnable from the portal", or "" for no such badge."""
    found = refused.blockers if isinstance(refused, permissions.NotRunnable) else ()
    return next((BADGE_TITLES[b] for b in found if b in BADGE_TITLES), "")


def _detail_queryset(request: HttpRequest) -> Any:
    """Workflows whose details this person may open (admins: all of them)."""
    return visible_workflows(request.user, include_inactive=True, include_removed=True)


@never_cache  # shows people's runs: no copy kept by browsers or proxies
@require_safe
@role_required(Role.HELPDESK, Role.ADMIN)
def workflow_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """One workflow: what it is, what it needs, its parameters, curation and recent runs."""
    workflow = get_object_or_404(_detail_queryset(request), pk=pk)
    refused = permissions.refusal(request.user, workflow, Run.Source.HELPDESK)
    blockers = refused.blockers if isinstance(refused, permissions.NotRunnable) else ()
    context = {
        "workflow": workflow,
        "needs": NEEDS.get(workflow.dependency, workflow.dependency),
        "parameters": list(workflow.parameters.all()),
        "curation": workflow.curation_or_none,
        "runs": list(workflow.runs.select_related("created_by").order_by("-id")[:10]),
        "refusal": refused.message if refused is not None else None,
        "api_trigger_off": Blocker.API_TRIGGER_OFF in blockers,
        "raw_json": json.dumps(workflow.raw, indent=2, sort_keys=True, ensure_ascii=False),
    }
    return render(request, "catalogue/detail.html", context)


@require_POST
@role_required(Role.HELPDESK, Role.ADMIN)
def workflow_refresh(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Re-read one workflow from Nexthink's details endpoint; a failure is shown, not raised."""
    workflow = get_object_or_404(_detail_queryset(request), pk=pk)
    try:
        found = refresh_workflow(workflow)
    except NexthinkError as exc:
        messages.error(request, f"Could not refresh '{workflow.name}' from Nexthink: {exc.message}")
    else:
        if found:
            messages.success(request, f"'{workflow.name}' refreshed from Nexthink.")
        else:
            messages.warning(
                request,
                f"Nexthink no longer knows {workflow.nql_id}; the next catalogue sync will mark "
                "it removed.",
            )
    return redirect("catalogue:detail", pk=workflow.pk)
