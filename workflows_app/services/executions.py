"""Reading rows of NQL's `workflow.executions` table, however the saved query names its columns.

A column may come back as `status`, `execution.status` or `workflow.executions.status` (and the
same for every field): a field is found by its dotted name or any name ending in "." plus it.
Nexthink publishes no list of status values; known ones map to the portal's outcomes, an unknown
one is kept raw and maps to `unknown` unless the row's own `outcome` column says more.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from workflows_app.models import Outcome, Target
from workflows_app.targets import TargetKind

STATUS_OUTCOMES: dict[str, Outcome] = {
    "success": Outcome.SUCCESS,
    "succeeded": Outcome.SUCCESS,
    "successful": Outcome.SUCCESS,
    "completed": Outcome.SUCCESS,
    "failure": Outcome.FAILURE,
    "failed": Outcome.FAILURE,
    "error": Outcome.FAILURE,
    "cancelled": Outcome.FAILURE,
    "canceled": Outcome.FAILURE,
    "expired": Outcome.FAILURE,
    "in_progress": Outcome.RUNNING,
    "running": Outcome.RUNNING,
    "started": Outcome.RUNNING,
    "executing": Outcome.RUNNING,
    "pending": Outcome.PENDING,
    "queued": Outcome.PENDING,
    "submitted": Outcome.PENDING,
    "scheduled": Outcome.PENDING,
    "waiting_for_event": Outcome.WAITING,
    "waiting": Outcome.WAITING,
}
UPSTREAM_OUTCOMES: dict[str, Outcome] = {
    "success": Outcome.SUCCESS,
    "succeeded": Outcome.SUCCESS,
    "failure": Outcome.FAILURE,
    "failed": Outcome.FAILURE,
}
# The identity columns a target can be recognised by, for each kind of target.
IDENTITY_FIELDS: dict[TargetKind, str] = {
    TargetKind.DEVICE_COLLECTOR: "device.collector.uid",
    TargetKind.DEVICE_UID: "device.uid",
    TargetKind.DEVICE_NAME: "device.name",
    TargetKind.USER_SID: "user.sid",
    TargetKind.USER_UPN: "user.upn",
    TargetKind.USER_UID: "user.uid",
}
MAX_RAW = 64
# The fields of an execution row besides the identities, as the saved queries name them.
ROW_FIELDS = (
    *("execution_id", "request_id", "request_time", "status", "status_details"),
    *("outcome", "outcome_details"),
)


def outcome_of(status: str, upstream_outcome: str = "") -> Outcome:
    """The portal's outcome for Nexthink's status (and outcome) of one execution."""
    known = STATUS_OUTCOMES.get(status.strip().lower())
    if known is not None:
        return known
    return UPSTREAM_OUTCOMES.get(upstream_outcome.strip().lower(), Outcome.UNKNOWN)


def identity(kind: str, value: str) -> tuple[str, str]:
    """How a target's value compares with an execution row's (names and ids ignore case)."""
    return kind, value.casefold()


@dataclass(frozen=True)
class ExecutionRow:
    """One execution as the saved query answered it, with the portal's outcome."""

    execution_id: str
    request_id: str
    request_time: datetime | None
    status: str
    status_details: str
    upstream_outcome: str
    outcome_details: str
    identities: tuple[tuple[str, str], ...]

    @property
    def outcome(self) -> Outcome:
        return outcome_of(self.status, self.upstream_outcome)

    @property
    def still_open(self) -> bool:
        """Whether the execution may still change: not ended, or in a state the portal does
        not know (asked again until the horizon)."""
        outcome = self.outcome
        return outcome not in (Outcome.SUCCESS, Outcome.FAILURE) and bool(
            outcome != Outcome.UNKNOWN or self.status
        )


class Columns:
    """Finds each field among a query's column names, by its dotted name or a longer one."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = list(names)
        self._found: dict[str, str | None] = {}

    def find(self, field: str) -> str | None:
        """The column holding `field`, or None."""
        if field not in self._found:
            exact = [n for n in self.names if n == field]
            longer = [n for n in self.names if n.endswith("." + field)]
            # The shortest longer name is the table's own field (`execution.status` before
            # `workflow.executions.device.status`, should both exist).
            candidates = exact or sorted(longer, key=len)
            self._found[field] = candidates[0] if candidates else None
        return self._found[field]

    def missing(self, fields: Iterable[str]) -> list[str]:
        """The fields no column holds."""
        return [f for f in fields if self.find(f) is None]


def parse_rows(
    rows: Sequence[Mapping[str, Any]], headers: Iterable[str] | None = None
) -> list[ExecutionRow]:
    """Execution rows from a query's answer (v2 objects or CSV rows keyed by column name)."""
    names: list[str] = list(headers or [])
    for row in rows[:1]:
        names += [key for key in row if key not in names]
    columns = Columns(names)
    # Each field's column is found once, not once per row: a batch's export has 10,000 rows.
    column = {field: columns.find(field) for field in ROW_FIELDS}
    identity_columns = [
        (kind, found) for kind, field in IDENTITY_FIELDS.items() if (found := columns.find(field))
    ]

    def text(row: Mapping[str, Any], name: str | None) -> str:
        value = row.get(name) if name else None
        if isinstance(value, str):
            return value.strip()
        if isinstance(value, Mapping):  # a date and time as an object of its parts
            value = _iso_of_parts(value)
        return "" if value is None else str(value).strip()

    parsed = []
    for row in rows:
        execution_id = text(row, column["execution_id"]).lower()
        if not execution_id:
            continue
        identities = tuple(
            identity(kind, value) for kind, name in identity_columns if (value := text(row, name))
        )
        parsed.append(
            ExecutionRow(
                execution_id=execution_id,
                request_id=text(row, column["request_id"]).lower(),
                request_time=parse_time(text(row, column["request_time"])),
                status=text(row, column["status"])[:MAX_RAW],
                status_details=text(row, column["status_details"]),
                upstream_outcome=text(row, column["outcome"])[:MAX_RAW],
                outcome_details=text(row, column["outcome_details"]),
                identities=identities,
            )
        )
    return parsed


def parse_time(value: str) -> datetime | None:
    """An ISO 8601 time as NQL writes it (a trailing Z, or none: UTC), or None."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _iso_of_parts(parts: Mapping[str, Any]) -> str:
    """`{"year": 2026, "month": 11, ...}` as ISO 8601 (UTC), or "" when it is something else."""
    try:
        year, month, day, hour, minute, second = (
            int(parts.get(key, 0)) for key in ("year", "month", "day", "hour", "minute", "second")
        )
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC).isoformat()
    except (TypeError, ValueError):
        return ""


# The target columns a row sets, in the order `apply_row` writes them.
TARGET_FIELDS = (
    "execution_uuid",
    "outcome",
    "status",
    "status_details",
    "upstream_outcome",
    "outcome_details",
)


def apply_row(target: Target, row: ExecutionRow) -> bool:
    """Copy what an execution row says onto its target; True when anything changed."""
    values = (
        row.execution_id,
        row.outcome,
        row.status,
        row.status_details,
        row.upstream_outcome,
        row.outcome_details,
    )
    changed = False
    for name, value in zip(TARGET_FIELDS, values, strict=True):
        if getattr(target, name) != value:
            setattr(target, name, value)
            changed = True
    return changed
