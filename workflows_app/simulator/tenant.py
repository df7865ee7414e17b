"""The simulated tenant without its HTTP server: catalogue, inventory, state, faults and settings.

The router hands each endpoint only the parts of a Tenant it uses; `Simulator` serves one Tenant.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, get_args

from .catalogue import Catalogue, SimWorkflow, TriggerShape
from .classic import ClassicApi
from .exports import ExportStore
from .faults import Faults
from .inventory import Inventory, default_inventory
from .nql import DateTimeShape
from .oauth import TOKEN_PATH
from .queries import ColumnShape
from .state import SimState

_CHOICES: dict[str, Any] = {
    "trigger_shape": TriggerShape,
    "nql_datetime_shape": DateTimeShape,
    "nql_column_shape": ColumnShape,
}
_SECONDS = ("execution_seconds", "token_ttl", "export_seconds", "export_url_seconds")


class Tenant:
    """One Nexthink tenant's data and knobs; ``reset()`` restores it as it was made."""

    def __init__(
        self,
        catalogue: Catalogue | Iterable[SimWorkflow] | None = None,
        inventory: Inventory | None = None,
        *,
        client_id: str = "portal-demo",
        client_secret: str = "demo-secret",
        token_ttl: float = 900,
        execution_seconds: float = 3.0,
        trigger_shape: TriggerShape = "flags",
        nql_datetime_shape: DateTimeShape = "object",
        nql_column_shape: ColumnShape = "plain",
        export_seconds: float = 1.0,
        export_url_seconds: float = 900,
        classic: ClassicApi | None = None,
    ) -> None:
        self.catalogue = catalogue if isinstance(catalogue, Catalogue) else Catalogue(catalogue)
        self.inventory = inventory or default_inventory()
        self.client_id = client_id
        self.client_secret = client_secret
        self.state = SimState(execution_seconds=execution_seconds)
        self.exports = ExportStore()
        self.faults = Faults()
        # The classic web interface's Act API v2, beside the cloud APIs.
        self.classic = classic or ClassicApi()
        self._initial_settings: dict[str, Any] = {
            "execution_seconds": execution_seconds,
            "trigger_shape": trigger_shape,
            "nql_datetime_shape": nql_datetime_shape,
            "nql_column_shape": nql_column_shape,
            "token_ttl": token_ttl,
            "export_seconds": export_seconds,
            "export_url_seconds": export_url_seconds,
        }
        self.token_ttl = token_ttl
        self.trigger_shape: TriggerShape = "flags"
        self.nql_datetime_shape: DateTimeShape = "object"
        self.nql_column_shape: ColumnShape = "plain"
        self.configure(**self._initial_settings)

    def configure(self, **settings: Any) -> None:
        """Change execution_seconds, trigger_shape, nql_datetime_shape, nql_column_shape,
        token_ttl, export_seconds or export_url_seconds; raises ValueError on bad values."""
        unknown = set(settings) - set(self._initial_settings)
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        for name, choices in _CHOICES.items():
            if name in settings and settings[name] not in get_args(choices):
                raise ValueError(f"{name} must be one of {get_args(choices)}")
        for name in _SECONDS:
            value = settings.get(name)
            if value is not None and (not isinstance(value, int | float) or value < 0):
                raise ValueError(f"{name} must be a number >= 0")
        if "execution_seconds" in settings:
            self.state.execution_seconds = float(settings["execution_seconds"])
        if "export_seconds" in settings:
            self.exports.export_seconds = float(settings["export_seconds"])
        if "export_url_seconds" in settings:
            self.exports.url_seconds = float(settings["export_url_seconds"])
        if "token_ttl" in settings:
            self.token_ttl = settings["token_ttl"]
        if "trigger_shape" in settings:
            self.trigger_shape = settings["trigger_shape"]
        if "nql_datetime_shape" in settings:
            self.nql_datetime_shape = settings["nql_datetime_shape"]
        if "nql_column_shape" in settings:
            self.nql_column_shape = settings["nql_column_shape"]

    def settings(self, base_url: str) -> dict[str, Any]:
        """The current settings as JSON, with the addresses of the tenant served at base_url."""
        return {
            "execution_seconds": self.state.execution_seconds,
            "token_ttl": self.token_ttl,
            "trigger_shape": self.trigger_shape,
            "nql_datetime_shape": self.nql_datetime_shape,
            "nql_column_shape": self.nql_column_shape,
            "export_seconds": self.exports.export_seconds,
            "export_url_seconds": self.exports.url_seconds,
            "client_id": self.client_id,
            "base_url": base_url,
            "token_url": base_url + TOKEN_PATH,
        }

    def reset(self) -> None:
        """Forget executions, exports, requests, tokens and faults; restore catalogue, settings."""
        self.faults.clear()
        self.state.reset()
        self.exports.reset()
        self.catalogue.reset()
        self.classic.reset()
        self.configure(**self._initial_settings)
