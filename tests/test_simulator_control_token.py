"""The simulator's /_simulator/ control endpoints: a token when set, loopback only without one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests
import yaml

from tests.nexthink_fixtures import CONTROL_HEADERS
from workflows_app.simulator import Simulator

ROOT = Path(__file__).resolve().parents[1]


def test_control_endpoints_refuse_a_request_without_the_token(simulator: Simulator) -> None:
    simulator.faults.configure(error_rate=0.0, latency=0.25)

    reset = requests.post(simulator.base_url + "/_simulator/reset", timeout=5)
    state = requests.get(simulator.base_url + "/_simulator/state", timeout=5)

    assert (reset.status_code, state.status_code) == (401, 401)
    assert reset.json()["code"] == "CONTROL_TOKEN_REQUIRED"
    assert simulator.faults.config.latency == 0.25  # the refused reset changed nothing


def test_control_endpoints_refuse_a_wrong_token(simulator: Simulator) -> None:
    wrong = {"X-Simulator-Token": CONTROL_HEADERS["X-Simulator-Token"] + "x"}
    answer = requests.post(
        simulator.base_url + "/_simulator/faults", json={"latency": 1}, headers=wrong, timeout=5
    )
    assert answer.status_code == 401
    assert simulator.faults.config.latency == 0.0


def test_control_endpoints_answer_with_the_token(simulator: Simulator) -> None:
    answer = requests.post(
        simulator.base_url + "/_simulator/faults",
        json={"latency": 0.5},
        headers=CONTROL_HEADERS,
        timeout=5,
    )
    assert answer.status_code == 200 and simulator.faults.config.latency == 0.5


def test_the_tenant_api_needs_no_control_token(simulator: Simulator) -> None:
    answer = requests.post(
        simulator.token_url,
        data={"grant_type": "client_credentials"},
        auth=(simulator.client_id, simulator.client_secret),
        timeout=5,
    )
    assert answer.status_code == 200, answer.text


def test_without_a_token_control_answers_on_loopback_only() -> None:
    with Simulator(host="127.0.0.1") as local:
        assert requests.get(local.base_url + "/_simulator/state", timeout=5).status_code == 200
    # Bound to every interface (what compose does inside its container), reached over loopback.
    with Simulator(host="0.0.0.0") as exposed:
        url = f"http://127.0.0.1:{exposed.port}/_simulator/reset"
        refused = requests.post(url, timeout=5)
        assert refused.status_code == 403 and refused.json()["code"] == "CONTROL_DISABLED"
        api = requests.post(
            f"http://127.0.0.1:{exposed.port}/oauth2/default/v1/token",
            data={"grant_type": "client_credentials"},
            auth=(exposed.client_id, exposed.client_secret),
            timeout=5,
        )
        assert api.status_code == 200


@pytest.mark.parametrize("argv_token", ["from-the-command-line", None])
def test_the_command_line_takes_the_token_from_its_flag_or_the_environment(
    monkeypatch: pytest.MonkeyPatch, argv_token: str | None
) -> None:
    from workflows_app.simulator import __main__ as cli

    seen: dict[str, object] = {}
    monkeypatch.setenv("SIMULATOR_CONTROL_TOKEN", "from-the-environment")
    monkeypatch.setattr(cli, "serve_forever", lambda *a, **kw: seen.update(kw))
    cli.main(["--port", "0", *(["--control-token", argv_token] if argv_token else [])])
    assert seen["control_token"] == (argv_token or "from-the-environment")


def test_compose_publishes_the_simulator_on_loopback_only() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    simulator = compose["services"]["simulator"]
    assert simulator["ports"] and all(
        re.fullmatch(r"127\.0\.0\.1:\d+:\d+", port) for port in simulator["ports"]
    ), simulator["ports"]
    assert "SIMULATOR_CONTROL_TOKEN" in simulator["environment"]
