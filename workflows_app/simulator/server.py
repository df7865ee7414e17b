"""The Simulator: a real HTTP server acting as a Nexthink tenant, for tests and demo mode."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any, get_args

from .catalogue import Catalogue, SimWorkflow, TriggerShape
from .faults import Faults
from .handler import SimHTTPServer
from .inventory import Inventory, default_inventory
from .nql import DateTimeShape
from .oauth import TOKEN_PATH
from .state import SimState


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
        verbose: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.catalogue = catalogue if isinstance(catalogue, Catalogue) else Catalogue(catalogue)
        self.inventory = inventory or default_inventory()
        self.client_id = client_id
        self.client_secret = client_secret
        self.verbose = verbose
        self.state = SimState(execution_seconds=execution_seconds)
        self.faults = Faults()
        self._initial_settings = {
            "execution_seconds": execution_seconds,
            "trigger_shape": trigger_shape,
            "nql_datetime_shape": nql_datetime_shape,
            "token_ttl": token_ttl,
        }
        self.token_ttl = token_ttl
        self.trigger_shape: TriggerShape = "flags"
        self.nql_datetime_shape: DateTimeShape = "object"
        self.configure(**self._initial_settings)
        self._server: SimHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------
    def start(self) -> Simulator:
        """Bind the port and serve from a daemon thread; returns self."""
        if self._server is not None:
            return self
        self._server = SimHTTPServer((self.host, self.port), self)
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
        self.faults.wake_all()
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
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def token_url(self) -> str:
        """The OAuth2 token endpoint."""
        return self.base_url + TOKEN_PATH

    # --- steering -----------------------------------------------------------------------
    def configure(self, **settings: Any) -> None:
        """Change execution_seconds, trigger_shape, nql_datetime_shape or token_ttl."""
        unknown = set(settings) - set(self._initial_settings)
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        if "trigger_shape" in settings and settings["trigger_shape"] not in get_args(TriggerShape):
            raise ValueError(f"trigger_shape must be one of {get_args(TriggerShape)}")
        shape = settings.get("nql_datetime_shape")
        if shape is not None and shape not in get_args(DateTimeShape):
            raise ValueError(f"nql_datetime_shape must be one of {get_args(DateTimeShape)}")
        for name in ("execution_seconds", "token_ttl"):
            value = settings.get(name)
            if value is not None and (not isinstance(value, int | float) or value < 0):
                raise ValueError(f"{name} must be a number >= 0")
        if "execution_seconds" in settings:
            self.state.execution_seconds = float(settings["execution_seconds"])
        if "token_ttl" in settings:
            self.token_ttl = settings["token_ttl"]
        if "trigger_shape" in settings:
            self.trigger_shape = settings["trigger_shape"]
        if "nql_datetime_shape" in settings:
            self.nql_datetime_shape = settings["nql_datetime_shape"]

    def settings(self) -> dict[str, Any]:
        """The current settings, as JSON."""
        return {
            "execution_seconds": self.state.execution_seconds,
            "token_ttl": self.token_ttl,
            "trigger_shape": self.trigger_shape,
            "nql_datetime_shape": self.nql_datetime_shape,
            "client_id": self.client_id,
            "base_url": self.base_url,
            "token_url": self.token_url,
        }

    @property
    def execution_seconds(self) -> float:
        """How long an execution stays pending before it finishes."""
        return self.state.execution_seconds

    @execution_seconds.setter
    def execution_seconds(self, value: float) -> None:
        self.configure(execution_seconds=value)

    def reset(self) -> None:
        """Forget executions, requests, tokens and faults; restore catalogue and settings."""
        self.faults.clear()
        self.state.reset()
        self.catalogue.reset()
        self.configure(**self._initial_settings)

    def advance(self, include_waiting: bool = False) -> None:
        """Finish every pending execution now (waiting ones too when asked)."""
        self.state.advance(include_waiting=include_waiting)

    def expire_tokens(self) -> None:
        """Make every issued token invalid, as if 900 s had passed."""
        self.state.expire_tokens()


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
