"""The admin console: catalogue sync, workflow counts, batches to reconcile or decide on, setup
problems (the device lookup's saved query, follow-up's NQL checks)."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe
from kombu.exceptions import KombuError

from workflows_app.forms.console import ResendForm
from workflows_app.models import Batch
from workflows_app.roles import Role, role_required
from workflows_app.selectors.audit import retention_state
from workflows_app.selectors.console_sync import newest_sync_id
from workflows_app.selectors.runs import (
    batches_being_reconciled,
    batches_needing_decision,
    batches_with_check_problems,
    resend_decisions,
)
from workflows_app.services import dispatch, reconcile, sync_requests
from workflows_app.services.audit import client_address
from workflows_app.services.catalogue_sync import running_sync
from workflows_app.services.devices import device_query_problem
from workflows_app.views.console_sync import sync_context
from workflows_app.views.http import AuthenticatedHttpRequest

logger = logging.getLogger(__name__)


@never_cache  # shows people's runs: no copy kept by browsers or proxies
@require_safe
@role_required(Role.ADMIN)
def home(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The admin's home page: syncs, catalogue counts, batches to reconcile, setup problems."""
    return _home_page(request)


def _home_page(request: AuthenticatedHttpRequest, *, status: int = 200) -> HttpResponse:
    context = {
        **sync_context(request),  # the catalogue card (console/_sync.html)
        "reconciling": batches_being_reconciled(),
        "to_decide": batches_needing_decision(),
        "decisions": resend_decisions(),
        "check_problems": batches_with_check_problems(),
        "device_query_problem": device_query_problem(),
        "retention": retention_state(),
    }
    return render(request, "console/home.html", context, status=status)


@require_POST
@role_required(Role.ADMIN)
def resend(request: AuthenticatedHttpRequest, batch_id: int) -> HttpResponse:
    """Send a reconciled batch's not-sent targets again, as a new batch: an admin's decision."""
    batch = get_object_or_404(Batch.objects.select_related("run"), pk=batch_id)
    which = f"Batch {batch.number} of run {batch.run_id}"
    form = ResendForm(request.POST)
    if not form.is_valid():
        problems = " ".join(str(e) for errors in form.errors.values() for e in errors)
        messages.error(request, f"{which} was not sent again. {problems}")
        return _home_page(request, status=400)
    try:
        new = reconcile.resend_not_sent(
            batch,
            user=request.user,
            note=form.cleaned_data["note"],
            ip=client_address(request),
        )
    except reconcile.ResendRefused as exc:
        messages.error(request, f"{which} was not sent again. {exc.message}")
        return _home_page(request, status=400)
    count = new.target_count
    messages.success(
        request,
        f"{which}: {count:,} not-sent target{'s' if count != 1 else ''} queued again as batch "
        f"{new.number}.",
    )
    return redirect("console:home")


@require_POST
@role_required(Role.ADMIN)
def sync_now(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Start a catalogue sync in the background (unless one is running already)."""
    running = running_sync()
    if running is not None:
        messages.info(
            request, f"A catalogue sync is already running (started {running.started_at:%H:%M:%S})."
        )
        return redirect("console:home")
    try:
        # Nothing is written before, so there is no transaction to wait for.
        after_id = newest_sync_id()
        dispatch.enqueue_catalogue_sync(trigger="admin", requested_by_id=request.user.pk)
    except KombuError as exc:
        logger.warning("Could not enqueue the catalogue sync: %s", exc)
        messages.error(
            request,
            "Could not start the catalogue sync: the task queue is unreachable. Check that the "
            "broker (CELERY_BROKER_URL) and a worker are running, then try again.",
        )
    else:
        sync_requests.remember(request.session, after_id=after_id)  # the card follows it
        messages.success(request, "Catalogue sync started.")
    return redirect("console:home")
