"""Runs of a workflow: the run, its batches (one API request each), its targets and their
outcomes as Nexthink recorded them, and the waiting executions people resumed."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Value
from django.db.models.functions import Upper

from workflows_app.models.catalogue import RunnableKind, Workflow


class RunStatus(models.TextChoices):
    """Where a run stands, derived from its batches and its targets' outcomes."""

    # Four-eyes: nothing is sent until an approver says yes (services/approvals.py).
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    QUEUED = "queued", "Queued"
    IN_PROGRESS = "in_progress", "In progress"
    WAITING = "waiting", "Waiting for an event"
    SUCCEEDED = "succeeded", "Succeeded"
    # A remote action every Engine accepted: the classic API says no more than that.
    SENT = "sent", "Sent"
    PARTIAL = "partial", "Partly failed"
    FAILED = "failed", "Failed"
    UNKNOWN = "unknown", "Outcome unknown"
    # An approver said no, or nobody answered in time: nothing was sent.
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Approval expired"


FINAL_RUN_STATUSES = frozenset(
    {
        RunStatus.SUCCEEDED,
        RunStatus.SENT,
        RunStatus.PARTIAL,
        RunStatus.FAILED,
        RunStatus.UNKNOWN,
        RunStatus.REJECTED,
        RunStatus.EXPIRED,
    }
)


class BatchState(models.TextChoices):
    """Where sending one batch stands (services/lifecycle.py holds the moves between them)."""

    HELD = "held", "Awaiting approval"  # its run waits for an approver; no message is queued
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SUBMITTED = "submitted", "Submitted"
    FAILED = "failed", "Failed"
    UNKNOWN = "unknown", "Outcome unknown"
    # Its send was unknown; Nexthink's execution history said what became of each target.
    RECONCILED = "reconciled", "Reconciled"


FINAL_BATCH_STATES = (
    BatchState.SUBMITTED,
    BatchState.FAILED,
    BatchState.UNKNOWN,
    BatchState.RECONCILED,
)


class Outcome(models.TextChoices):
    """How one target's execution ended, as far as the portal knows ("" before it is sent)."""

    PENDING = "pending", "Pending"  # sent, nothing known yet
    RUNNING = "running", "Running"
    WAITING = "waiting", "Waiting for an event"
    SUCCESS = "success", "Succeeded"
    SENT = "sent", "Sent"  # a remote action every Engine accepted; nothing more is known
    FAILURE = "failure", "Failed"
    UNKNOWN = "unknown", "Unknown"  # the portal cannot tell
    NOT_SENT = "not_sent", "Not sent"  # never reached Nexthink


# Outcomes that can still change by themselves: follow-up keeps asking about these.
OPEN_OUTCOMES = frozenset({Outcome.PENDING, Outcome.RUNNING, Outcome.WAITING})


class Run(models.Model):
    """One request by a person to run a workflow on a set of targets."""

    class Source(models.TextChoices):
        HELPDESK = "helpdesk", "Helpdesk form"
        SELF_SERVICE = "self_service", "Self-service"
        CLI = "cli", "Command line"
        API = "api", "API"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="runs"
    )
    role = models.CharField(max_length=20)
    source = models.CharField(max_length=20, choices=Source.choices)
    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT, related_name="runs")
    # db_default too: rows written with SQL (benchmarks, fake history) get it without naming it.
    kind = models.CharField(
        max_length=16,
        choices=RunnableKind.choices,
        default=RunnableKind.WORKFLOW,
        db_default=RunnableKind.WORKFLOW,
    )
    # Snapshot: what the workflow was when the run was asked for, whatever the catalogue says later.
    workflow_nql_id = models.CharField(max_length=255)
    workflow_uuid = models.CharField(max_length=64)
    workflow_name = models.CharField(max_length=255)
    dependency = models.CharField(max_length=20)
    params = models.JSONField(default=dict, blank=True, help_text="Secret values masked")
    secret_params = models.TextField(blank=True, help_text="Encrypted; erased once sent")
    reason = models.CharField(max_length=500, blank=True)
    api_version = models.CharField(max_length=2)
    target_count = models.PositiveIntegerField(default=0)
    duplicate_count = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.QUEUED)
    target_fingerprint = models.CharField(max_length=64, blank=True)
    # How many targets have each outcome (keys of Outcome, "" for not yet sent): the sum of
    # its batches' counts, kept with the status.
    outcome_counts = models.JSONField(default=dict, blank=True)
    # When its first batch was submitted and when it first became final: services/lifecycle.py
    # publishes run.submitted and run.ended then, once each, whatever changes afterwards.
    submitted_at = models.DateTimeField(null=True, blank=True)
    end_published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["created_by", "workflow", "target_fingerprint", "created_at"]),
            models.Index(fields=["status", "id"]),
            # History filters (selectors/runs.py), each newest first by id.
            models.Index(fields=["created_by", "id"], name="run_requester_id"),
            models.Index(fields=["workflow", "id"], name="run_workflow_id"),
            models.Index(fields=["source", "id"], name="run_source_id"),
            models.Index(fields=["role", "id"], name="run_role_id"),
            models.Index(fields=["kind", "id"], name="run_kind_id"),
        ]

    def __str__(self) -> str:
        return f"Run {self.pk} of {self.workflow_nql_id}"

    @property
    def is_final(self) -> bool:
        """Whether nothing more will happen to the run by itself."""
        return self.status in FINAL_RUN_STATUSES


