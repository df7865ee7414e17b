"""Database models, split by concern."""

from workflows_app.models.catalogue import (
    CatalogueSync,
    ParameterDefinition,
    Workflow,
    WorkflowCuration,
)
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
    "OPEN_OUTCOMES",
    "Batch",
    "BatchState",
    "CatalogueSync",
    "DeviceAssignment",
    "Outcome",
    "ParameterDefinition",
    "PortalSettings",
    "Resumption",
    "Run",
    "RunStatus",
    "Target",
    "Workflow",
    "WorkflowCuration",
]
