"""Database models, split by concern."""

from workflows_app.models.api import ApiToken, IdempotencyKey
from workflows_app.models.approvals import Approval, ApprovalState
from workflows_app.models.audit import (
    AuditAction,
    AuditEvent,
    AuditPurgePermit,
    RetentionSweep,
    RunEvent,
    RunEventKind,
)
from workflows_app.models.catalogue import (
    CatalogueSync,
    ParameterDefinition,
    RunnableKind,
    Workflow,
    WorkflowCuration,
)
from workflows_app.models.dashboard import (
    DailyDeviceFailure,
    DailyRunCount,
    DashboardCounting,
)
from workflows_app.models.flows import (
    FINAL_FLOW_RUN_STATUSES,
    FLOW_FORMAT_VERSION,
    Flow,
    FlowRun,
    FlowRunStatus,
    FlowStepRun,
    FlowVersion,
    StepOutcome,
    StepState,
)
from workflows_app.models.help_requests import HelpRequest
from workflows_app.models.notifications import (
    DeliveryState,
    EmailNotice,
    EmailState,
    NotificationPreference,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
)
from workflows_app.models.people import PersonProfile
from workflows_app.models.runs import (
    OPEN_OUTCOMES,
    Batch,
    BatchState,
    Outcome,
    Resumption,
    Run,
    RunStatus,
    Target,
)
from workflows_app.models.self_service import DeviceAssignment, PortalSettings

__all__ = [
    "Approval",
    "ApprovalState",
    "ApiToken",
    "IdempotencyKey",
    "OPEN_OUTCOMES",
    "AuditAction",
    "AuditEvent",
    "AuditPurgePermit",
    "Batch",
    "BatchState",
    "CatalogueSync",
    "DailyDeviceFailure",
    "DailyRunCount",
    "DashboardCounting",
    "DeliveryState",
    "DeviceAssignment",
    "EmailNotice",
    "EmailState",
    "FINAL_FLOW_RUN_STATUSES",
    "FLOW_FORMAT_VERSION",
    "Flow",
    "FlowRun",
    "FlowRunStatus",
    "FlowStepRun",
    "FlowVersion",
    "HelpRequest",
    "NotificationPreference",
    "Outcome",
    "ParameterDefinition",
    "PersonProfile",
    "PortalSettings",
    "Resumption",
    "RetentionSweep",
    "RunEvent",
    "RunEventKind",
    "Run",
    "RunnableKind",
    "RunStatus",
    "StepOutcome",
    "StepState",
    "Target",
    "Webhook",
    "WebhookAttempt",
    "WebhookDelivery",
    "Workflow",
    "WorkflowCuration",
]
