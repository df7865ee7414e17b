"""The Nexthink simulator over real HTTP, driven with plain `requests` (not the portal client)."""

from __future__ import annotations

import io
import threading
import time
from typing import Any

import pytest
import requests

from tests.nexthink_fixtures import CONTROL_HEADERS
from workflows_app.simulator import (
    SAVED_QUERIES,
    Simulator,
    default_inventory,
    default_workflows,
    serve_forever,
)
from workflows_app.simulator.replies import Incoming
from workflows_app.simulator.spec import find_operation, validate_request
from workflows_app.simulator.validation import request_errors

DEPENDENCIES = ("USER", "DEVICE", "USER_AND_DEVICE", "NONE")
TRIGGERS = ("API", "MANUAL", "MANUAL_MULTIPLE", "SCHEDULER")
INVENTORY = default_inventory()
EMPLOYEE_DEVICES = INVENTORY.devices_of("employee@example.com")
EMPLOYEE = INVENTORY.user_by_upn("employee@example.com")
EXECUTION_KEYS = {
    "request_id",
    "execution_id",
    "request_time",
    "workflow.name",
    "workflow.nql_id",
    "device.name",
    "status",
    "status_details",
    "outcome",
    "outcome_details",
}


def get_token(sim: Simulator) -> str:
    answer = requests.post(
        sim.token_url,
        auth=(sim.client_id, sim.client_secret),
        data={"grant_type": "client_credentials", "scope": "service:integration"},
        timeout=5,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


class Api:
    """A tiny authenticated caller for the simulator."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.headers = {"Authorization": f"Bearer {get_token(sim)}", "Source": "sim-tests"}

    def post(self, path: str, body: Any, **kw: Any) -> requests.Response:
        return requests.post(
            self.sim.base_url + path,
            json=body,
            headers={**self.headers, **kw.pop("headers", {})},
            timeout=kw.pop("timeout", 5),
            **kw,
        )

    def get(self, path: str, **params: Any) -> requests.Response:
        return requests.get(
            self.sim.base_url + path, params=params, headers=self.headers, timeout=5
        )

    def execute_v2(
        self,
        workflow: str,
        devices: list[Any] | None = None,
        users: list[Any] | None = None,
        timeout: float = 5,
        **extra: Any,
    ) -> requests.Response:
        return self.post(
            "/api/v2/workflows/execute",
            {"workflowId": workflow, "devices": devices or [], "users": users or [], **extra},
            timeout=timeout,
        )

    def nql(self, query_id: str, version: str = "v2", **parameters: str) -> requests.Response:
        return self.post(
            f"/api/{version}/nql/execute", {"queryId": query_id, "parameters": parameters}
        )

    def statuses(self, request_uuid: str) -> list[str]:
        answer = self.nql("#portal_workflow_executions", request_id=request_uuid)
        return [row["status"] for row in answer.json()["data"]]


@pytest.fixture
def api(simulator: Simulator) -> Api:
    return Api(simulator)


def control(sim: Simulator, name: str, body: Any = None) -> requests.Response:
    return requests.post(
        f"{sim.base_url}/_simulator/{name}", json=body, headers=CONTROL_HEADERS, timeout=5
    )


# --- OAuth ------------------------------------------------------------------------------------
def test_token_is_issued_for_client_credentials(simulator: Simulator) -> None:
    answer = requests.post(
        simulator.token_url,
        auth=("portal-demo", "demo-secret"),
        data={"grant_type": "client_credentials"},
        timeout=5,
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900 and body["access_token"]
    assert simulator.state.token_requests == 1


@pytest.mark.parametrize("auth", [("portal-demo", "wrong"), ("someone", "demo-secret"), None])
def test_token_refuses_bad_client_credentials(simulator: Simulator, auth: Any) -> None:
    answer = requests.post(
        simulator.token_url, auth=auth, data={"grant_type": "client_credentials"}, timeout=5
    )
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"
    assert simulator.state.token_requests == 1 and simulator.state.tokens_issued == 0


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"grant_type": "password"}, "unsupported_grant_type"),
        ({"grant_type": "client_credentials", "scope": "admin"}, "invalid_scope"),
    ],
)
def test_token_refuses_bad_grant_or_scope(
    simulator: Simulator, data: dict[str, str], error: str
) -> None:
    answer = requests.post(
        simulator.token_url, auth=("portal-demo", "demo-secret"), data=data, timeout=5
    )
    assert answer.status_code == 400 and answer.json()["error"] == error


def test_expired_tokens_get_401(api: Api, simulator: Simulator) -> None:
    assert api.get("/api/v1/workflows/details", nqlId="#flush_dns_cache").status_code == 200
    assert control(simulator, "expire-tokens").json() == {"expired": 1}
    answer = api.get("/api/v1/workflows/details", nqlId="#flush_dns_cache")
    assert answer.status_code == 401 and answer.content == b""


def test_tokens_expire_after_their_ttl(simulator: Simulator) -> None:
    simulator.configure(token_ttl=0.3)
    api = Api(simulator)
    assert api.get("/api/v1/workflows/details", nqlId="#flush_dns_cache").status_code == 200
    time.sleep(0.4)
    assert api.get("/api/v1/workflows/details", nqlId="#flush_dns_cache").status_code == 401


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token", "Basic abc"])
def test_api_refuses_missing_or_unknown_token(
    simulator: Simulator, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    answer = requests.post(
        simulator.base_url + "/api/v2/workflows/execute",
        headers=headers,
        json={"workflowId": "#flush_dns_cache", "devices": [{"name": "EMP-LT-0142"}], "users": []},
        timeout=5,
    )
    assert answer.status_code == 401
    assert simulator.state.executions == []


# --- execute ----------------------------------------------------------------------------------
def test_execute_v2_resolves_names_and_records_unknown_targets(
    api: Api, simulator: Simulator
) -> None:
    answer = api.execute_v2(
        "#flush_dns_cache",
        devices=[{"name": "EMP-LT-0142"}, {"name": "NO-SUCH-PC"}],
        params={"unused": "x"},
    )
    assert answer.status_code == 200
    body = answer.json()
    assert len(body["executionsUuids"]) == 2 and body["requestUuid"]
    [record] = simulator.state.executions
    assert record.request_uuid == body["requestUuid"]
    assert record.execution_uuids == body["executionsUuids"]
    assert (record.workflow_id, record.version, record.source_header) == (
        "#flush_dns_cache",
        "v2",
        "sim-tests",
    )
    assert record.params == {"unused": "x"}
    assert record.unresolved == [{"name": "NO-SUCH-PC"}]


def test_execute_v1_takes_collector_uuids_and_sids(api: Api, simulator: Simulator) -> None:
    device = EMPLOYEE_DEVICES[0]
    answer = api.post(
        "/api/v1/workflows/execute",
        {
            "workflowId": "#repair_outlook_profile",
            "devices": [device.collector_uid],
            "users": [EMPLOYEE.sid],
        },
    )
    assert answer.status_code == 200 and len(answer.json()["executionsUuids"]) == 2
    [record] = simulator.state.executions
    assert record.version == "v1" and record.unresolved == []
    rows = api.nql("#portal_execution_status", request_id=record.request_uuid).json()["data"]
    # A user target shows the user's most recently seen device.
    assert [r["device.name"] for r in rows] == [device.name, EMPLOYEE_DEVICES[0].name]


def test_execute_v2_picks_the_most_recently_seen_of_duplicate_names(
    api: Api, simulator: Simulator
) -> None:
    api.execute_v2("#flush_dns_cache", devices=[{"name": "shared-pc-01"}])
    execution = next(iter(simulator.state.target_executions.values()))
    newest = max(
        (d for d in INVENTORY.devices if d.name == "SHARED-PC-01"), key=lambda d: d.last_seen
    )
    assert execution.target.resolved and execution.target.device_name == newest.name
    assert INVENTORY.resolve_device(name="SHARED-PC-01") == newest


def test_execute_v2_resolves_upns(api: Api, simulator: Simulator) -> None:
    answer = api.execute_v2(
        "#unlock_ad_account",
        users=[{"upn": "Employee@Example.com"}],
        params={"Reason": "locked out"},
    )
    assert answer.status_code == 200
    assert simulator.state.executions[0].unresolved == []


@pytest.mark.parametrize(
    ("workflow", "status", "code"),
    [
        ("#no_such_workflow", 400, "WORKFLOW_NOT_FOUND"),
        ("#disable_usb_storage", 400, "WORKFLOW_INACTIVE"),
        ("#legacy_vpn_fix", 400, "WORKFLOW_INACTIVE"),
        ("#install_pending_windows_updates", 403, "API_TRIGGER_DISABLED"),
    ],
)
def test_execute_refuses_workflows_that_cannot_run(
    api: Api, simulator: Simulator, workflow: str, status: int, code: str
) -> None:
    answer = api.execute_v2(workflow, devices=[{"name": "EMP-LT-0142"}])
    assert answer.status_code == status and answer.json()["code"] == code
    assert answer.json()["details"]
    assert simulator.state.executions == []


@pytest.mark.parametrize(
    ("workflow", "devices", "users"),
    [
        ("#clear_teams_cache", [], [{"upn": "employee@example.com"}]),
        ("#clear_teams_cache", [{"name": "EMP-LT-0142"}], [{"upn": "employee@example.com"}]),
        ("#unlock_ad_account", [{"name": "EMP-LT-0142"}], []),
    ],
)
def test_execute_refuses_targets_that_do_not_fit_the_dependency(
    api: Api, workflow: str, devices: list[Any], users: list[Any]
) -> None:
    answer = api.execute_v2(workflow, devices=devices, users=users)
    assert answer.status_code == 400 and answer.json()["code"] == "INVALID_TARGETS"


# --- spec validation --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "body", "fragment"),
    [
        (
            "/api/v2/workflows/execute",
            {"workflowId": "#flush_dns_cache", "devices": [{"name": "A"}], "users": [], "extra": 1},
            "'extra' was unexpected",
        ),
        (
            "/api/v2/workflows/execute",
            {
                "workflowId": "#flush_dns_cache",
                "devices": [{"name": "A", "hostname": "A"}],
                "users": [],
            },
            "'hostname' was unexpected",
        ),
        (
            "/api/v2/workflows/execute",
            {"workflowId": "#flush_dns_cache", "devices": [{}], "users": []},
            "at least one identifier",
        ),
        (
            "/api/v2/workflows/execute",
            {"workflowId": "#unlock_ad_account", "devices": [], "users": [{"upn": "not-an-email"}]},
            "does not match",
        ),
        (
            "/api/v1/workflows/execute",
            {"workflowId": "#flush_dns_cache", "devices": ["EMP-LT-0142"], "users": []},
            "does not match",
        ),
        (
            "/api/v1/workflows/execute",
            {"workflowId": "#unlock_ad_account", "devices": [], "users": ["S-1"]},
            "does not match",
        ),
        (
            "/api/v1/workflows/execute",
            {
                "workflowId": "#flush_dns_cache",
                "devices": [EMPLOYEE_DEVICES[0].collector_uid + "\n"],
                "users": [],
            },
            "does not match",
        ),
        (
            "/api/v1/workflows/execute",
            {"workflowId": "#flush_dns_cache", "devices": [], "users": []},
            "at least one of 'devices' or 'users'",
        ),
        (
            "/api/v1/workflows/execute",
            {"workflowId": "#flush_dns_cache", "devices": [EMPLOYEE_DEVICES[0].collector_uid]},
            "'users' is a required property",
        ),
        (
            "/api/v2/workflows/execute",
            {
                "workflowId": "#flush_dns_cache",
                "devices": [{"name": "A"}],
                "users": [],
                "params": {"n": 1},
            },
            "params.n: 1 is not of type 'string'",
        ),
        (
            "/api/v2/workflows/execute",
            {
                "workflowId": "#flush_dns_cache",
                "devices": [{"name": "A"}],
                "users": [],
                "params": None,
            },
            "params: None is not of type 'object'",
        ),
    ],
)
def test_execute_refuses_requests_that_break_the_spec(
    api: Api, simulator: Simulator, path: str, body: dict[str, Any], fragment: str
) -> None:
    answer = api.post(path, body)
    assert answer.status_code == 400
    assert answer.json()["code"] == "INVALID_REQUEST"
    assert fragment in answer.json()["details"]
    assert simulator.state.executions == []
    assert any(fragment in e for e in simulator.state.requests[-1].spec_errors)


def test_execute_refuses_more_than_10000_targets(api: Api, simulator: Simulator) -> None:
    devices = [{"name": f"PC-{i}"} for i in range(10_001)]
    answer = api.execute_v2("#flush_dns_cache", devices=devices)
    assert answer.status_code == 400
    assert "devices: 10001 items, at most 10000 allowed" in answer.json()["details"]


def test_execute_accepts_exactly_10000_targets(api: Api, simulator: Simulator) -> None:
    answer = api.execute_v2(
        "#flush_dns_cache", devices=[{"name": f"PC-{i}"} for i in range(10_000)]
    )
    assert answer.status_code == 200 and len(answer.json()["executionsUuids"]) == 10_000


def test_execute_refuses_malformed_json_and_other_media_types(api: Api) -> None:
    answer = api.post(
        "/api/v2/workflows/execute",
        None,
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 400 and "not valid JSON" in answer.json()["details"]
    answer = requests.post(
        api.sim.base_url + "/api/v2/workflows/execute",
        headers=api.headers,
        data={"workflowId": "#flush_dns_cache"},
        timeout=5,
    )
    assert answer.status_code == 415


def test_unknown_paths_and_methods(api: Api) -> None:
    assert api.get("/api/v1/nothing").status_code == 404
    answer = api.get("/api/v2/workflows/execute")
    assert answer.status_code == 405 and answer.headers["Allow"] == "POST"


def test_requests_are_recorded_with_authorization_redacted(api: Api, simulator: Simulator) -> None:
    api.execute_v2("#flush_dns_cache", devices=[{"name": "EMP-LT-0142"}])
    token_request, execute_request = simulator.state.requests
    assert token_request.path == "/oauth2/default/v1/token"
    assert token_request.headers["Authorization"] == "[redacted]"
    assert execute_request.headers["Authorization"] == "[redacted]"
    assert execute_request.body["workflowId"] == "#flush_dns_cache"
    assert execute_request.status == 200 and execute_request.spec_errors == []


def tenant_errors(
    method: str, path: str, headers: dict[str, str], query: dict[str, list[str]]
) -> list[str]:
    found = find_operation(method, path)
    assert found is not None
    op, path_params = found
    return request_errors(op, Incoming(method, path, query, headers, b"", path_params=path_params))


def test_validation_module_matches_the_spec_rules() -> None:
    nql = "/api/v2/nql/execute"
    assert validate_request("POST", nql, {"queryId": "#portal_user_devices"}) == []
    assert validate_request("POST", nql, {"queryId": "#A"}) != []
    assert validate_request("POST", nql, {"queryId": "#ok", "limit": 3}) != []
    assert (
        tenant_errors(
            "GET",
            "/api/v1/workflows",
            {"Authorization": "Bearer x"},
            {"dependency": ["DEVICE"], "triggerMethod": ["API"]},
        )
        == []
    )
    assert tenant_errors("GET", "/api/v1/workflows", {}, {"dependency": ["DEVICE"]}) == [
        "header parameter Authorization: a Bearer token is required",
        "query parameter triggerMethod is required",
    ]


# --- list and details -------------------------------------------------------------------------
@pytest.mark.parametrize("dependency", DEPENDENCIES)
@pytest.mark.parametrize("trigger", TRIGGERS)
@pytest.mark.parametrize("only_active", [None, "true", "false"])
def test_list_filters_exactly_by_dependency_trigger_and_status(
    api: Api, dependency: str, trigger: str, only_active: str | None
) -> None:
    params = {"dependency": dependency, "triggerMethod": trigger}
    if only_active is not None:
        params["fetchOnlyActiveWorkflows"] = only_active
    answer = api.get("/api/v1/workflows", **params)
    assert answer.status_code == 200
    expected = [
        w.id
        for w in default_workflows()
        if w.dependency == dependency
        and trigger in w.trigger_methods
        and (only_active != "true" or w.status == "ACTIVE")
    ]
    assert [w["id"] for w in answer.json()] == expected


def test_catalogue_covers_every_dependency_and_trigger() -> None:
    workflows = default_workflows()
    assert len(workflows) >= 14
    assert {w.dependency for w in workflows} == set(DEPENDENCIES)
    assert set().union(*(w.trigger_methods for w in workflows)) == set(TRIGGERS)
    assert any(w.status == "INACTIVE" for w in workflows)
    assert any(not w.api_enabled for w in workflows)
    assert sum(w.waits_for_event for w in workflows) >= 2
    assert any(w.parameters for w in workflows)


def test_workflow_payload_shapes(api: Api, simulator: Simulator) -> None:
    [flags] = api.get("/api/v1/workflows/details", nqlId="#clear_teams_cache").json()
    assert flags["triggerMethods"] == {
        "apiEnabled": True,
        "manualEnabled": True,
        "manualMultipleEnabled": False,
        "schedulerEnabled": False,
    }
    assert flags["versions"][-1] == {
        "versionNumber": 3,
        "isActive": True,
        "lastUpdateTime": flags["lastUpdateTime"],
    }
    assert {
        "id",
        "uuid",
        "name",
        "description",
        "status",
        "lastUpdateTime",
        "dependency",
        "triggerMethods",
        "versions",
    } <= set(flags)
    simulator.configure(trigger_shape="list")
    [listed] = api.get("/api/v1/workflows/details", nqlId="#clear_teams_cache").json()
    assert listed["triggerMethods"] == ["API", "MANUAL"]


def test_details_answers_an_array_and_refuses_the_wrong_parameter_name(api: Api) -> None:
    assert api.get("/api/v1/workflows/details", nqlId="#nope").json() == []
    answer = api.get("/api/v1/workflows/details", **{"nql-id": "#clear_teams_cache"})
    assert answer.status_code == 400 and "nqlId is required" in answer.json()["details"]


@pytest.mark.parametrize(
    "params",
    [
        {"dependency": "DEVICE"},
        {"dependency": "device", "triggerMethod": "API"},
        {"dependency": "DEVICE", "triggerMethod": "API", "fetchOnlyActiveWorkflows": "yes"},
    ],
)
def test_list_refuses_bad_query_parameters(api: Api, params: dict[str, str]) -> None:
    answer = api.get("/api/v1/workflows", **params)
    assert answer.status_code == 400 and answer.json()["code"] == "INVALID_REQUEST"


def test_removed_workflows_disappear_until_reset(api: Api, simulator: Simulator) -> None:
    assert control(simulator, "workflows/%23flush_dns_cache/remove").status_code == 200
    assert api.get("/api/v1/workflows/details", nqlId="#flush_dns_cache").json() == []
    answer = api.execute_v2("#flush_dns_cache", devices=[{"name": "EMP-LT-0142"}])
    assert answer.json()["code"] == "WORKFLOW_NOT_FOUND"
    assert control(simulator, "workflows/flush_dns_cache/remove").status_code == 404
    assert control(simulator, "workflows/flush_dns_cache/restore").status_code == 200
    assert len(api.get("/api/v1/workflows/details", nqlId="#flush_dns_cache").json()) == 1
    simulator.catalogue.remove("#clear_teams_cache")
    simulator.reset()
    assert simulator.catalogue.get("#clear_teams_cache") is not None


# --- wait for event ---------------------------------------------------------------------------
def test_wait_for_event_workflow_waits_until_triggered(api: Api, simulator: Simulator) -> None:
    answer = api.execute_v2("#reset_mfa", users=[{"upn": "employee@example.com"}])
    request_uuid = answer.json()["requestUuid"]
    [execution_uuid] = answer.json()["executionsUuids"]
    workflow_uuid = simulator.catalogue.get("#reset_mfa").uuid
    path = f"/api/v1/workflows/workflows/{workflow_uuid}/execution/{execution_uuid}/trigger"
    early = api.post(path, {})
    assert early.status_code == 400 and early.json()["code"] == "EXECUTION_NOT_WAITING"
    assert "pending" in early.json()["details"]
    control(simulator, "advance")
    assert api.statuses(request_uuid) == ["waiting_for_event"]
    answer = api.post(path, {"parameters": {"approvedBy": "helpdesk@example.com"}})
    assert answer.status_code == 200
    assert isinstance(answer.json(), list) and answer.json()[0]["requestUuid"]
    assert api.statuses(request_uuid) == ["in_progress"]
    execution = simulator.state.find_execution(execution_uuid)
    assert execution is not None
    assert execution.trigger_params == {"approvedBy": "helpdesk@example.com"}
    control(simulator, "advance")
    assert api.statuses(request_uuid) == ["success"]
    again = api.post(path, {})
    assert again.status_code == 400 and again.json()["code"] == "EXECUTION_NOT_WAITING"


def test_advance_can_force_waiting_executions_to_finish(api: Api, simulator: Simulator) -> None:
    answer = api.execute_v2("#reset_mfa", users=[{"upn": "employee@example.com"}])
    assert control(simulator, "advance").json()["still_waiting"] == 1
    assert control(simulator, "advance", {"include_waiting": True}).json()["still_waiting"] == 0
    assert api.statuses(answer.json()["requestUuid"]) == ["success"]


def test_trigger_refuses_unknown_ids(api: Api, simulator: Simulator) -> None:
    workflow_uuid = simulator.catalogue.get("#reset_mfa").uuid
    unknown = "00000000-0000-4000-8000-000000000000"
    base = "/api/v1/workflows/workflows"
    answer = api.post(f"{base}/{unknown}/execution/{unknown}/trigger", {})
    assert answer.status_code == 404 and answer.json()["code"] == "WORKFLOW_NOT_FOUND"
    answer = api.post(f"{base}/{workflow_uuid}/execution/{unknown}/trigger", {})
    assert answer.status_code == 404 and answer.json()["code"] == "EXECUTION_NOT_FOUND"
    answer = api.post(f"{base}/not-a-uuid/execution/{unknown}/trigger", {})
    assert answer.status_code == 400 and answer.json()["code"] == "INVALID_REQUEST"


# --- execution progress -----------------------------------------------------------------------
def test_executions_finish_after_execution_seconds(api: Api, simulator: Simulator) -> None:
    simulator.configure(execution_seconds=0.3)
    answer = api.execute_v2(
        "#flush_dns_cache",
        devices=[{"name": "EMP-LT-0142"}, {"name": "FAIL-LT-0001"}, {"name": "GHOST-PC"}],
    )
    request_uuid = answer.json()["requestUuid"]
    assert set(api.statuses(request_uuid)) <= {"pending", "in_progress"}
    time.sleep(0.4)
    rows = api.nql("#portal_execution_status", request_id=request_uuid).json()["data"]
    assert [r["status"] for r in rows] == ["success", "failure", "failure"]
    assert rows[2]["status_details"] == "Target not found"
    assert all(set(r) == EXECUTION_KEYS for r in rows)
    assert [r["execution_id"] for r in rows] == answer.json()["executionsUuids"]


def test_user_targets_containing_fail_fail(api: Api, simulator: Simulator) -> None:
    answer = api.execute_v2("#unlock_ad_account", users=[{"upn": "fail.test@example.com"}])
    control(simulator, "advance")
    assert api.statuses(answer.json()["requestUuid"]) == ["failure"]


# --- NQL --------------------------------------------------------------------------------------
def test_user_devices_query_lists_devices_most_recent_first(api: Api) -> None:
    answer = api.nql("#portal_user_devices", upn="employee@example.com")
    body = answer.json()
    assert answer.status_code == 200 and body["rows"] == 3
    assert body["headers"] == [
        "device.name",
        "device.uid",
        "device.collector.uid",
        "device.last_seen",
    ]
    assert [r["device.name"] for r in body["data"]] == [d.name for d in EMPLOYEE_DEVICES]
    seen = [r["device.last_seen"] for r in body["data"]]
    assert seen == sorted(seen, reverse=True) and len(set(seen)) == 3
    assert set(body["executionDateTime"]) == {"year", "month", "day", "hour", "minute", "second"}
    assert '"employee@example.com"' in body["executedQuery"]
    for upn in ("helpdesk@example.com", "admin@example.com"):
        assert api.nql("#portal_user_devices", upn=upn).json()["rows"] == 1
    assert api.nql("#portal_user_devices", upn="nobody@example.com").json()["data"] == []


def test_nql_v1_answers_rows_as_arrays_and_csv_on_request(api: Api, simulator: Simulator) -> None:
    body = api.nql("#portal_user_devices", version="v1", upn="admin@example.com").json()
    assert body["data"] == [
        [d.name, d.uid, d.collector_uid, body["data"][0][3]]
        for d in INVENTORY.devices_of("admin@example.com")
    ]
    answer = api.post(
        "/api/v2/nql/execute",
        {"queryId": "#portal_user_devices", "parameters": {"upn": "admin@example.com"}},
        headers={"Accept": "text/csv"},
    )
    assert answer.headers["Content-Type"] == "text/csv"
    assert (
        answer.text.splitlines()[0] == "device.name,device.uid,device.collector.uid,"
        "device.last_seen"
    )
    simulator.configure(nql_datetime_shape="iso")
    stamp = api.nql("#portal_user_devices", upn="admin@example.com").json()["executionDateTime"]
    assert isinstance(stamp, str) and stamp.endswith("Z")


def test_execution_by_id_query(api: Api) -> None:
    answer = api.execute_v2("#flush_dns_cache", devices=[{"name": "HD-LT-0001"}])
    [execution_id] = answer.json()["executionsUuids"]
    [row] = api.nql("#portal_execution_by_id", execution_id=execution_id).json()["data"]
    assert row["execution_id"] == execution_id and row["device.name"] == "HD-LT-0001"
    assert row["workflow.nql_id"] == "#flush_dns_cache" and set(row) == EXECUTION_KEYS
    assert api.nql("#portal_execution_by_id", execution_id="nope").json()["data"] == []


def test_nql_refuses_unknown_queries_and_missing_parameters(api: Api) -> None:
    answer = api.nql("#no_such_query")
    assert answer.status_code == 404 and answer.json()["code"] == "QUERY_NOT_FOUND"
    answer = api.nql("#portal_user_devices")
    assert answer.status_code == 400 and answer.json()["code"] == "INVALID_PARAMETERS"
    answer = api.post("/api/v2/nql/execute", {"queryId": "portal_user_devices"})
    assert answer.status_code == 400 and answer.json()["code"] == "INVALID_REQUEST"
    answer = api.post("/api/v2/nql/execute", {"queryId": "#portal_user_devices", "limit": 5})
    assert answer.status_code == 400 and "'limit' was unexpected" in answer.json()["details"]
    assert set(SAVED_QUERIES) == {
        "#portal_user_devices",
        "#portal_workflow_executions",
        "#portal_recent_workflow_executions",
        "#portal_execution_status",
        "#portal_execution_by_id",
    }


def test_nql_answers_at_most_1000_rows(api: Api) -> None:
    answer = api.execute_v2("#flush_dns_cache", devices=[{"name": f"PC-{i}"} for i in range(1500)])
    body = api.nql("#portal_execution_status", request_id=answer.json()["requestUuid"]).json()
    assert body["rows"] == 1000 and len(body["data"]) == 1000


# --- faults -----------------------------------------------------------------------------------
def test_latency_fault_delays_answers(api: Api, simulator: Simulator) -> None:
    simulator.faults.configure(latency=0.3)
    started = time.monotonic()
    assert api.get("/api/v1/workflows/details", nqlId="#flush_dns_cache").status_code == 200
    assert time.monotonic() - started >= 0.3


def test_error_rate_fault_is_seeded(api: Api, simulator: Simulator) -> None:
    def run() -> list[int]:
        simulator.faults.configure(error_rate=0.5, seed=7)
        return [
            api.get("/api/v1/workflows/details", nqlId="#flush_dns_cache").status_code
            for _ in range(12)
        ]

    first = run()
    assert set(first) == {200, 503}
    assert run() == first
    simulator.faults.configure(error_rate=1.0)
    answer = api.get("/api/v1/workflows/details", nqlId="#flush_dns_cache")
    assert answer.status_code == 503 and answer.json()["code"] == "SERVICE_UNAVAILABLE"


def test_rate_limit_fault_answers_429_with_retry_after(api: Api, simulator: Simulator) -> None:
    simulator.faults.configure(rate_limit_count=2, rate_limit_retry_after=3)
    answers = [
        api.execute_v2("#flush_dns_cache", devices=[{"name": "EMP-LT-0142"}]) for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [429, 429, 200]
    assert answers[0].headers["Retry-After"] == "3"
    assert len(simulator.state.executions) == 1
    assert [r.fault for r in simulator.state.requests[-3:]] == ["rate_limit", "rate_limit", None]


def test_fail_next_answers_the_listed_statuses_in_order(api: Api, simulator: Simulator) -> None:
    control(simulator, "faults", {"fail_next": [500, 502, 429, 401]})
    answers = [api.get("/api/v1/workflows/details", nqlId="#flush_dns_cache") for _ in range(5)]
    assert [a.status_code for a in answers] == [500, 502, 429, 401, 200]
    assert answers[1].headers["Content-Type"] == "text/html"
    assert "Retry-After" in answers[2].headers


def test_timeout_after_accept_records_the_execution_then_hangs(
    api: Api, simulator: Simulator
) -> None:
    simulator.faults.configure(timeout_after_accept_count=1, hang_seconds=3)
    with pytest.raises(requests.ReadTimeout):
        api.execute_v2("#flush_dns_cache", devices=[{"name": "EMP-LT-0142"}], timeout=0.5)
    assert len(simulator.state.executions) == 1
    assert simulator.state.requests[-1].fault == "timeout_after_accept"
    answer = api.execute_v2("#flush_dns_cache", devices=[{"name": "EMP-LT-0142"}])
    assert answer.status_code == 200 and len(simulator.state.executions) == 2


def test_timeout_fault_only_hangs_accepted_executes(api: Api, simulator: Simulator) -> None:
    simulator.faults.configure(timeout_after_accept_count=1, hang_seconds=3)
    refused = api.execute_v2("#no_such_workflow", devices=[{"name": "EMP-LT-0142"}], timeout=1)
    assert refused.status_code == 400
    assert simulator.faults.config.timeout_after_accept_count == 1


def test_faults_follow_the_paths_filter_and_spare_the_token_endpoint(
    simulator: Simulator,
) -> None:
    control(simulator, "faults", {"error_rate": 1.0})
    api = Api(simulator)  # the token endpoint is not faulted by default
    assert api.get("/api/v1/workflows/details", nqlId="#x").status_code == 503
    control(simulator, "faults", {"paths": ["/api/v2/nql/"]})
    assert api.get("/api/v1/workflows/details", nqlId="#x").status_code == 200
    assert api.nql("#portal_user_devices", upn="admin@example.com").status_code == 503
    control(simulator, "faults", {"paths": ["/oauth2/"]})
    answer = requests.post(
        simulator.token_url,
        auth=("portal-demo", "demo-secret"),
        data={"grant_type": "client_credentials"},
        timeout=5,
    )
    assert answer.status_code == 503


def test_fault_endpoint_validates_and_clears(simulator: Simulator) -> None:
    assert control(simulator, "faults", {"nonsense": 1}).status_code == 400
    assert control(simulator, "faults", {"error_rate": 2}).status_code == 400
    assert control(simulator, "faults", {"latency": 0.1}).json()["latency"] == 0.1
    cleared = control(simulator, "faults", {"clear": True}).json()
    assert cleared["latency"] == 0.0 and cleared["paths"] == ["/api/"]


# --- control endpoints and lifecycle ----------------------------------------------------------
def test_state_and_executions_endpoints(api: Api, simulator: Simulator) -> None:
    answer = api.execute_v2("#flush_dns_cache", devices=[{"name": "EMP-LT-0142"}])
    state = requests.get(
        simulator.base_url + "/_simulator/state", headers=CONTROL_HEADERS, timeout=5
    ).json()
    assert state["counts"]["executions"] == 1 and state["counts"]["token_requests"] == 1
    assert state["counts"]["by_status"] == {"pending": 1}
    assert state["executions"][0]["targets"][0]["device.name"] == "EMP-LT-0142"
    assert state["settings"]["trigger_shape"] == "flags"
    executions = requests.get(
        simulator.base_url + "/_simulator/executions",
        headers=CONTROL_HEADERS,
        timeout=5,
        params={"request_uuid": answer.json()["requestUuid"]},
    ).json()
    assert [e["request_uuid"] for e in executions] == [answer.json()["requestUuid"]]
    assert control(simulator, "state").status_code == 405
    assert control(simulator, "settings", {"trigger_shape": "list"}).status_code == 200
    assert control(simulator, "settings", {"trigger_shape": "xml"}).status_code == 400
    assert control(simulator, "reset").status_code == 200
    assert simulator.state.executions == [] and simulator.trigger_shape == "flags"


def test_requests_endpoint_lists_one_path_with_precise_receive_times(
    api: Api, simulator: Simulator
) -> None:
    before = time.time()
    api.execute_v2("#flush_dns_cache", devices=[{"name": "EMP-LT-0142"}])
    answer = requests.get(
        simulator.base_url + "/_simulator/requests",
        headers=CONTROL_HEADERS,
        timeout=5,
        params={"path": "/api/v2/workflows/"},
    ).json()
    assert answer["token_requests"] == 1
    [seen] = answer["requests"]
    assert seen["path"] == "/api/v2/workflows/execute" and "headers" not in seen
    assert before <= seen["received_epoch"] <= time.time()
    executions = simulator.base_url + "/_simulator/executions"
    [execution] = requests.get(executions, headers=CONTROL_HEADERS, timeout=5).json()
    assert before <= execution["received_epoch"] <= time.time()
    later = {"since": str(execution["received_epoch"] + 0.001)}
    assert requests.get(executions, headers=CONTROL_HEADERS, params=later, timeout=5).json() == []
    nonsense = {"since": "yesterday"}
    assert (
        requests.get(executions, headers=CONTROL_HEADERS, params=nonsense, timeout=5).status_code
        == 400
    )


def test_serve_forever_runs_until_stopped() -> None:
    stop = threading.Event()
    seen: list[int] = []

    def ready(sim: Simulator) -> None:
        seen.append(requests.get(sim.base_url + "/_simulator/state", timeout=5).status_code)
        stop.set()

    serve_forever("127.0.0.1", 0, on_ready=ready, stop_event=stop, execution_seconds=0)
    assert seen == [200]


def test_management_command_prints_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("django")
    from django.core.management import call_command

    from workflows_app.management.commands import nexthink_simulator

    real = nexthink_simulator.serve_forever

    def stopping(*args: Any, on_ready: Any, **kwargs: Any) -> None:
        stop = threading.Event()

        def ready(sim: Simulator) -> None:
            on_ready(sim)
            stop.set()

        real(*args, on_ready=ready, stop_event=stop, **kwargs)

    monkeypatch.setattr(nexthink_simulator, "serve_forever", stopping)
    out = io.StringIO()
    call_command("nexthink_simulator", "--port", "0", "--trigger-shape", "list", stdout=out)
    assert "/oauth2/default/v1/token" in out.getvalue()
    assert "http://127.0.0.1:" in out.getvalue()
