"""Syncing the workflow catalogue from Nexthink: one list call per dependency x trigger method.

The sync row is claimed first (so two syncs never interleave), then the 16 list calls go out,
then the catalogue is written in one transaction together with the outcome. A failed call
changes nothing; an item that does not parse is reported and the rest is synced, but removals
are only decided from an answer where every item parsed.
Docs: https://docs.nexthink.com/api/workflows (GET /api/v1/workflows, GET /api/v1/workflows/details)
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import product
from typing import Any

from django.contrib.auth.models import User
from django.db import connection, transaction
from django.utils import timezone
from pydantic import ValidationError

from workflows_app.models import AuditAction, CatalogueSync, RunnableKind
from workflows_app.models import Workflow as WorkflowRow
from workflows_app.models.catalogue import TRIGGER_FIELDS
from workflows_app.nexthink import errors as nx
from workflows_app.nexthink.client import NexthinkClient
from workflows_app.nexthink.models import Dependency, TriggerMethod
from workflows_app.nexthink.models import Workflow as NexthinkWorkflow
from workflows_app.nexthink_factory import get_client
from workflows_app.services import audit

logger = logging.getLogger(__name__)

# A sync still "running" after this long died with its worker; another one may start.
STALE_AFTER = timedelta(minutes=10)
# Any constant works; it only has to be the same in every process of the portal.
_ADVISORY_LOCK_KEY = 0x4E58_5359  # "NXSY"
_TRIGGER_COLUMNS = {str(method): column for method, column in TRIGGER_FIELDS.items()}
_STORED = (
    "uuid",
    "name",
    "description",
    "status",
    "last_update_time",
    "dependency",
    "raw",
    *_TRIGGER_COLUMNS.values(),
)
_MAX_ID, _MAX_UUID, _MAX_NAME = 255, 64, 255
# The audit entry of a sync names at most this many workflows added, changed or removed.
AUDITED_IDS = 50


@dataclass
class _Seen:
    """What the 16 answers said about one workflow."""

    workflow: NexthinkWorkflow
    dependencies: list[Dependency] = field(default_factory=list)
    triggers: set[TriggerMethod] = field(default_factory=set)


@dataclass
class _Answers:
    """The merged answers: workflows by NQL id, and the items that did not parse."""

    seen: dict[str, _Seen] = field(default_factory=dict)
    problems: list[dict[str, str]] = field(default_factory=list)


class _CallFailed(Exception):
    """Internal: one list call failed; `message` says what failed and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def sync_catalogue(*, trigger: str, requested_by: User | None = None) -> CatalogueSync:
    """Bring the catalogue in line with Nexthink and return the sync's row.

    When another sync is already running (for less than STALE_AFTER) nothing is done and that
    running row is returned: a caller can tell by `status == running`.
    """
    sync, claimed = _claim(trigger, requested_by)
    if not claimed:
        logger.info("Catalogue sync %s is already running; not starting another", sync.pk)
        return sync
    try:
        answers = _fetch_all(_client())
        return _apply(sync, answers)
    except _CallFailed as exc:
        with transaction.atomic():
            _finish(sync, CatalogueSync.Status.FAILED, error=exc.message)
            _audit(sync, {})
        return sync
    except Exception as exc:
        # A bug or a database failure: record it so the row does not stay "running", then raise.
        _finish(sync, CatalogueSync.Status.FAILED, error=f"Unexpected error: {exc!r}")
        raise


# --- claiming ---------------------------------------------------------------------------------


def _claim(trigger: str, requested_by: User | None) -> tuple[CatalogueSync, bool]:
    """Create a running sync row unless a live one exists; True when this call got the claim."""
    now = timezone.now()
    with transaction.atomic():
        _serialise_claims()
        running = CatalogueSync.objects.filter(status=CatalogueSync.Status.RUNNING)
        live = running.filter(started_at__gte=now - STALE_AFTER).order_by("-started_at").first()
        if live is not None:
            return live, False
        running.update(
            status=CatalogueSync.Status.FAILED,
            finished_at=now,
            error=(
                f"Abandoned: it did not finish within {STALE_AFTER.total_seconds() / 60:g} "
                "minutes (its worker probably died)."
            ),
        )
        sync = CatalogueSync.objects.create(
            trigger=trigger[:20], requested_by=requested_by, status=CatalogueSync.Status.RUNNING
        )
    return sync, True


