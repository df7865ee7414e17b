"""Reading the audit log (filters, keyset pages, the export's rows) and retention's last pass.

Filters come from the query string, named as the URL shows them: `who` (part of a username),
`action` (an `AuditAction` value), `since` and `until` (ISO dates, inclusive, in the current time
zone) and `q` (part of the summary). A value that cannot be used is ignored and said so. Pages go
newest first on (at, id), keyed by the id of the last entry shown: no COUNT, and the `at` and
(action, at) indexes serve both the date filters and the order.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet

from workflows_app.models import AuditAction, AuditEvent, RetentionSweep
from workflows_app.selectors.query_values import date_value, echo, start_of, text_value

PAGE_SIZE = 50
EXPORT_CHUNK = 2_000


@dataclass(frozen=True)
class AuditFilters:
    """What the admin asked to see; empty values filter nothing."""

    who: str = ""
    action: str = ""
    since: date | None = None
    until: date | None = None
    q: str = ""

    @property
    def active(self) -> bool:
        return any(self.as_query().values())

    def as_query(self) -> dict[str, str]:
        """The filters as URL parameters (for links to the next page and to the export)."""
        values = {
            "who": self.who,
            "action": self.action,
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
            "q": self.q,
        }
        return {name: value for name, value in values.items() if value}

    def slug(self) -> str:
        """The filters in a file name: letters, digits, '-' and '_' only."""
        parts = [self.action.replace(".", "-"), self.who, self.since, self.until]
        text = "-".join(str(part) for part in parts if part)
        cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in text)
        return cleaned[:60]


@dataclass(frozen=True)
class AuditPage:
    """A page of entries, newest first, and the id to continue after (None on the last page)."""

    events: list[AuditEvent]
    next_before: int | None


def parse_filters(params: Mapping[str, str]) -> tuple[AuditFilters, list[str]]:
    """The filters in `params`, and a sentence for each value that was ignored."""
    ignored: list[str] = []
    action = text_value(params.get("action", ""))
    if action and action not in AuditAction.values:
        ignored.append(f"Unknown action {echo(action)}: ignored.")
        action = ""
    since = date_value(params.get("since", ""), "since", ignored)
    until = date_value(params.get("until", ""), "until", ignored)
    if since and until and since > until:
        ignored.append(
            f"'since' ({since}) is after 'until' ({until}): both ignored, so nothing is hidden."
        )
        since = until = None
    filters = AuditFilters(
        who=text_value(params.get("who", "")),
        action=action,
        since=since,
        until=until,
        q=text_value(params.get("q", "")),
    )
    return filters, ignored


def events_matching(filters: AuditFilters) -> QuerySet[AuditEvent]:
    """Every entry the filters select (not ordered)."""
    events = AuditEvent.objects.all()
    if filters.who:
        events = events.filter(actor_name__icontains=filters.who)
    if filters.action:
        events = events.filter(action=filters.action)
    if filters.since:
        events = events.filter(at__gte=start_of(filters.since))
    if filters.until:
        events = events.filter(at__lt=start_of(filters.until + timedelta(days=1)))
    if filters.q:
        events = events.filter(summary__icontains=filters.q)
    return events


def audit_page(
    filters: AuditFilters, *, before: int | None = None, size: int = PAGE_SIZE
) -> AuditPage:
    """A page of entries older than entry `before` (the newest when None), newest first."""
    events = events_matching(filters)
    if before is not None:
        anchor = AuditEvent.objects.filter(pk=before).values_list("at", flat=True).first()
        if anchor is None:  # removed by retention since: ids grow with time
            events = events.filter(pk__lt=before)
        else:
            events = events.filter(at__lte=anchor).filter(Q(at__lt=anchor) | Q(pk__lt=before))
    found = list(events.order_by("-at", "-id")[: size + 1])
    next_before = found[size - 1].pk if len(found) > size else None
    return AuditPage(found[:size], next_before)


def export_rows(filters: AuditFilters) -> Iterator[AuditEvent]:
    """Every entry the filters select, newest first, read in chunks (constant memory)."""
    return events_matching(filters).order_by("-at", "-id").iterator(chunk_size=EXPORT_CHUNK)


# --- retention ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetentionState:
    """What the console says about retention: the settings and the last pass."""

    history_days: int
    audit_days: int
    every_hours: float
    last: RetentionSweep | None


def retention_state() -> RetentionState:
    """The retention settings and the latest pass (None before the first)."""
    return RetentionState(
        history_days=settings.HISTORY_RETENTION_DAYS,
        audit_days=settings.AUDIT_RETENTION_DAYS,
        every_hours=settings.RETENTION_SWEEP_HOURS,
        last=RetentionSweep.objects.order_by("-started_at", "-id").first(),
    )
