"""The admin console: catalogue sync, workflow counts, batches to reconcile, setup problems."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.db.models import Count, Q
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe
from kombu.exceptions import KombuError

from workflows_app.models import Batch, BatchState, CatalogueSync, Workflow
from workflows_app.roles import Role, role_required
from workflows_app.services import dispatch
from workflows_app.services.catalogue_sync import running_sync
from workflows_app.services.devices import device_query_problem
from workflows_app.views.http import AuthenticatedHttpRequest

logger = logging.getLogger(__name__)

RECENT_SYNCS = 10
UNKNOWN_BATCHES_SHOWN = 100


@require_safe
@role_required(Role.ADMIN)
def home(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The admin's home page: syncs, catalogue counts, batches to reconcile, setup problems."""
    syncs = list(
        CatalogueSync.objects.select_related("requested_by").order_by("-started_at")[:RECENT_SYNCS]
    )
    present = Q(removed_at__isnull=True)
    counts = Workflow.objects.aggregate(
        active=Count("pk", filter=present & Q(status=Workflow.Status.ACTIVE)),
        inactive=Count("pk", filter=present & ~Q(status=Workflow.Status.ACTIVE)),
        removed=Count("pk", filter=Q(removed_at__isnull=False)),
    )
    unknown = Batch.objects.filter(state=BatchState.UNKNOWN)
    context = {
        "last_sync": syncs[0] if syncs else None,
        "syncs": syncs,
        "running": running_sync(),
        "counts": counts,
        "unknown_batches": list(
            unknown.select_related("run").order_by("-updated_at")[:UNKNOWN_BATCHES_SHOWN]
        ),
        "unknown_total": unknown.count(),
        "device_query_problem": device_query_problem(),
    }
    return render(request, "console/home.html", context)


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
        dispatch.enqueue_catalogue_sync(trigger="admin", requested_by_id=request.user.pk)
    except KombuError as exc:
        logger.warning("Could not enqueue the catalogue sync: %s", exc)
        messages.error(
            request,
            "Could not start the catalogue sync: the task queue is unreachable. Check that the "
            "broker (CELERY_BROKER_URL) and a worker are running, then try again.",
        )
    else:
        messages.success(request, "Catalogue sync started.")
    return redirect("console:home")
