"""A fake Nexthink tenant (OAuth, Workflows API, NQL API) served over real HTTP for tests and demos.

Beside the client package, not inside it: the client imports nothing from here. Also holds the
project's one request validator (`spec`, over the bundled OpenAPI file in `openapi/`).
No Django here: the management command ``nexthink_simulator`` wraps :func:`serve_forever`.
"""

from .catalogue import Catalogue, SimParameter, SimWorkflow, default_workflows
from .exports import ExportStore, SimExport
from .faults import FaultConfig, Faults
from .inventory import Inventory, SimDevice, SimUser, default_inventory
from .queries import (
    EXECUTIONS_QUERY,
    RECENT_EXECUTIONS_QUERY,
    SAVED_QUERIES,
    WORKFLOW_EXECUTION_FIELDS,
    ColumnShape,
    SavedQuery,
)
from .server import Simulator, serve_forever
from .state import SimExecutionRecord, SimRequestRecord, SimState, SimTargetExecution
from .tenant import Tenant

__all__ = [
    "EXECUTIONS_QUERY",
    "RECENT_EXECUTIONS_QUERY",
    "SAVED_QUERIES",
    "WORKFLOW_EXECUTION_FIELDS",
    "Catalogue",
    "ColumnShape",
    "ExportStore",
    "FaultConfig",
    "Faults",
    "Inventory",
    "SavedQuery",
    "SimDevice",
    "SimExecutionRecord",
    "SimExport",
    "SimParameter",
    "SimRequestRecord",
    "SimState",
    "SimTargetExecution",
    "SimUser",
    "SimWorkflow",
    "Simulator",
    "Tenant",
    "default_inventory",
    "default_workflows",
    "serve_forever",
]
