"""Home routing and the health check."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from kombu import Connection

from workflows_app.roles import Role, user_role

logger = logging.getLogger(__name__)

ROLE_HOMES = {
    Role.EMPLOYEE: "self_service:home",
    Role.HELPDESK: "catalogue:list",
    Role.ADMIN: "console:home",
}


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send each role to its home page; an account without a role is told why."""
    role = user_role(request.user)
    if role is None:
        return render(request, "core/no_role.html", status=403)
    return redirect(ROLE_HOMES[role])


def database_ok() -> tuple[bool, str]:
    """Whether the database answers a query, and a word on why not."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure means "down"; the type is the detail
        return False, type(exc).__name__
    return True, "ok"


def broker_ok() -> tuple[bool, str]:
    """Whether the Celery broker accepts a connection within 2 s, and a word on why not."""
    try:
        with Connection(
            settings.CELERY_BROKER_URL,
            transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
            connect_timeout=2,
        ) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # noqa: BLE001 - as above
        return False, type(exc).__name__
    return True, "ok"


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Report whether the database and the broker answer: 200 when both do, else 503."""
    db_ok, db_detail = database_ok()
    broker_up, broker_detail = broker_ok()
    healthy = db_ok and broker_up
    if not healthy:
        logger.warning("health check failed: database=%s broker=%s", db_detail, broker_detail)
    return JsonResponse(
        {
            "status": "ok" if healthy else "unavailable",
            "database": db_detail,
            "broker": broker_detail,
        },
        status=200 if healthy else 503,
    )
