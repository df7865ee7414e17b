"""The audit log for admins: filtered pages, newest first, and the same filters as a CSV file."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC
from urllib.parse import urlencode

from django.http import HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from workflows_app.models import AuditAction, AuditEvent
from workflows_app.roles import Role, role_required
from workflows_app.selectors.audit import audit_page, export_rows, parse_filters
from workflows_app.views.csv_files import csv_download
from workflows_app.views.http import AuthenticatedHttpRequest

CSV_HEADER = (
    "when_utc",
    "who",
    "action",
    "what",
    "object_type",
    "object_id",
    "summary",
    "address",
    "details",
)
MAX_CURSOR_DIGITS = 18


@never_cache  # shows people's runs: no copy kept by browsers or proxies
@require_safe
@role_required(Role.ADMIN)
def audit_log(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Who did what, when, from where: filtered by who, what, when and text; 50 a page."""
    filters, ignored = parse_filters(request.GET)
    raw_before = request.GET.get("before", "")
    before = _cursor(raw_before)
    if raw_before and before is None:
        ignored.append("The page asked for is not one this log has: showing the newest.")
    page = audit_page(filters, before=before)
    query = filters.as_query()
    context = {
        "events": page.events,
        "filters": filters,
        "ignored": ignored,
        "actions": AuditAction.choices,
        "filter_query": urlencode(query),
        "next_query": urlencode({**query, "before": page.next_before}) if page.next_before else "",
        "paged": before is not None,
    }
    return render(request, "audit/log.html", context)


@require_safe
@role_required(Role.ADMIN)
def audit_export(request: AuthenticatedHttpRequest) -> HttpResponseBase:
    """The filtered log as CSV, newest first, streamed in constant memory whatever its size.

    A filter value that cannot be used is refused (400) rather than ignored: a file exported
    without the filter the admin meant would be silently wrong.
    """
    filters, ignored = parse_filters(request.GET)
    if ignored:
        return HttpResponse(
            "Nothing was exported: " + " ".join(ignored) + " Correct the filters and try again.",
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    return csv_download(
        CSV_HEADER, audit_rows(export_rows(filters)), name="audit-log", slug=filters.slug()
    )


def audit_rows(events: Iterable[AuditEvent]) -> Iterator[tuple[str, ...]]:
    """One CSV row per entry, in CSV_HEADER's order."""
    labels = dict(AuditAction.choices)
    for event in events:
        yield (
            event.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            event.actor_name,
            event.action,
            str(labels.get(event.action, event.action)),
            event.object_type,
            event.object_id,
            event.summary,
            event.ip_address or "",
            json.dumps(event.details, ensure_ascii=False, sort_keys=True) if event.details else "",
        )


def _cursor(value: str) -> int | None:
    """The `before` id, or None when it is not one."""
    value = value.strip()
    if not value or len(value) > MAX_CURSOR_DIGITS or not (value.isascii() and value.isdigit()):
        return None
    return int(value)