def _serialise_claims() -> None:
    """Make concurrent claims wait for each other until the current transaction ends."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ADVISORY_LOCK_KEY])
    # SQLite (demo mode) opens IMMEDIATE transactions: writers are serialised already.


# --- calling out ------------------------------------------------------------------------------


def _client() -> NexthinkClient:
    """The configured client; settings it cannot use fail the sync with a clear message."""
    try:
        return get_client()
    except ValidationError as exc:
        raise _CallFailed(
            f"The Nexthink settings are invalid ({_describe_invalid(exc)}): check "
            "NEXTHINK_API_URL, NEXTHINK_TOKEN_URL and NEXTHINK_CLIENT_ID. "
            "The catalogue was left unchanged."
        ) from exc


def _fetch_all(client: NexthinkClient) -> _Answers:
    """Ask for every dependency x trigger method combination and merge the answers."""
    answers = _Answers()
    with client:
        for dependency, method in product(Dependency, TriggerMethod):
            for item in _list_items(client, dependency, method):
                _merge(answers, dependency, method, item)
    return answers


def _list_items(client: NexthinkClient, dependency: Dependency, method: TriggerMethod) -> list[Any]:
    """The raw items of one list answer, so each item is parsed (and reported) on its own.

    `NexthinkClient.list_workflows` drops items that do not parse; the sync has to report them
    and must not decide removals on an incomplete answer, so it reads the raw items.
    """
    try:
        data = client.list_workflow_items(dependency, method)
    except nx.NexthinkError as exc:
        raise _CallFailed(_failure_message(exc, dependency, method)) from exc
    if not isinstance(data, list):
        raise _CallFailed(
            f"Listing {dependency}/{method} workflows failed: Nexthink answered a JSON "
            f"{type(data).__name__} instead of a list. The catalogue was left unchanged; check "
            "NEXTHINK_API_URL points at the Nexthink API."
        )
    return data


def _merge(answers: _Answers, dependency: Dependency, method: TriggerMethod, item: Any) -> None:
    """Add one item of the (dependency, method) answer, or record why it could not be read."""
    try:
        workflow = NexthinkWorkflow.model_validate(item)
        _check_lengths(workflow)
    except (ValidationError, ValueError) as exc:
        answers.problems.append(
            {
                "dependency": dependency.value,
                "trigger": method.value,
                "item": _short_repr(item),
                "error": _describe_invalid(exc),
            }
        )
        return
    seen = answers.seen.setdefault(workflow.id, _Seen(workflow))
    if dependency not in seen.dependencies:
        seen.dependencies.append(dependency)
    seen.triggers.add(method)


def _check_lengths(workflow: NexthinkWorkflow) -> None:
    if not workflow.id.strip():
        raise ValueError("id is empty")
    if len(workflow.id) > _MAX_ID:
        raise ValueError(f"id is longer than {_MAX_ID} characters")
    if len(workflow.uuid) > _MAX_UUID:
        raise ValueError(f"uuid is longer than {_MAX_UUID} characters")


def _describe_invalid(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = [
            f"{'.'.join(str(p) for p in err['loc']) or 'item'}: {err['msg']}"
            for err in exc.errors(include_input=False)[:3]
        ]
        return "; ".join(parts)
    return str(exc)


def _short_repr(item: Any, limit: int = 200) -> str:
    text = json.dumps(item, default=str, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _failure_message(exc: nx.NexthinkError, dependency: Dependency, method: TriggerMethod) -> str:
    """What failed and what to do, for the console and the command line."""
    what = f"Listing {dependency}/{method} workflows failed"
    if isinstance(exc, nx.Unauthorized):
        advice = (
            "Nexthink refused the credentials (401): check NEXTHINK_CLIENT_ID and "
            "NEXTHINK_CLIENT_SECRET"
        )
    elif isinstance(exc, nx.Forbidden):
        advice = (
            f"Nexthink denied access (403 {exc.code}: {exc.details}".rstrip(": ")
            + "): give the API credentials the Workflows API permission"
        )
    elif isinstance(exc, nx.RateLimited):
        wait = f"{exc.retry_after:g} s" if exc.retry_after is not None else "a while"
        advice = f"Nexthink is rate limiting requests (429): sync again after {wait}"
    elif isinstance(exc, nx.BadRequest):
        advice = (
            f"Nexthink refused the request ({exc.status} {exc.code}: {exc.details}".rstrip(": ")
            + "): check NEXTHINK_API_URL and the portal's version"
        )
    elif isinstance(exc, nx.Unavailable):
        advice = (
            f"Nexthink is unavailable ({exc.reason}): the next scheduled sync will try again, "
            "or use Sync now later"
        )
    elif isinstance(exc, nx.OutcomeUnknown):
        advice = f"Nexthink did not answer ({exc.reason}): sync again later"
    else:
        advice = f"{exc.message} Check that NEXTHINK_API_URL points at the Nexthink API"
    return f"{what}: {advice.rstrip('. ')}. The catalogue was left unchanged."


# --- writing ----------------------------------------------------------------------------------


def _row_fields(seen: _Seen) -> dict[str, Any]:
    """The stored fields of one workflow as the answers describe it."""
    workflow = seen.workflow
    triggers = {method.value for method in seen.triggers | workflow.trigger_methods}
    updated = workflow.lastUpdateTime
    if updated.tzinfo is None:
        updated = updated.replace(tzinfo=UTC)
    return {
        "uuid": workflow.uuid,
        "name": workflow.name[:_MAX_NAME],
        "description": workflow.description,
        "status": workflow.status.value,
        "last_update_time": updated,
        "dependency": _dependency(seen).value,
        "raw": workflow.raw,
        **{column: method in triggers for method, column in _TRIGGER_COLUMNS.items()},
    }


def _dependency(seen: _Seen) -> Dependency:
    """The query's dependency; if several queries returned it, the payload's own breaks the tie."""
    own = seen.workflow.raw.get("dependency")
    if len(seen.dependencies) > 1 and own in seen.dependencies:
        return Dependency(own)
    return seen.dependencies[0]


def _differs(row: WorkflowRow, fields: dict[str, Any]) -> bool:
    return row.removed_at is not None or any(getattr(row, name) != fields[name] for name in _STORED)


def _apply(sync: CatalogueSync, answers: _Answers) -> CatalogueSync:
    """Write the catalogue and the outcome in one transaction (if the claim is still ours)."""
    now = timezone.now()
    complete = not answers.problems
    with transaction.atomic():
        still_ours = CatalogueSync.objects.select_for_update().filter(
            pk=sync.pk, status=CatalogueSync.Status.RUNNING
        )
        if not still_ours.exists():
            sync.refresh_from_db()
            return sync
        # Registered remote actions are the admins' own rows: the sync never touches them.
        synced = WorkflowRow.objects.filter(kind=RunnableKind.WORKFLOW)
        existing = {row.nql_id: row for row in synced}
        new_rows, changed_rows, unchanged_ids = [], [], []
        for nql_id, seen in answers.seen.items():
            fields = _row_fields(seen)
            row = existing.get(nql_id)
            if row is None:
                new_rows.append(WorkflowRow(nql_id=nql_id, first_seen=now, last_seen=now, **fields))
            elif _differs(row, fields):
                for name, value in fields.items():
                    setattr(row, name, value)
                row.last_seen, row.removed_at = now, None
                changed_rows.append(row)
            else:
                unchanged_ids.append(row.pk)
        WorkflowRow.objects.bulk_create(new_rows)
        if changed_rows:
            WorkflowRow.objects.bulk_update(changed_rows, [*_STORED, "last_seen", "removed_at"])
        WorkflowRow.objects.filter(pk__in=unchanged_ids).update(last_seen=now)
        removed_ids: list[str] = []
        if complete:
            gone = synced.filter(removed_at__isnull=True).exclude(nql_id__in=list(answers.seen))
            removed_ids = list(gone.order_by("nql_id").values_list("nql_id", flat=True))
            WorkflowRow.objects.filter(nql_id__in=removed_ids).update(removed_at=now)
        sync.added, sync.changed = len(new_rows), len(changed_rows)
        sync.unchanged, sync.removed = len(unchanged_ids), len(removed_ids)
        status = CatalogueSync.Status.SUCCEEDED if complete else CatalogueSync.Status.PARTIAL
        error = "" if complete else _partial_message(answers.problems)
        _finish(sync, status, error=error, problems=answers.problems)
        _audit(
            sync,
            {
                "added": sorted(row.nql_id for row in new_rows),
                "changed": sorted(row.nql_id for row in changed_rows),
                "removed": removed_ids,
            },
        )
        return sync


def _partial_message(problems: list[dict[str, str]]) -> str:
    return (
        f"{len(problems)} item(s) of Nexthink's answers could not be read and were skipped; "
        "no workflow was marked removed. See the problems below."
    )


def _finish(
    sync: CatalogueSync,
    status: str,
    *,
    error: str = "",
    problems: list[dict[str, str]] | None = None,
) -> CatalogueSync:
    """Record the outcome of a sync."""
    sync.status = status
    sync.error = error
    sync.problems = problems or []
    sync.finished_at = timezone.now()
    sync.save(
        update_fields=[
            "status",
            "error",
            "problems",
            "finished_at",
            "added",
            "changed",
            "removed",
            "unchanged",
        ]
    )
    if status == CatalogueSync.Status.FAILED:
        logger.warning("Catalogue sync %s failed: %s", sync.pk, error)
    return sync


def _audit(sync: CatalogueSync, changes: dict[str, list[str]]) -> None:
    """Record the sync in the audit log: who asked (or the trigger, e.g. "schedule") and what
    changed (the NQL ids, at most AUDITED_IDS of each kind)."""
    who = sync.requested_by.get_username() if sync.requested_by else sync.trigger
    if sync.status == CatalogueSync.Status.FAILED:
        summary = f"Catalogue sync ({sync.trigger}) failed: {sync.error}"
    else:
        summary = (
            f"Catalogue sync ({sync.trigger}): {sync.added} added, {sync.changed} changed, "
            f"{sync.removed} removed, {sync.unchanged} unchanged"
        )
        if sync.status == CatalogueSync.Status.PARTIAL:
            summary += f"; {len(sync.problems)} item(s) could not be read"
    details: dict[str, Any] = {
        "sync": sync.pk,
        "trigger": sync.trigger,
        "status": sync.status,
        **{kind: ids[:AUDITED_IDS] for kind, ids in changes.items()},
    }
    audit.record(
        AuditAction.CATALOGUE_SYNCED,
        actor=sync.requested_by,
        actor_name=who,
        summary=summary,
        obj=sync,
        details=details,
    )


# --- one workflow -----------------------------------------------------------------------------


def refresh_workflow(workflow: WorkflowRow) -> bool:
    """Re-read one workflow with the details endpoint; False when Nexthink no longer has it.

    Raises the client's NexthinkError when the call fails; the row is then left as it was.
    """
    with get_client() as client:
        found = [w for w in client.get_workflow(workflow.nql_id) if w.id == workflow.nql_id]
    if not found:
        return False
    fresh = found[0]
    updated = fresh.lastUpdateTime
    workflow.name = fresh.name[:_MAX_NAME]
    workflow.description = fresh.description
    workflow.status = fresh.status.value
    workflow.last_update_time = updated if updated.tzinfo else updated.replace(tzinfo=UTC)
    workflow.uuid = fresh.uuid[:_MAX_UUID]
    workflow.raw = fresh.raw
    workflow.last_seen = timezone.now()
    workflow.save(
        update_fields=[
            "name",
            "description",
            "status",
            "last_update_time",
            "uuid",
            "raw",
            "last_seen",
        ]
    )
    return True


def last_completed_sync() -> CatalogueSync | None:
    """The most recent sync that wrote the catalogue (succeeded or partial)."""
    return (
        CatalogueSync.objects.filter(
            status__in=[CatalogueSync.Status.SUCCEEDED, CatalogueSync.Status.PARTIAL]
        )
        .order_by("-started_at")
        .first()
    )


def running_sync(now: datetime | None = None) -> CatalogueSync | None:
    """The sync running now (started less than STALE_AFTER ago), if any."""
    now = now or timezone.now()
    return (
        CatalogueSync.objects.filter(
            status=CatalogueSync.Status.RUNNING, started_at__gte=now - STALE_AFTER
        )
        .order_by("-started_at")
        .first()
    )
