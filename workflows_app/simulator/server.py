"""The Simulator: a real HTTP server acting as a Nexthink tenant, for tests and demo mode."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from .catalogue import Catalogue, SimWorkflow, TriggerShape
from .classic import ClassicApi
from .exports import ExportStore
from .faults import Faults
from .handler import SimHTTPServer, http_url
from .inventory import Inventory
from .nql import DateTimeShape
from .oauth import TOKEN_PATH
from .queries import ColumnShape
from .state import SimState
from .tenant import Tenant


class Simulator:
    """A Nexthink tenant on a local port: OAuth token endpoint, Workflows API, NQL API, controls.

    ``start()`` serves from a background thread; ``reset()`` forgets executions, tokens and
    faults and restores the catalogue and the settings given here.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        catalogue: Catalogue | Iterable[SimWorkflow] | None = None,
        inventory: Inventory | None = None,
        token_ttl: float = 900,
        client_id: str = "portal-demo",
        client_secret: str = "demo-secret",
        *,
        execution_seconds: float = 3.0,
        trigger_shape: TriggerShape = "flags",
        nql_datetime_shape: DateTimeShape = "object",
        nql_column_shape: ColumnShape = "plain",
        export_seconds: float = 1.0,
        export_url_seconds: float = 900,
        verbose: bool = False,
        control_token: str | None = None,
        classic_user: str = "portal-classic",
        classic_password: str = "classic-secret",  # noqa: S107 (the demo's documented one)
    ) -> None:
        self.host = host
        self.port = port
        self.verbose = verbose
        # Required by the /_simulator/ control endpoints when set; without it they answer only
        # on a loopback address (control.refusal).
        self.control_token = control_token
        self.tenant = Tenant(
            catalogue,
            inventory,
            client_id=client_id,
            client_secret=client_secret,
            token_ttl=token_ttl,
            execution_seconds=execution_seconds,
            trigger_shape=trigger_shape,
            nql_datetime_shape=nql_datetime_shape,
            nql_column_shape=nql_column_shape,
            export_seconds=export_seconds,
            export_url_seconds=export_url_seconds,
            classic=ClassicApi(user=classic_user, password=classic_password),
        )
        self._server: SimHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------
    def start(self) -> Simulator:
        """Bind the port and serve from a daemon thread; returns self."""
        if self._server is not None:
            return self
        self._server = SimHTTPServer(
            (self.host, self.port),
            self.tenant,
            verbose=self.verbose,
            control_token=self.control_token,
        )
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"nexthink-simulator-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, release requests held by faults, close the port."""
        if self._server is None:
            return
        self.tenant.faults.wake_all()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- addresses ----------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """The API host, e.g. http://127.0.0.1:8765 (no trailing slash)."""
        return http_url(self.host, self.port)

    @property
    def token_url(self) -> str:
        """The OAuth2 token endpoint."""
        return self.base_url + TOKEN_PATH

    # --- the tenant's parts, as tests and the demo reach them -----------------------------
    @property
    def catalogue(self) -> Catalogue:
        """The workflows the tenant offers."""
        return self.tenant.catalogue

    @property
    def inventory(self) -> Inventory:
        """The tenant's users and devices."""
        return self.tenant.inventory

    @property
    def state(self) -> SimState:
        """Tokens, requests seen and executions."""
        return self.tenant.state

    @property
    def exports(self) -> ExportStore:
        """The NQL exports started, their status and files."""
        return self.tenant.exports

    @property
    def faults(self) -> Faults:
        """The faults injected into answers."""
        return self.tenant.faults

    @property
    def classic(self) -> ClassicApi:
        """The classic web interface (Act API v2): credentials, remote actions, Engines, runs."""
        return self.tenant.classic

    @property
    def client_id(self) -> str:
        """The OAuth2 client id the token endpoint accepts."""
        return self.tenant.client_id

    @property
    def client_secret(self) -> str:
        """The OAuth2 client secret the token endpoint accepts."""
        return self.tenant.client_secret

    @property
    def token_ttl(self) -> float:
        """Seconds an issued token stays valid."""
        return self.tenant.token_ttl

    @property
    def trigger_shape(self) -> TriggerShape:
        """How workflow payloads list trigger methods ("flags" or "list")."""
        return self.tenant.trigger_shape

    @property
    def nql_datetime_shape(self) -> DateTimeShape:
        """How NQL answers give executionDateTime ("object" or "iso")."""
        return self.tenant.nql_datetime_shape

    @property
    def nql_column_shape(self) -> ColumnShape:
        """How NQL answers name the execution table's fields ("plain", "execution", "table")."""
        return self.tenant.nql_column_shape

    # --- steering -----------------------------------------------------------------------
    def configure(self, **settings: Any) -> None:
        """Change settings: execution_seconds, trigger_shape, nql_datetime_shape,
        nql_column_shape, token_ttl, export_seconds, export_url_seconds."""
        self.tenant.configure(**settings)

    def settings(self) -> dict[str, Any]:
        """The current settings, as JSON."""
        return self.tenant.settings(self.base_url)

    @property
    def execution_seconds(self) -> float:
        """How long an execution stays pending before it finishes."""
        return self.tenant.state.execution_seconds

    @execution_seconds.setter
    def execution_seconds(self, value: float) -> None:
        self.configure(execution_seconds=value)

    def reset(self) -> None:
        """Forget executions, exports, requests, tokens and faults; restore catalogue, settings."""
        self.tenant.reset()

    def advance(self, include_waiting: bool = False) -> None:
        """Finish every execution and export now (held executions too when asked)."""
        self.tenant.state.advance(include_waiting=include_waiting)
        self.tenant.exports.complete_all()

    def expire_tokens(self) -> None:
        """Make every issued token invalid, as if 900 s had passed."""
        self.tenant.state.expire_tokens()


def serve_forever(
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    on_ready: Callable[[Simulator], None] | None = None,
    stop_event: threading.Event | None = None,
    **options: Any,
) -> None:
    """Run a simulator until Ctrl-C (or until stop_event is set); options go to Simulator."""
    sim = Simulator(host=host, port=port, **options).start()
    stop = stop_event or threading.Event()
    try:
        if on_ready is not None:
            on_ready(sim)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
