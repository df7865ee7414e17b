"""Asking NQL about one batch: reading a saved query's rows and planning the batch's next check.

Up to 1,000 rows come from NQL execute; a bigger answer goes through the export API over
several checks (the first starts it, the next ones poll it, the one that finds it completed
downloads the file), so that no check waits on Nexthink. An NQL error changes no target: it is
noted on the batch (shown to admins) and the check is planned again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from workflows_app.models import Batch, RunEventKind
from workflows_app.nexthink import errors as nx
from workflows_app.nexthink.client import NexthinkClient
from workflows_app.services import timeline
from workflows_app.services.executions import ExecutionRow, parse_rows

logger = logging.getLogger(__name__)

# NQL execute answers at most this many rows; a bigger answer needs the export API.
EXECUTE_MAX_ROWS = 1_000
# A pre-signed results link lives 15 minutes; an export older than this is started again.
EXPORT_MAX_AGE = timedelta(minutes=14)
EXPORT_POLL_SECONDS = 2.0
SAVED_QUERIES_HINT = " Check the saved NQL queries (README: Saved NQL queries for outcomes)."


class NotYet(Exception):
    """The answer is not ready (an export still running): check again in `seconds`."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"not ready; again in {seconds:g} s")
        self.seconds = seconds


class ExportFailed(nx.NexthinkError):
    """Nexthink ended an NQL export in ERROR."""

    def __init__(self, description: str) -> None:
        super().__init__(f"The NQL export ended in error: {description}")


def export_poll_seconds() -> float:
    """How soon a running export is asked about: EXPORT_POLL_SECONDS, or sooner when checks
    come more often than that (an export never waits longer than a cycle of checks)."""
    return min(EXPORT_POLL_SECONDS, float(getattr(settings, "FOLLOW_UP_SECONDS", 30.0)))


def executions_query() -> str:
    """The saved query listing one request's executions (parameter `request_id`)."""
    return str(getattr(settings, "NEXTHINK_EXECUTIONS_QUERY_ID", "#portal_workflow_executions"))


def recent_executions_query() -> str:
    """The saved query listing one workflow's recent executions (parameter `workflow_id`)."""
    default = "#portal_recent_workflow_executions"
    return str(getattr(settings, "NEXTHINK_RECENT_EXECUTIONS_QUERY_ID", default))


def read_rows(
    batch: Batch,
    client: NexthinkClient,
    query_id: str,
    parameters: dict[str, str],
    *,
    expected: int,
) -> list[ExecutionRow]:
    """The query's rows: through NQL execute when `expected` of them fit, else an export.

    Raises NotYet while an export runs, and the client's errors (or ExportFailed) otherwise.
    """
    if not batch.export_id and expected < EXECUTE_MAX_ROWS:
        answer = client.nql_execute(query_id, parameters)
        if len(answer.data) < EXECUTE_MAX_ROWS:
            return parse_rows(answer.data, answer.headers)
        # A full page means rows were cut off: the export has them all.
    return _rows_from_export(batch, client, query_id, parameters)


def _rows_from_export(
    batch: Batch, client: NexthinkClient, query_id: str, parameters: dict[str, str]
) -> list[ExecutionRow]:
    now = timezone.now()
    started = batch.export_started_at
    if not batch.export_id or started is None or now - started > EXPORT_MAX_AGE:
        export_id = client.nql_export(query_id, parameters)
        Batch.objects.filter(pk=batch.pk).update(export_id=export_id, export_started_at=now)
        raise NotYet(export_poll_seconds())
    status = client.nql_export_status(batch.export_id)
    if status.failed:
        Batch.objects.filter(pk=batch.pk).update(export_id="", export_started_at=None)
        raise ExportFailed(status.errorDescription or "no description")
    if not status.done or not status.resultsFileUrl:
        raise NotYet(export_poll_seconds())
    rows = client.download_export(status.resultsFileUrl)
    Batch.objects.filter(pk=batch.pk).update(export_id="", export_started_at=None)
    return parse_rows(rows)


# A batch is checked again after this share of its executions' age: an outcome is learnt at most
# a fifth of its age late (within a cycle or two while young), and an old batch is asked rarely.
AGE_SHARE = 0.2


def interval(checks: int) -> float:
    """Seconds until the next try after `checks` failed checks: doubling, up to 30 first waits."""
    base = float(getattr(settings, "FOLLOW_UP_SECONDS", 30.0))
    return min(base * 2 ** min(checks, 16), base * 30)


def next_check(batch: Batch, *, now: datetime | None = None) -> float:
    """Seconds until a batch with open executions is asked again: a fifth of their age, at least
    FOLLOW_UP_SECONDS, at most 30 times it."""
    base = float(getattr(settings, "FOLLOW_UP_SECONDS", 30.0))
    sent_at = batch.finished_at or batch.created_at
    age = ((now or timezone.now()) - sent_at).total_seconds()
    return min(max(base, age * AGE_SHARE), base * 30)


def plan(batch_id: int, *, seconds: float | None, error: str = "") -> None:
    """Note a check of the batch and plan the next one in `seconds` (None: no more checks)."""
    now = timezone.now()
    Batch.objects.filter(pk=batch_id).update(
        next_check_at=now + timedelta(seconds=seconds) if seconds is not None else None,
        last_checked_at=now,
        checks=F("checks") + 1,
        check_error=error[:2000],
    )


def note_problem(batch: Batch, exc: nx.NexthinkError) -> str:
    """Note an NQL error on the batch and plan the check again; nothing known is lost."""
    if isinstance(exc, nx.RateLimited) and exc.retry_after is not None:
        seconds = exc.retry_after
    else:
        seconds = interval(batch.checks)
    message = exc.message
    if isinstance(exc, nx.BadRequest | nx.Forbidden):
        message += SAVED_QUERIES_HINT
    logger.warning("Checking batch %s through NQL: %s", batch.pk, message)
    if message != batch.check_error:  # a new problem, not the same one again
        timeline.note(
            batch.run_id,
            RunEventKind.FOLLOW_UP_PROBLEM,
            f"Batch {batch.number}: asking Nexthink failed: {message}",
            batch_number=batch.number,
        )
    plan(batch.pk, seconds=seconds, error=message)
    return message
