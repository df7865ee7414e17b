"""Database models, split by concern."""

from workflows_app.models.catalogue import (
    CatalogueSync,
    ParameterDefinition,
    Workflow,
    WorkflowCuration,
)
from workflows_app.models.runs import Batch, BatchState, Run, RunStatus, Target
from workflows_app.models.self_service import DeviceAssignment, PortalSettings

__all__ = [
    "Batch",
    "BatchState",
    "CatalogueSync",
    "DeviceAssignment",
    "ParameterDefinition",
    "PortalSettings",
    "Run",
    "RunStatus",
    "Target",
    "Workflow",
    "WorkflowCuration",
]
