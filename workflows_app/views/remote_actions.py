"""Registering a remote action of the classic platform (admins, beside the curation pages)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from workflows_app.forms.remote_actions import RemoteActionForm
from workflows_app.platforms import classic_enabled
from workflows_app.roles import Role, role_required
from workflows_app.services.audit import client_address
from workflows_app.services.remote_actions import RegistrationError, register
from workflows_app.views.http import AuthenticatedHttpRequest


@require_http_methods(["GET", "HEAD", "POST"])
@role_required(Role.ADMIN)
def register_page(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The registration form; a valid one registers the action and opens its curation (400 else)."""
    status = 200
    if request.method == "POST":
        form = RemoteActionForm(request.POST)
        if form.is_valid():
            try:
                row, created = register(form.spec, actor=request.user, ip=client_address(request))
            except RegistrationError as exc:  # a concurrent registration took the name
                form.add_error(None, exc.message)
            else:
                verb = "registered" if created else "updated"
                messages.success(request, f"Remote action {row.name} {verb}.")
                return redirect("curation:edit", pk=row.pk)
        messages.error(request, "Nothing was registered: correct what is listed below.")
        status = 400
    else:
        form = RemoteActionForm()
    context = {"form": form, "classic_enabled": classic_enabled()}
    return render(request, "curation/register_remote_action.html", context, status=status)
