"""The console's catalogue card, on its own: the page includes it, and htmx polls it while a
sync runs or waits for a worker, so "Sync now" shows its result without a reload."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe
from django_htmx.http import HTMX_STOP_POLLING

from workflows_app.roles import Role, role_required
from workflows_app.selectors.console_sync import (
    catalogue_counts,
    recent_syncs,
    sync_started_after,
)
from workflows_app.services import sync_requests
from workflows_app.services.catalogue_sync import running_sync
from workflows_app.views.http import AuthenticatedHttpRequest

POLL_SECONDS = 2


def sync_context(request: AuthenticatedHttpRequest) -> dict[str, Any]:
    """The card's context: counts, syncs, the running one, a requested one not started yet."""
    syncs = recent_syncs()
    asked = sync_requests.requested(request.session)
    started = asked is None or sync_started_after(asked.after_id)
    running = running_sync()
    if asked is not None and (started or asked.expired()) and running is None:
        sync_requests.forget(request.session)  # it ran (or never will): nothing left to await
    awaited = asked is not None and not started and not asked.expired()
    return {
        "counts": catalogue_counts(),
        "syncs": syncs,
        "last_sync": syncs[0] if syncs else None,
        "running": running,
        "sync_awaited": awaited,
        "sync_not_started": asked is not None and not started and asked.expired(),
        "sync_polling": running is not None or awaited,
        "poll_seconds": POLL_SECONDS,
    }


@require_safe
@role_required(Role.ADMIN)
def sync_state(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The catalogue card alone; to htmx, 286 (stop polling) once nothing is left to wait for."""
    context = sync_context(request)
    status = 200 if context["sync_polling"] or not request.htmx else HTMX_STOP_POLLING
    return render(request, "console/_sync.html", context, status=status)
