"""The classic Act API v2: the simulator's endpoint and the portal's client, over real HTTP.

Every documented error code is provoked (from the request itself where the web interface would
answer it, on demand otherwise) and must reach the caller as a typed error that says, for
people, what happened and whether anything ran.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from pydantic import SecretStr

from tests.nexthink_fixtures import CONTROL_HEADERS
from workflows_app.nexthink.classic import (
    ENGINE_CODE_MEANINGS,
    ERROR_MESSAGES,
    ClassicClient,
    ClassicConfig,
    EngineCode,
    RemoteActionOutcomeUnknown,
    RemoteActionRefused,
    RemoteActionRequest,
    TooManyDevices,
    error_for,
)
from workflows_app.nexthink.errors import OutcomeUnknown, Unauthorized, Unavailable
from workflows_app.simulator.classic import ERROR_STATUS, RUN_PATH

ACTION = "07844969-1889-4de3-9026-020af94be855"
NO_MANUAL = "e6bb97be-0957-49e0-9922-1a684d093858"
DISABLED = "5d2f8a90-1c3e-4b7d-8e6f-0a9b8c7d6e5f"
EMEA, AMER = "86acc8511251ec444d3a75bac33a23c7", "a4690014774dcc32b919c27d616166f7"
DEVICE = "da2add909a144e8235453f88dc45172f"


def config(simulator: Any, **overrides: Any) -> ClassicConfig:
    values: dict[str, Any] = {
        "url": simulator.base_url,
        "user": simulator.classic.user,
        "password": SecretStr(simulator.classic.password),
        "read_margin": 1.0,
        **overrides,
    }
    return ClassicConfig(**values)


@pytest.fixture
def classic(simulator: Any) -> Iterator[ClassicClient]:
    client = ClassicClient(config(simulator))
    yield client
    client.close()


def post(simulator: Any, body: bytes, content_type: str = "application/json") -> requests.Response:
    """A raw POST with the simulator's credentials, as a careless client might send it."""
    token = base64.b64encode(f"{simulator.classic.user}:{simulator.classic.password}".encode())
    headers = {"Authorization": "Basic " + token.decode(), "Content-Type": content_type}
    return requests.post(simulator.base_url + RUN_PATH, data=body, headers=headers, timeout=5)


def runs_received(simulator: Any) -> int:
    return len(simulator.state.requests_matching(RUN_PATH)["requests"])


def test_a_run_answers_one_result_per_engine_with_its_code(classic: ClassicClient, simulator: Any):
    simulator.classic.configure({"engine_answers": {AMER: "engine_error"}})
    request = classic.request(
        remote_action_uid=ACTION,
        device_uids=[DEVICE],
        request_uid="portal-run-1-batch-1-1",
        params={"Force": "yes"},
    )
    results = classic.run(request)
    assert [(r.databaseUid, r.code, r.ok) for r in results] == [
        (EMEA, "ok", True),
        (AMER, "engine_error", False),
    ]
    assert "no license" in results[1].message
    (received,) = simulator.classic.runs
    assert (received.request_uid, received.params, received.device_uids) == (
        "portal-run-1-batch-1-1",
        {"Force": "yes"},
        [DEVICE],
    )
    (recorded,) = [r for r in simulator.state.requests if r.path == RUN_PATH]
    assert recorded.headers["Authorization"] == "[redacted]"
    assert recorded.body["timeoutSeconds"] == 60  # the web interface's default, sent


def test_the_configured_engines_are_targeted_and_an_unknown_one_is_excluded(simulator: Any):
    client = ClassicClient(config(simulator, engines=(EMEA, "f" * 32)))
    results = client.run(client.request(remote_action_uid=ACTION, device_uids=[DEVICE]))
    assert [(r.databaseUid, r.code) for r in results] == [(EMEA, "ok"), ("f" * 32, "excluded")]


def test_the_read_timeout_is_sized_from_timeout_seconds(simulator: Any):
    client = ClassicClient(config(simulator, timeout_seconds=45, read_margin=10))
    request = client.request(remote_action_uid=ACTION, device_uids=[DEVICE])
    assert request.timeoutSeconds == 45 and client.read_timeout(request) == 55
    bare = RemoteActionRequest(remoteActionUid=ACTION, deviceUids=[DEVICE])
    assert client.read_timeout(bare) == 70  # the server's own default of 60 s, plus the margin


def test_a_read_timeout_is_outcome_unknown_and_the_client_never_sends_again(simulator: Any):
    simulator.classic.configure({"delay_seconds": 3})
    client = ClassicClient(config(simulator, timeout_seconds=1, read_margin=0.5))
    with pytest.raises(RemoteActionOutcomeUnknown) as caught:
        client.run(client.request(remote_action_uid=ACTION, device_uids=[DEVICE]))
    assert isinstance(caught.value, OutcomeUnknown)
    assert "no answer within 1.5 s" in caught.value.message
    assert "may have been triggered" in caught.value.message
    assert runs_received(simulator) == 1


def test_wrong_credentials_fail_clearly_without_showing_the_password(simulator: Any):
    client = ClassicClient(config(simulator, password=SecretStr("wrong-password-123")))
    with pytest.raises(Unauthorized) as caught:
        client.run(client.request(remote_action_uid=ACTION, device_uids=[DEVICE]))
    message = caught.value.message
    assert "user name or password" in message and "NEXTHINK_CLASSIC_PASSWORD" in message
    assert "wrong-password-123" not in message and "wrong-password-123" not in repr(client.config)
    assert simulator.classic.runs == []


def test_no_web_interface_listening_is_unavailable():
    client = ClassicClient(
        ClassicConfig(url="http://127.0.0.1:9", user="u", password=SecretStr("p"))
    )
    with pytest.raises(Unavailable):
        client.run(client.request(remote_action_uid=ACTION, device_uids=[DEVICE]))


