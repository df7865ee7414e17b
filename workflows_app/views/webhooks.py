"""The console's outgoing webhooks (admins): list and add, change, enable or disable, remove,
send a test event, and each one's delivery log."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from workflows_app.forms.webhooks import WebhookForm
from workflows_app.models import Webhook
from workflows_app.roles import Role, role_required
from workflows_app.selectors.webhooks import recent_attempts, webhooks_listed
from workflows_app.services import webhook_admin, webhooks
from workflows_app.services.audit import client_address
from workflows_app.views.http import AuthenticatedHttpRequest

SAVED_SECRET = "The secret is saved encrypted and is not shown again."


@never_cache
@require_http_methods(["GET", "POST"])
@role_required(Role.ADMIN)
def webhook_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The webhooks (GET) and a new one (POST)."""
    form = WebhookForm(request.POST or None)
    if request.method == "POST":
        saved = _save(
            request,
            form,
            lambda data: webhook_admin.create_webhook(
                url=data["url"],
                secret=data["secret"],
                events=data["events"],
                description=data["description"],
                actor=request.user,
                ip=client_address(request),
            ),
            f"added. {SAVED_SECRET}",
        )
        if saved is not None:
            return saved
    context = {"form": form, "webhooks": webhooks_listed()}
    return render(request, "console/webhooks.html", context, status=400 if form.errors else 200)


@never_cache
@require_http_methods(["GET", "POST"])
@role_required(Role.ADMIN)
def webhook_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """One webhook: its settings (POST changes them) and its delivery log."""
    hook = get_object_or_404(Webhook, pk=pk)
    initial = {"url": hook.url, "description": hook.description, "events": hook.events}
    form = WebhookForm(request.POST or None, initial=initial, editing=True)
    if request.method == "POST":
        saved = _save(
            request,
            form,
            lambda data: webhook_admin.update_webhook(
                hook,
                url=data["url"],
                events=data["events"],
                description=data["description"],
                secret=data["secret"],
                actor=request.user,
                ip=client_address(request),
            ),
            "saved.",
        )
        if saved is not None:
            return saved
        hook.refresh_from_db()
    context = {"hook": hook, "form": form, "attempts": recent_attempts(hook)}
    return render(request, "console/webhook.html", context, status=400 if form.errors else 200)


def _save(
    request: AuthenticatedHttpRequest,
    form: WebhookForm,
    save: Callable[[dict[str, Any]], Webhook],
    done: str,
) -> HttpResponse | None:
    """Save a valid form through `save`; the redirect to the webhook, or None to show errors."""
    if not form.is_valid():
        return None
    try:
        hook = save(form.cleaned_data)
    except webhook_admin.WebhookRefused as exc:
        form.add_error(None, exc.message)
        return None
    messages.success(request, f"Webhook {hook.pk} {done}")
    return redirect("console:webhook", pk=hook.pk)


@require_POST
@role_required(Role.ADMIN)
def webhook_toggle(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Enable a disabled webhook or disable an enabled one."""
    hook = get_object_or_404(Webhook, pk=pk)
    webhook_admin.set_enabled(
        hook, enabled=not hook.enabled, actor=request.user, ip=client_address(request)
    )
    state = "enabled" if hook.enabled else "disabled: nothing more is sent to it"
    messages.success(request, f"Webhook {hook.pk} {state}.")
    return redirect("console:webhook", pk=hook.pk)


@require_POST
@role_required(Role.ADMIN)
def webhook_remove(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Remove a webhook and its log."""
    hook = get_object_or_404(Webhook, pk=pk)
    webhook_admin.remove_webhook(hook, actor=request.user, ip=client_address(request))
    messages.success(request, f"Webhook {pk} removed.")
    return redirect("console:webhooks")


@require_POST
@role_required(Role.ADMIN)
def webhook_test(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Queue a test event to the webhook; its answer appears in the log below."""
    hook = get_object_or_404(Webhook, pk=pk)
    webhooks.send_test(hook)
    messages.success(
        request, "Test event queued: its answer appears in the log below (reload the page)."
    )
    return redirect("console:webhook", pk=hook.pk)
