"""Run a workflow (or a registered remote action) on targets from a file or stdin, as a named
portal user, optionally waiting."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, TextIO

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from workflows_app import links, permissions
from workflows_app import targets as targets_mod
from workflows_app.models import Batch, BatchState, Run, RunStatus, Workflow
from workflows_app.selectors.approvals import approval_of_run
from workflows_app.services.params import validate_params
from workflows_app.services.remote_actions import find_remote_action
from workflows_app.services.runs import RunRefused, create_run

EXIT_INVALID = 1
EXIT_NOT_SUBMITTED = 2
EXIT_TIMEOUT = 3


class Command(BaseCommand):
    help = (
        "Run a workflow (by NQL id) or a registered remote action (by UID or name) on the "
        "targets in FILE ('-' for stdin; .csv read as CSV), "
        "with the same role rules and validation as the portal's forms."
    )
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "workflow",
            metavar="WORKFLOW",
            help="NQL id (#clear_teams_cache), or a remote action's UID or name",
        )
        parser.add_argument("--targets", required=True, metavar="FILE", help="file, or - for stdin")
        parser.add_argument(
            "--param",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="a workflow parameter (repeat for several)",
        )
        parser.add_argument("--reason", default="", help="why the workflow is run")
        parser.add_argument("--user", required=True, metavar="USERNAME", help="who runs it")
        parser.add_argument(
            "--allow-duplicate",
            action="store_true",
            help="run even if the same run was asked for within the double-click window",
        )
        parser.add_argument("--wait", action="store_true", help="wait until every batch is sent")
        parser.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS")
        parser.add_argument("--poll-interval", type=float, default=1.0, help="seconds")

    def handle(self, *args: Any, **options: Any) -> None:
        user = self._user(options["user"])
        workflow = self._workflow(options["workflow"])
        parsed = self._read_targets(
            options["targets"], options.get("stdin") or sys.stdin, classic=workflow.is_remote_action
        )
        if not parsed.ok:
            for error in parsed.errors:
                where = f"line {error.line}" if error.line is not None else "input"
                text = f" {error.text!r}" if error.text else ""
                self.stderr.write(f"{where}:{text} {error.reason}")
            if parsed.errors_truncated:
                self.stderr.write(f"... and {parsed.errors_truncated:,} more errors")
            raise CommandError(
                f"{parsed.error_count:,} problem(s) in the targets; nothing was submitted.",
                returncode=EXIT_INVALID,
            )
        clean = self._params(workflow, options["param"])
        try:
            run = create_run(
                user=user,
                workflow=workflow,
                targets=parsed.targets,
                params=clean,
                reason=options["reason"],
                source=Run.Source.CLI,
                duplicate_count=parsed.duplicates,
                allow_duplicate=options["allow_duplicate"],
            )
        except RunRefused as exc:
            raise CommandError(f"Refused: {exc.message}", returncode=EXIT_INVALID) from None
        batches = run.batches.count()
        held = run.status == RunStatus.AWAITING_APPROVAL
        self.stdout.write(
            f"Run {run.pk} {'awaiting approval' if held else 'queued'}: "
            f"{run.target_count:,} targets in {batches} batch(es)"
            + (", classic Act API" if workflow.is_remote_action else f", API {run.api_version}")
            + (f", {parsed.duplicates:,} duplicate line(s) dropped" if parsed.duplicates else "")
        )
        self.stdout.write(links.run_url(run.pk))
        approval = approval_of_run(run) if held else None
        if approval is not None:
            who = permissions.approver_label(approval.approver_role)
            self.stdout.write(
                f"Nothing is sent until {who} other than you approves it "
                f"(before {approval.expires_at:%Y-%m-%d %H:%M %Z}): {approval.why}."
            )
            if options["wait"]:
                self.stdout.write("Not waiting: the run waits for its approval first.")
        elif options["wait"]:
            self._wait(run, timeout=options["timeout"], interval=options["poll_interval"])

    def _user(self, username: str) -> Any:
        """The portal user the run is recorded for."""
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.", returncode=EXIT_INVALID)
        if not user.is_active:
            raise CommandError(f"User {username!r} is inactive.", returncode=EXIT_INVALID)
        return user

    def _workflow(self, nql_id: str) -> Workflow:
        """The catalogue's workflow with this NQL id, or the remote action with this UID or name."""
        workflow = Workflow.objects.filter(nql_id=nql_id).select_related("curation").first()
        if workflow is None and not nql_id.startswith("#"):
            workflow = find_remote_action(nql_id)
        if workflow is None:
            raise CommandError(
                f"No workflow {nql_id!r} in the catalogue, and no remote action registered with "
                "that UID or name; check the NQL id or sync the catalogue.",
                returncode=EXIT_INVALID,
            )
        return workflow

    def _read_targets(
        self, source: str, stdin: TextIO, *, classic: bool
    ) -> targets_mod.ParsedTargets:
        """Parse the targets file (CSV by extension) or stdin; classic device UIDs if `classic`."""
        if source == "-":
            return targets_mod.parse_text(stdin.read(), classic=classic)
        path = Path(source)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(
                f"Cannot read {source}: {exc.strerror}", returncode=EXIT_INVALID
            ) from None
        # CSV by extension; any other file is read as pasted text (UTF-8 checked by parse_upload).
        is_csv = path.suffix.lower() in (".csv", ".tsv")
        name = path.name if is_csv else "targets.txt"
        return targets_mod.parse_upload(data, name, classic=classic)

    def _params(self, workflow: Workflow, pairs: list[str]) -> dict[str, str]:
        """Parse NAME=VALUE options and validate them like the form does."""
        submitted: dict[str, str] = {}
        for pair in pairs:
            name, sep, value = pair.partition("=")
            if not sep or not name.strip():
                raise CommandError(f"--param {pair!r}: write NAME=VALUE.", returncode=EXIT_INVALID)
            submitted[name.strip()] = value
        clean, errors = validate_params(workflow, submitted)
        if errors:
            for name, message in errors.items():
                self.stderr.write(f"--param {name}: {message}")
            raise CommandError(
                "Invalid parameters; nothing was submitted.", returncode=EXIT_INVALID
            )
        return clean

    def _wait(self, run: Run, *, timeout: float, interval: float) -> None:
        """Poll the database until every batch is final, print a summary, fail if any did."""
        deadline = time.monotonic() + timeout
        while Batch.objects.filter(
            run=run, state__in=(BatchState.QUEUED, BatchState.SENDING)
        ).exists():
            if time.monotonic() >= deadline:
                self._summary(run)
                raise CommandError(
                    f"Gave up waiting after {timeout:g} s; the run goes on in the background.",
                    returncode=EXIT_TIMEOUT,
                )
            time.sleep(interval)
        self._summary(run)
        bad = Batch.objects.filter(run=run, state__in=(BatchState.FAILED, BatchState.UNKNOWN))
        if bad.exists():
            raise CommandError(
                f"{bad.count()} batch(es) failed or have an unknown outcome.",
                returncode=EXIT_NOT_SUBMITTED,
            )

    def _summary(self, run: Run) -> None:
        """One line for the run, one per batch."""
        run.refresh_from_db()
        self.stdout.write(f"Run {run.pk}: {run.get_status_display()}")
        for batch in run.batches.order_by("number"):
            line = f"  batch {batch.number}: {batch.state}, {batch.target_count:,} targets"
            if batch.request_uuid:
                line += f", request {batch.request_uuid}"
            if batch.error_code:
                line += f", {batch.error_code}: {batch.error_details}"
            if batch.engine_results:
                codes = ", ".join(
                    f"{e.get('databaseUid')} {e.get('code')}" for e in batch.engine_results
                )
                line += f"; Engines: {codes}"
            self.stdout.write(line)
