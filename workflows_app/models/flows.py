"""Remediation flows: several workflows run in dependency order on the same targets, as one fix.

A flow's definition is versioned: every edit writes a new `FlowVersion` (its steps as JSON, as
the flow input normalised them), and a run records the version it ran. A flow run is a run of
runs: each step that starts becomes an ordinary `Run`, linked here through `FlowStepRun`, so its
batches, outcomes, timeline and audit are the run's own.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Upper

from workflows_app.models.runs import Run

FLOW_FORMAT_VERSION = "2.0"


class Flow(models.Model):
    """A named remediation flow; its steps live in its versions, the newest being current."""

    name = models.CharField(max_length=200)
    # Offered to employees as one fix on the self-service page.
    self_service = models.BooleanField(default=False)
    # Four-eyes: each run waits for an approver of `approver_role` or above (admins by default).
    requires_approval = models.BooleanField(default=False)
    approver_role = models.CharField(max_length=20, blank=True)
    version = models.PositiveIntegerField(default=1, help_text="The current version's number")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    modified_at = models.DateTimeField(auto_now_add=True)
    modified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Deleted flows stay for their runs' history; nobody sees or runs them any more.
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                Upper("name"),
                name="unique_live_flow_name",
                condition=models.Q(deleted_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"Flow {self.pk}: {self.name}"

    @property
    def current(self) -> FlowVersion:
        """The version people see and run."""
        return self.versions.get(number=self.version)


class FlowVersion(models.Model):
    """One version of a flow's definition, never changed once written."""

    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    name = models.CharField(max_length=200)
    # The normalised steps: id, name, referrer, type, params, depends_on, is_skipped,
    # exception_behavior, run_on (services/flow_rules.py).
    steps = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["flow", "number"]
        constraints = [
            models.UniqueConstraint(fields=["flow", "number"], name="unique_flow_version")
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.number}"


class FlowRunStatus(models.TextChoices):
    """Where a flow run stands, derived from its steps."""

    # Four-eyes: no step starts until an approver says yes (services/approvals.py).
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    IN_PROGRESS = "in_progress", "In progress"
    SUCCEEDED = "succeeded", "Succeeded"
    PARTIAL = "partial", "Partly failed"
    FAILED = "failed", "Failed"
    STOPPED = "stopped", "Stopped"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Approval expired"


FINAL_FLOW_RUN_STATUSES = frozenset(
    {
        FlowRunStatus.SUCCEEDED,
        FlowRunStatus.PARTIAL,
        FlowRunStatus.FAILED,
        FlowRunStatus.STOPPED,
        FlowRunStatus.REJECTED,
        FlowRunStatus.EXPIRED,
    }
)


class FlowRun(models.Model):
    """One person running one version of a flow on a set of targets."""

    flow = models.ForeignKey(Flow, on_delete=models.PROTECT, related_name="runs")
    flow_version = models.ForeignKey(FlowVersion, on_delete=models.PROTECT, related_name="runs")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="flow_runs"
    )
    role = models.CharField(max_length=20)
    source = models.CharField(max_length=20, choices=Run.Source.choices)
    reason = models.CharField(max_length=500, blank=True)
    # The targets, one "kind<TAB>value" line each (targets.to_session_text).
    targets = models.TextField()
    target_count = models.PositiveIntegerField(default=0)
    status = models.CharField(
        max_length=20, choices=FlowRunStatus.choices, default=FlowRunStatus.IN_PROGRESS
    )
    stop_reason = models.CharField(max_length=500, blank=True)
    advanced_at = models.DateTimeField(null=True, blank=True)
    # When flow_run.ended was published (services/flow_engine.py): set with the final status by
    # one conditional UPDATE, so racing advances publish it once.
    end_published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "id"], name="flow_run_status_id")]

    def __str__(self) -> str:
        return f"Flow run {self.pk} of {self.flow_version}"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_FLOW_RUN_STATUSES


class StepState(models.TextChoices):
    """Where one step of a flow run stands."""

    PENDING = "pending", "Waiting for the steps it depends on"
    STARTED = "started", "Running"
    ENDED = "ended", "Ended"
    SKIPPED = "skipped", "Skipped"
    NOT_STARTED = "not_started", "Not started"


class StepOutcome(models.TextChoices):
    """How a step ended: all targets succeeded, some failed, or all failed / not sent."""

    SUCCESS = "success", "Succeeded"
    PARTIAL_SUCCESS = "partial_success", "Partial success"
    FAILURE = "failure", "Failed"


class FlowStepRun(models.Model):
    """One step of a flow run: its state, and the ordinary run it became once started."""

    flow_run = models.ForeignKey(FlowRun, on_delete=models.CASCADE, related_name="steps")
    step_id = models.CharField(max_length=100)
    position = models.PositiveIntegerField()
    state = models.CharField(max_length=12, choices=StepState.choices, default=StepState.PENDING)
    outcome = models.CharField(max_length=16, choices=StepOutcome.choices, blank=True)
    run = models.OneToOneField(
        Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="flow_step"
    )
    reason = models.CharField(max_length=500, blank=True, help_text="Why it did not start")
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["flow_run", "position"]
        constraints = [
            models.UniqueConstraint(fields=["flow_run", "step_id"], name="unique_flow_step")
        ]

    def __str__(self) -> str:
        return f"Step {self.step_id} of flow run {self.flow_run_id} ({self.state})"

    @property
    def status_word(self) -> str:
        """Where it stands in one word: its outcome once ended, else its state."""
        return self.outcome if self.state == StepState.ENDED and self.outcome else self.state

    @property
    def status_label(self) -> str:
        """`status_word` as people read it."""
        if self.state == StepState.ENDED and self.outcome:
            return str(StepOutcome(self.outcome).label)
        return str(StepState(self.state).label)
