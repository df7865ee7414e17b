"""A fake Nexthink tenant (OAuth, Workflows API, NQL API) served over real HTTP for tests and demos.

No Django here: the management command ``nexthink_simulator`` wraps :func:`serve_forever`.
"""

from .catalogue import Catalogue, SimParameter, SimWorkflow, default_workflows
from .faults import FaultConfig, Faults
from .inventory import Inventory, SimDevice, SimUser, default_inventory
from .nql import SAVED_QUERIES
from .server import Simulator, serve_forever
from .state import SimExecutionRecord, SimRequestRecord, SimState, SimTargetExecution

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
    "default_inventory",
    "default_workflows",
    "serve_forever",
]
