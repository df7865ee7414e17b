"""A person's own settings: API tokens (list, create: shown once, revoke) and e-mail choices."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from workflows_app.forms.account import NotificationsForm, TokenForm
from workflows_app.roles import Role, has_role, role_required
from workflows_app.services import api_tokens, preferences
from workflows_app.services.audit import client_address
from workflows_app.views.http import AuthenticatedHttpRequest


@require_http_methods(["GET", "POST"])
@role_required(*api_tokens.TOKEN_ROLES)
def tokens(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The person's tokens (GET) and a new one (POST: its secret on this page, never again)."""
    form = TokenForm(request.POST or None)
    created: api_tokens.NewToken | None = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                created = api_tokens.create_token(
                    user=request.user,
                    name=form.cleaned_data["name"],
                    expires_days=form.cleaned_data.get("expires_days"),
                    ip=client_address(request),
                )
            except api_tokens.TokenRefused as exc:
                form.add_error(None, exc.message)
        if created is None:
            status = 400
        else:
            form = TokenForm()
    context = {"form": form, "created": created, "tokens": api_tokens.tokens_of(request.user)}
    response = render(request, "account/tokens.html", context, status=status)
    response["Cache-Control"] = "no-store"  # the page may hold a token
    return response


@require_POST
@role_required(*api_tokens.TOKEN_ROLES)
def revoke(request: AuthenticatedHttpRequest, token_id: int) -> HttpResponse:
    """Revoke one of the person's own tokens (404 for anyone else's)."""
    try:
        token = api_tokens.revoke_token(
            user=request.user, token_id=token_id, ip=client_address(request)
        )
    except api_tokens.TokenRefused as exc:
        return render(
            request, "account/tokens.html", _context(request, exc.message), status=exc.status
        )
    messages.success(request, f"Token '{token.name}' revoked: it no longer works.")
    return redirect("account:tokens")


def _context(request: AuthenticatedHttpRequest, error: str) -> dict[str, object]:
    return {
        "form": TokenForm(),
        "created": None,
        "tokens": api_tokens.tokens_of(request.user),
        "error": error,
    }


@require_http_methods(["GET", "POST"])
@role_required(Role.EMPLOYEE, Role.HELPDESK, Role.ADMIN)
def notifications(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The person's e-mail choices (GET) and a change of them (POST, audited)."""
    current = preferences.preferences_of(request.user)
    initial = {name: getattr(current, name) for name in preferences.CHOICES}
    may_approve = has_role(request.user, Role.HELPDESK, Role.ADMIN)
    form = NotificationsForm(request.POST or None, initial=initial, may_approve=may_approve)
    if request.method == "POST":
        if form.is_valid():
            preferences.save_preferences(
                request.user,
                runs_ended=form.cleaned_data["runs_ended"],
                approvals_waiting=form.cleaned_data.get(
                    "approvals_waiting", current.approvals_waiting
                ),
                ip=client_address(request),
            )
            messages.success(request, "Your e-mail choices are saved.")
            return redirect("account:notifications")
        return render(request, "account/notifications.html", {"form": form}, status=400)
    return render(request, "account/notifications.html", {"form": form})
