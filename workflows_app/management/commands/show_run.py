"""Show one run from the shell: a readable summary, or the whole run as one JSON document."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from workflows_app.models import Batch, Outcome, Run, RunnableKind, Target
from workflows_app.selectors.runs import (
    details_of,
    find_run,
    outcome_counts,
    progress_of,
    target_page,
    targets_of,
)

FIRST_TARGETS = 20
OUTCOME_LABELS = {"": "Queued", **{o.value: str(o.label) for o in Outcome}}
# The summary's order: how it ended, then what is still open.
SUMMARY_ORDER = (
    Outcome.SUCCESS,
    Outcome.SENT,
    Outcome.FAILURE,
    Outcome.NOT_SENT,
    Outcome.UNKNOWN,
    Outcome.WAITING,
    Outcome.RUNNING,
    Outcome.PENDING,
    "",
)


class Command(BaseCommand):
    help = (
        "Show a run: its status, outcomes, batches and first targets; with --json the whole run "
        "(every target) as one JSON document on standard output."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("run_id", type=int, metavar="RUN_ID")
        parser.add_argument(
            "--json", action="store_true", help="print the run as one JSON document, nothing else"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        run = find_run(options["run_id"])
        if run is None:
            raise CommandError(f"Run {options['run_id']} does not exist.")
        batches = progress_of(run).batches
        if options["json"]:
            self._json(run, batches)
        else:
            self._summary(run, batches)

    def _json(self, run: Run, batches: list[Batch]) -> None:
        """The run as one JSON document, its targets streamed (never all in memory at once)."""
        head = json.dumps(
            {
                "id": run.pk,
                "status": run.status,
                "kind": run.kind,
                "workflow": run.workflow_nql_id,
                "batches": [batch_document(b) for b in batches],
            }
        )
        out = self.stdout
        out.write(head[:-1] + ', "targets": [', ending="")
        for index, target in enumerate(targets_of(run)):
            out.write(("," if index else "") + json.dumps(target_document(target)), ending="")
        out.write("]}")

    def _summary(self, run: Run, batches: list[Batch]) -> None:
        write = self.stdout.write
        write(f"Run {run.pk}: {run.workflow_name} ({run.workflow_nql_id})")
        write(f"Kind:     {run.get_kind_display()}")
        write(f"Status:   {run.get_status_display()}")
        started = f"{run.created_at:%Y-%m-%d %H:%M:%S} by {run.created_by.get_username()}"
        finished = f", finished {run.finished_at:%Y-%m-%d %H:%M:%S}" if run.finished_at else ""
        write(f"Started:  {started} ({run.get_source_display()}){finished}")
        if run.reason:
            write(f"Reason:   {run.reason}")
        api = "classic Act API v2" if run.kind == RunnableKind.REMOTE_ACTION else run.api_version
        write(f"Targets:  {run.target_count:,} (API {api})")
        counts = outcome_counts(run)
        shown = [f"{OUTCOME_LABELS[o]} {counts[o]:,}" for o in SUMMARY_ORDER if counts.get(o)]
        write(f"Outcomes: {' · '.join(shown) or 'none yet'}")
        write(f"Batches:  {len(batches)}")
        for b in batches:
            request = f"request {b.request_uuid}" if b.request_uuid else "no request id"
            write(f"  #{b.number} {b.get_state_display()}: {b.target_count:,} targets, {request}")
            if b.error_code or b.error_details:
                write(f"      error: {' '.join(filter(None, (b.error_code, b.error_details)))}")
            for e in b.engine_results:
                message = f": {e.get('message')}" if e.get("message") else ""
                write(f"      Engine {e.get('databaseUid') or '?'} {e.get('code')}{message}")
            if b.next_check_at:
                write(f"      next check {b.next_check_at:%Y-%m-%d %H:%M:%S}")
            if b.check_error:
                write(f"      last check failed: {b.check_error}")
            if b.resent_at:
                again = f" as batch {b.resent_as.number}" if b.resent_as else ""
                write(f"      not-sent targets sent again{again} on {b.resent_at:%Y-%m-%d %H:%M}")
        page = target_page(run, size=FIRST_TARGETS)
        write(f"First {len(page.targets)} of {run.target_count:,} targets:")
        for t in page.targets:
            status = f" [{t.status}]" if t.status else ""
            details = f": {details_of(t)}" if details_of(t) else ""
            outcome = OUTCOME_LABELS.get(t.outcome, t.outcome)
            write(f"  {t.position + 1:>6} {t.kind} {t.value} {outcome}{status}{details}")


def batch_document(batch: Batch) -> dict[str, Any]:
    """One batch as `show_run --json` prints it."""
    return {
        "number": batch.number,
        "state": batch.state,
        "request_id": batch.request_uuid or None,
        "error_code": batch.error_code or None,
        "error_details": batch.error_details or None,
        # A remote action's Engines' answers: [{databaseUid, code, message}]; [] otherwise.
        "engines": list(batch.engine_results or []),
    }


def target_document(target: Target) -> dict[str, Any]:
    """One target as `show_run --json` prints it: null for what is not known (yet)."""
    return {
        "value": target.value,
        "kind": target.kind,
        "execution_id": target.execution_uuid or None,
        "outcome": target.outcome or None,
        "upstream_status": target.status or None,
        "details": details_of(target) or None,
    }