class Batch(models.Model):
    """At most 10,000 devices and 10,000 users sent in one API request, with its lifecycle."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="batches")
    number = models.PositiveIntegerField()
    state = models.CharField(max_length=10, choices=BatchState.choices, default=BatchState.QUEUED)
    api_version = models.CharField(max_length=2)
    target_count = models.PositiveIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    claim_id = models.CharField(max_length=64, blank=True, help_text="Task that claimed it")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    request_uuid = models.CharField(max_length=64, blank=True, db_index=True)
    error_code = models.CharField(max_length=100, blank=True)
    error_details = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Follow-up of its executions through NQL (services/follow_up.py).
    outcome_counts = models.JSONField(default=dict, blank=True)
    next_check_at = models.DateTimeField(null=True, blank=True)
    checks = models.PositiveIntegerField(default=0)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    check_error = models.TextField(blank=True, help_text="The last NQL problem, if any")
    export_id = models.CharField(max_length=128, blank=True, help_text="NQL export in progress")
    export_started_at = models.DateTimeField(null=True, blank=True)
    # An admin's decision to send its not-sent targets again, as a new batch.
    resent_at = models.DateTimeField(null=True, blank=True)
    resent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resent_as = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="resent_from"
    )
    resend_note = models.CharField(max_length=500, blank=True)
    # A remote action's answer: one {databaseUid, code, message} per Engine (classic Act API).
    engine_results = models.JSONField(
        default=list, blank=True, db_default=Value([], output_field=models.JSONField())
    )

    class Meta:
        ordering = ["run", "number"]
        constraints = [
            models.UniqueConstraint(fields=["run", "number"], name="unique_batch_number")
        ]
        indexes = [
            models.Index(fields=["state", "updated_at"]),
            # The follow-up's queue: only batches with a check planned.
            models.Index(
                fields=["next_check_at"],
                name="batch_next_check",
                condition=models.Q(next_check_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"Batch {self.number} of run {self.run_id} ({self.state})"

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_BATCH_STATES

    @property
    def engines_not_ok(self) -> list[dict[str, str]]:
        """The Engines that did not answer `ok` to this remote action batch."""
        return [e for e in self.engine_results if e.get("code") != "ok"]


class Target(models.Model):
    """One device or user a run targets; lean, since there can be millions."""

    # (run, position) below serves every lookup by run; no separate index on run alone. No
    # database constraint either: the batch's foreign key already ties the row to an existing
    # batch of that run, and PostgreSQL checks a constraint once per row at commit, which was
    # half a second of every 100,000-target run (issue 11).
    run = models.ForeignKey(
        Run, on_delete=models.CASCADE, related_name="targets", db_index=False, db_constraint=False
    )
    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="targets")
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=20)
    value = models.CharField(max_length=255)
    execution_uuid = models.CharField(max_length=64, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, blank=True)
    # Nexthink's own words, kept raw beside the outcome (an unknown value is shown as it is).
    status = models.CharField(max_length=64, blank=True)
    status_details = models.TextField(blank=True)
    upstream_outcome = models.CharField(max_length=64, blank=True)
    outcome_details = models.TextField(blank=True)

    class Meta:
        ordering = ["run", "position"]
        indexes = [
            models.Index(fields=["run", "position"]),
            # The history's "target" filter: which runs name this device or user.
            models.Index(Upper("value"), "run", name="target_value_upper"),
            # Follow-up looks targets up by execution id; rows not yet sent have none, and
            # leaving them out keeps the index (and every insert) small.
            models.Index(
                fields=["execution_uuid"],
                name="target_execution_uuid",
                condition=~models.Q(execution_uuid=""),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


class Resumption(models.Model):
    """A person resuming an execution paused on a "wait for event" step, and Nexthink's answer."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="resumptions")
    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="resumptions")
    execution_uuid = models.CharField(max_length=64)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    source = models.CharField(max_length=20, choices=Run.Source.choices)
    params = models.JSONField(default=dict, blank=True, help_text="Secret values masked")
    request_uuid = models.CharField(max_length=64, blank=True, help_text="Nexthink's answer")
    error_code = models.CharField(max_length=100, blank=True)
    error_details = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"Resumption of {self.execution_uuid} by {self.requested_by}"

    @property
    def succeeded(self) -> bool:
        return bool(self.request_uuid) and not self.error_code
