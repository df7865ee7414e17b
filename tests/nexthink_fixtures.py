"""Pytest fixtures for the Nexthink simulator: one server per session, reset for every test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from workflows_app.simulator import Simulator

# The session's simulator requires its control token, as one reachable from elsewhere would.
CONTROL_TOKEN = "test-simulator-control-token"
CONTROL_HEADERS = {"X-Simulator-Token": CONTROL_TOKEN}


@pytest.fixture(scope="session")
def simulator_server() -> Iterator[Simulator]:
    """The session's simulator, started once."""
    sim = Simulator(control_token=CONTROL_TOKEN).start()
    yield sim
    sim.stop()


@pytest.fixture
def simulator(simulator_server: Simulator) -> Iterator[Simulator]:
    """A started simulator with no executions, tokens or faults, and the default catalogue."""
    simulator_server.reset()
    yield simulator_server
    simulator_server.reset()


@pytest.fixture
def nexthink_client(simulator: Simulator) -> Iterator[Any]:
    """A NexthinkClient pointed at the simulator, with short timeouts and its own token cache."""
    from workflows_app.nexthink.auth import MemoryTokenCache
    from workflows_app.nexthink.client import ClientConfig, NexthinkClient

    config = ClientConfig(
        api_url=simulator.base_url,
        token_url=simulator.token_url,
        client_id=simulator.client_id,
        client_secret=simulator.client_secret,
        read_timeout=2,
        connect_timeout=2,
    )
    client = NexthinkClient(config, token_cache=MemoryTokenCache())
    yield client
    close = getattr(client, "close", None)
    if close is not None:
        close()
