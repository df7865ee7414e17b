"""A fake Nexthink tenant (OAuth, Workflows API, NQL API) served over real HTTP for tests and demos.

Beside the client package, not inside it: the client imports nothing from here. Also holds the
project's one request validator (`spec`, over the bundled OpenAPI file in `openapi/`).
No Django here: the management command ``nexthink_simulator`` wraps :func:`serve_forever`.
"""

from .catalogue import Catalogue, SimParameter, SimWorkflow, default_workflows
from .faults import FaultConfig, Faults
from .inventory import Inventory, SimDevice, SimUser, default_inventory
from .nql import SAVED_QUERIES
from .server import Simulator, serve_forever
from .state import SimExecutionRecord, SimRequestRecord, SimState, SimTargetExecution
from .tenant import Tenant

__all__ = [
    "SAVED_QUERIES",
    "Catalogue",
    "FaultConfig",
    "Faults",
    "Inventory",
    "SimDevice",
    "SimExecutionRecord",
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
