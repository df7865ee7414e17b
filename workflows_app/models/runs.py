"""Runs of a workflow: the run, its batches (one API request each) and its targets."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from workflows_app.models.catalogue import Workflow


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    IN_PROGRESS = "in_progress", "In progress"
    SUBMITTED = "submitted", "Submitted"
    PARTIAL = "partial", "Partly failed"
    FAILED = "failed", "Failed"
    UNKNOWN = "unknown", "Outcome unknown"


class BatchState(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SUBMITTED = "submitted", "Submitted"
    FAILED = "failed", "Failed"
    UNKNOWN = "unknown", "Outcome unknown"


FINAL_BATCH_STATES = (BatchState.SUBMITTED, BatchState.FAILED, BatchState.UNKNOWN)


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
    status = models.CharField(max_length=12, choices=RunStatus.choices, default=RunStatus.QUEUED)
    target_fingerprint = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["created_by", "workflow", "target_fingerprint", "created_at"]),
            models.Index(fields=["status", "id"]),
        ]

    def __str__(self) -> str:
        return f"Run {self.pk} of {self.workflow_nql_id}"

    @property
    def is_final(self) -> bool:
        return self.status not in (RunStatus.QUEUED, RunStatus.IN_PROGRESS)


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

    class Meta:
        ordering = ["run", "number"]
        constraints = [
            models.UniqueConstraint(fields=["run", "number"], name="unique_batch_number")
        ]
        indexes = [models.Index(fields=["state", "updated_at"])]

    def __str__(self) -> str:
        return f"Batch {self.number} of run {self.run_id} ({self.state})"

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_BATCH_STATES


class Target(models.Model):
    """One device or user a run targets; lean, since there can be millions."""

    # (run, position) below serves every lookup by run; no separate index on run alone.
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="targets", db_index=False)
    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="targets")
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=20)
    value = models.CharField(max_length=255)
    execution_uuid = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=30, blank=True)
    status_details = models.TextField(blank=True)

    class Meta:
        ordering = ["run", "position"]
        indexes = [
            models.Index(fields=["run", "position"]),
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