def test_a_get_answers_404_as_documented(simulator: Any):
    assert requests.get(simulator.base_url + RUN_PATH, timeout=5).status_code == 404


def body(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


JSON = "application/json"
UNKNOWN_ACTION = "11111111-1111-1111-1111-111111111111"
# Each documented code, provoked the way the web interface would answer it.
NATURAL: list[tuple[str, bytes, str, Any]] = [
    ("CONTENT_TYPE", body(remoteActionUid="x"), "text/plain", None),
    ("ENCODING", '{"remoteActionUid": "é"}'.encode("latin-1"), JSON, None),
    ("ENCODING", b"{}", "application/json; charset=iso-8859-1", None),
    ("INVALID_REQUEST_JSON", b"{not json", JSON, None),
    ("INVALID_REQUEST_CONTENT", b'["a list"]', JSON, None),
    ("INVALID_REQUEST_CONTENT", body(remoteActionUid=7), JSON, None),
    ("NO_REMOTE_ACTION_UID", body(deviceUids=[DEVICE]), JSON, None),
    ("INVALID_ACTION_UID", body(remoteActionUid="not-a-uid", deviceUids=["x"]), JSON, None),
    ("NO_DEVICES", body(remoteActionUid=ACTION, deviceUids=[]), JSON, None),
    ("INVALID_DEVICE_UID", body(remoteActionUid=ACTION, deviceUids=["PC-1"]), JSON, None),
    (
        "TOO_MANY_DEVICES",
        body(remoteActionUid=ACTION, deviceUids=[DEVICE, "e" * 32]),
        JSON,
        {"max_devices": 1},
    ),
    (
        "UNKNOWN_OR_DISABLED_REMOTE_ACTION",
        body(remoteActionUid=DISABLED, deviceUids=[DEVICE]),
        JSON,
        None,
    ),
    (
        "UNKNOWN_OR_DISABLED_REMOTE_ACTION",
        body(remoteActionUid=UNKNOWN_ACTION, deviceUids=[DEVICE]),
        JSON,
        None,
    ),
    ("NO_MANUAL_EXECUTION", body(remoteActionUid=NO_MANUAL, deviceUids=[DEVICE]), JSON, None),
    (
        "NO_PERMISSION",
        body(remoteActionUid=ACTION, deviceUids=[DEVICE]),
        JSON,
        {"api_allowed": False},
    ),
    (
        "NO_ENGINES_TO_TARGET",
        body(remoteActionUid=ACTION, deviceUids=[DEVICE]),
        JSON,
        {"engines": []},
    ),
]


@pytest.mark.parametrize(("code", "sent", "content_type", "setup"), NATURAL)
def test_each_documented_refusal_arises_from_the_request_and_is_mapped(
    simulator: Any, code: str, sent: bytes, content_type: str, setup: Any
):
    if setup:
        simulator.classic.configure(setup)
    response = post(simulator, sent, content_type)
    assert response.status_code == ERROR_STATUS[code]
    assert response.json()["code"] == code and response.json()["error"]
    error = error_for(response)
    assert isinstance(error, RemoteActionRefused) and error.code == code
    assert isinstance(error, TooManyDevices) == (code == "TOO_MANY_DEVICES")
    assert ERROR_MESSAGES[code] in error.message and "Nothing ran" in error.message
    assert simulator.classic.runs == []


@pytest.mark.parametrize("code", sorted(ERROR_STATUS))
def test_every_documented_code_reaches_the_client_as_a_typed_error(
    classic: ClassicClient, simulator: Any, code: str
):
    simulator.classic.configure({"next_errors": [code]})
    with pytest.raises((RemoteActionRefused, OutcomeUnknown)) as caught:
        classic.run(classic.request(remote_action_uid=ACTION, device_uids=[DEVICE]))
    error = caught.value
    if code == "INTERNAL_ERROR":
        # A 500 may come after the Engines were asked: never "nothing ran".
        assert isinstance(error, RemoteActionOutcomeUnknown) and "INTERNAL_ERROR" in error.message
    else:
        assert isinstance(error, RemoteActionRefused)
        assert (error.code, error.status) == (code, ERROR_STATUS[code])
        assert error.message.startswith(ERROR_MESSAGES[code])
    assert runs_received(simulator) == 1


def test_every_engine_code_has_a_meaning_for_people():
    assert set(ENGINE_CODE_MEANINGS) == {c.value for c in EngineCode}
    assert all(len(text) > 20 for text in ENGINE_CODE_MEANINGS.values())


def test_the_control_endpoint_reads_and_changes_the_classic_web_interface(simulator: Any):
    url = simulator.base_url + "/_simulator/classic"
    changed = requests.post(
        url,
        json={"engine_answers": {EMEA: "not_connected"}, "max_devices": 5, "delay_seconds": 0},
        headers=CONTROL_HEADERS,
        timeout=5,
    )
    assert changed.status_code == 200
    state = requests.get(url, headers=CONTROL_HEADERS, timeout=5).json()
    assert state["max_devices"] == 5 and "password" not in state
    assert {e["databaseUid"]: e["answer"] for e in state["engines"]}[EMEA] == "not_connected"
    refused = requests.post(
        url, json={"engine_answers": {EMEA: "maybe"}}, headers=CONTROL_HEADERS, timeout=5
    )
    assert refused.status_code == 400 and "bad code" in refused.json()["details"]
    assert (
        requests.post(url, json={"colour": 1}, headers=CONTROL_HEADERS, timeout=5).status_code
        == 400
    )
    unauthorised = requests.get(url, timeout=5)
    assert unauthorised.status_code == 401
