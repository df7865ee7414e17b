"""Help requests: an employee's "Get help" on their own self-service fix, the helpdesk's list.

Only the run's requester reaches the form (anyone else: 404, as for their runs); the rule in
services/help_requests.py says whether they may ask now, and the page says why not. Asking
again shows the request already made. The form posts with htmx (the confirmation replaces the
form) and without it (post, redirect, the same page showing the request).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from workflows_app.forms.help_requests import HelpRequestForm
from workflows_app.models import HelpRequest, Run
from workflows_app.roles import Role, role_required
from workflows_app.selectors.help_requests import (
    SHOW_CHOICES,
    help_request_of,
    help_request_page,
    one_help_request,
    own_run,
)
from workflows_app.selectors.runs import employee_title, fix_status
from workflows_app.services import help_requests
from workflows_app.services.audit import client_address
from workflows_app.services.help_requests import HelpRefused, refusal, request_help
from workflows_app.views.http import AuthenticatedHttpRequest
from workflows_app.views.runs_follow import query_int

EVERY_ROLE = (Role.EMPLOYEE, Role.HELPDESK, Role.ADMIN)


@never_cache  # shows the person's run and request: no copy kept by browsers or proxies
@require_http_methods(["GET", "HEAD", "POST"])
@role_required(*EVERY_ROLE)
def ask(request: AuthenticatedHttpRequest, run_id: int) -> HttpResponse:
    """The "Get help" form of one's own final self-service run, or the request already made."""
    run = own_run(request.user, run_id)
    if run is None:
        raise Http404("No such run of yours.")
    existing = help_request_of(run)
    if existing is not None:
        return _confirmation(request, run, existing)
    refused = refusal(run)
    if refused is not None:
        return _page(request, run, error=refused.message, status=refused.status)
    if request.method != "POST":
        return _page(request, run, form=HelpRequestForm())
    form = HelpRequestForm(request.POST)
    if not form.is_valid():
        return _page(request, run, form=form, status=422)
    try:
        given = request_help(
            run=run,
            user=request.user,
            message=form.cleaned_data["message"],
            run_url=run_link(request, run),
            ip=client_address(request),
        )
    except HelpRefused as exc:  # the run changed since the checks above
        return _page(request, run, error=exc.message, status=exc.status)
    if request.htmx:
        return _confirmation(request, run, given.help_request)
    return redirect(reverse("help:ask", args=[run.pk]))


def run_link(request: AuthenticatedHttpRequest, run: Run) -> str:
    """The run's page as the helpdesk opens it: on PORTAL_BASE_URL when set."""
    path = reverse("runs:detail", args=[run.pk])
    base = str(getattr(settings, "PORTAL_BASE_URL", "") or "").rstrip("/")
    return f"{base}{path}" if base else request.build_absolute_uri(path)


def _context(request: AuthenticatedHttpRequest, run: Run, **extra: Any) -> dict[str, Any]:
    return {
        "run": run,
        "title": employee_title(run),
        "fix": fix_status(run),
        "email": request.user.email,
        **extra,
    }


def _page(
    request: AuthenticatedHttpRequest,
    run: Run,
    *,
    form: HelpRequestForm | None = None,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    context = _context(request, run, form=form, error=error)
    return render(request, "help_requests/ask.html", context, status=status)


def _confirmation(
    request: AuthenticatedHttpRequest, run: Run, help_request: HelpRequest
) -> HttpResponse:
    """What happens next (the partial alone for htmx, else the page around it)."""
    context = _context(request, run, help_request=help_request)
    partial = request.htmx and not request.htmx.history_restore_request
    template = "help_requests/_confirmation.html" if partial else "help_requests/ask.html"
    response = render(request, template, context)
    patch_vary_headers(response, ("HX-Request",))
    return response


@never_cache  # names employees and their runs
@require_safe
@role_required(Role.HELPDESK, Role.ADMIN)
def help_request_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Employees' help requests, open ones first, newest first, 50 a page (for the helpdesk
    and admins); `?show=open|handled|all`."""
    show = request.GET.get("show", "all")
    if show not in SHOW_CHOICES:
        show = "all"
    before = query_int(request.GET.get("before"))
    page = help_request_page(show=show, before=before)
    context = {"page": page, "paged": before is not None, "show": show, "choices": SHOW_CHOICES}
    return render(request, "help_requests/list.html", context)


@require_POST
@role_required(Role.HELPDESK, Role.ADMIN)
def mark_handled(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Mark a help request handled by this person, now; back to the list it was marked on."""
    help_request = one_help_request(pk)
    if help_request is None:
        raise Http404("No such help request.")
    if help_requests.mark_handled(help_request, user=request.user, ip=client_address(request)):
        messages.success(request, f"{help_request.reference} marked handled.")
    else:
        who = help_request.handled_by.get_username() if help_request.handled_by else "someone"
        messages.info(request, f"{help_request.reference} was already handled by {who}.")
    show = request.POST.get("show", "")
    query = f"?show={show}" if show in SHOW_CHOICES else ""
    return redirect(reverse("help:list") + query)
