"""The workflow catalogue: rows synced from Nexthink and the portal's own curation of them."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from workflows_app.nexthink.models import Dependency, TriggerMethod

# The values are Nexthink's, defined once in the client; the portal adds only how it shows them.
DEPENDENCY_LABELS: dict[Dependency, str] = {
    Dependency.USER: "User",
    Dependency.DEVICE: "Device",
    Dependency.USER_AND_DEVICE: "User and device",
    Dependency.NONE: "None",
}
TRIGGER_LABELS: dict[TriggerMethod, str] = {
    TriggerMethod.API: "API",
    TriggerMethod.MANUAL: "Manual",
    TriggerMethod.MANUAL_MULTIPLE: "Manual (multiple)",
    TriggerMethod.SCHEDULER: "Scheduler",
}
DEPENDENCY_CHOICES = [(dependency.value, label) for dependency, label in DEPENDENCY_LABELS.items()]
TRIGGER_CHOICES = [(method.value, label) for method, label in TRIGGER_LABELS.items()]

# One boolean column per trigger method keeps the filter a plain indexed WHERE on every database.
TRIGGER_FIELDS = {
    TriggerMethod.API: "trigger_api",
    TriggerMethod.MANUAL: "trigger_manual",
    TriggerMethod.MANUAL_MULTIPLE: "trigger_manual_multiple",
    TriggerMethod.SCHEDULER: "trigger_scheduler",
}


class RunnableKind(models.TextChoices):
    """What the portal runs: a cloud workflow, or a classic platform's remote action."""

    WORKFLOW = "workflow", "Workflow"
    REMOTE_ACTION = "remote_action", "Remote action (classic)"


class Workflow(models.Model):
    """One thing the portal can run: a workflow as Nexthink describes it (written only by the
    catalogue sync), or a remote action of the classic platform an admin registered (its UID
    is both `nql_id` and `uuid`: the classic API has no list to sync from)."""

    class Status(models.TextChoices):
        ACTIVE = "ACTIVE", "Active"
        INACTIVE = "INACTIVE", "Inactive"

    kind = models.CharField(
        max_length=16,
        choices=RunnableKind.choices,
        default=RunnableKind.WORKFLOW,
        db_default=RunnableKind.WORKFLOW,  # for rows written with SQL (benchmark seeds)
    )
    nql_id = models.CharField("NQL id", max_length=255, unique=True)
    uuid = models.CharField(max_length=64, db_index=True)
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices)
    last_update_time = models.DateTimeField(null=True, blank=True)
    dependency = models.CharField(max_length=20, choices=DEPENDENCY_CHOICES)
    trigger_api = models.BooleanField(default=False)
    trigger_manual = models.BooleanField(default=False)
    trigger_manual_multiple = models.BooleanField(default=False)
    trigger_scheduler = models.BooleanField(default=False)
    raw = models.JSONField(default=dict, blank=True)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["status", "removed_at", "dependency"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.nql_id})"

    @property
    def trigger_methods(self) -> list[str]:
        return [method.value for method, field in TRIGGER_FIELDS.items() if getattr(self, field)]

    @property
    def is_removed(self) -> bool:
        return self.removed_at is not None

    @property
    def is_remote_action(self) -> bool:
        """Whether this is a classic remote action (sent through the Act API, not Workflows)."""
        return self.kind == RunnableKind.REMOTE_ACTION

    @property
    def curation_or_none(self) -> WorkflowCuration | None:
        """What the admins decided about this workflow, or None when they never curated it."""
        try:
            return self.curation
        except WorkflowCuration.DoesNotExist:
            return None


class WorkflowCuration(models.Model):
    """What the portal's admins decided about a workflow: who may run it and how it is shown."""

    workflow = models.OneToOneField(Workflow, on_delete=models.CASCADE, related_name="curation")
    self_service = models.BooleanField("offered to employees", default=False)
    title = models.CharField("employee-facing title", max_length=200, blank=True)
    description = models.TextField("employee-facing description", blank=True)
    category = models.CharField(max_length=100, blank=True)
    confirmation_text = models.TextField(blank=True)
    allowed_roles = models.JSONField(default=list, blank=True)
    # Who may resume its executions paused on a "wait for event" step (empty: helpdesk, admins).
    resume_roles = models.JSONField(default=list, blank=True)
    # Four-eyes: each run waits for an approver of `approver_role` or above (admins by default).
    # db_default too: rows written with SQL (benchmarks, fake history) get them without naming them.
    requires_approval = models.BooleanField(default=False, db_default=False)
    approver_role = models.CharField(max_length=20, blank=True, default="", db_default="")
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"Curation of {self.workflow.nql_id}"

    @property
    def display_title(self) -> str:
        return self.title or self.workflow.name


class ParameterDefinition(models.Model):
    """One input of a workflow as the portal asks for it."""

    class Type(models.TextChoices):
        TEXT = "text", "Text"
        CHOICE = "choice", "Choice"
        BOOLEAN = "boolean", "Yes / no"
        NUMBER = "number", "Number"

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="parameters")
    name = models.CharField(max_length=100, help_text="As Nexthink expects it")
    label = models.CharField(max_length=200, blank=True)
    help_text = models.CharField(max_length=500, blank=True)
    type = models.CharField(max_length=10, choices=Type.choices, default=Type.TEXT)
    required = models.BooleanField(default=False)
    default = models.CharField(max_length=500, blank=True)
    choices = models.JSONField(default=list, blank=True)
    pattern = models.CharField(max_length=500, blank=True)
    secret = models.BooleanField(default=False)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["workflow", "name"], name="unique_parameter_name")
        ]

    def __str__(self) -> str:
        return f"{self.workflow.nql_id}:{self.name}"


class CatalogueSync(models.Model):
    """One run of the catalogue sync: when, what changed, what went wrong."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        PARTIAL = "partial", "Succeeded with problems"
        FAILED = "failed", "Failed"

    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    trigger = models.CharField(max_length=20, default="schedule")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    added = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    removed = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    problems = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-started_at"]
        get_latest_by = "started_at"

    def __str__(self) -> str:
        return f"Sync {self.pk} ({self.status})"
