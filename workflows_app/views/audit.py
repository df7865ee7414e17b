"""The audit log for admins: filtered pages, newest first, and the same filters as a CSV file."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import UTC
from urllib.parse import urlencode

from django.http import HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_safe

from workflows_app.models import AuditAction, AuditEvent
from workflows_app.roles import Role, role_required
from workflows_app.selectors.audit import audit_page, export_rows, parse_filters
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
# A spreadsheet runs a cell starting with one of these as a formula: such a cell is written
# with a leading apostrophe, which spreadsheets show as text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
MAX_CURSOR_DIGITS = 18


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
    response = StreamingHttpResponse(
        csv_lines(export_rows(filters)), content_type="text/csv; charset=utf-8"
    )
    slug = filters.slug()
    name = f"audit-log{'-' + slug if slug else ''}-{timezone.now():%Y-%m-%d}.csv"
    response["Content-Disposition"] = content_disposition_header(True, name) or "attachment"
    response["Cache-Control"] = "no-store"
    return response


def csv_lines(events: Iterable[AuditEvent]) -> Iterator[str]:
    """The CSV text, one line at a time (the header first)."""
    line = _Line()
    writer = csv.writer(line)
    yield "\ufeff"  # so spreadsheets read the file as UTF-8
    writer.writerow(CSV_HEADER)
    yield line.take()
    labels = dict(AuditAction.choices)
    for event in events:
        writer.writerow(
            [
                safe_cell(value)
                for value in (
                    event.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    event.actor_name,
                    event.action,
                    str(labels.get(event.action, event.action)),
                    event.object_type,
                    event.object_id,
                    event.summary,
                    event.ip_address or "",
                    json.dumps(event.details, ensure_ascii=False, sort_keys=True)
                    if event.details
                    else "",
                )
            ]
        )
        yield line.take()


def safe_cell(value: str) -> str:
    """The value as a cell no spreadsheet will run as a formula."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


class _Line:
    """A file-like object keeping what csv.writer writes until it is taken."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def take(self) -> str:
        text, self.text = self.text, ""
        return text


def _cursor(value: str) -> int | None:
    """The `before` id, or None when it is not one."""
    value = value.strip()
    if not value or len(value) > MAX_CURSOR_DIGITS or not (value.isascii() and value.isdigit()):
        return None
    return int(value)
