"""The simulator's side of following executions up: statuses, the two saved execution queries,
column shapes, the NQL export API and its pre-signed download, and the faults around them.
Driven over HTTP with plain `requests` (not the portal client), except where a fake clock makes
a timing exact."""

from __future__ import annotations

import csv
import gzip
import io
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from tests.nexthink_fixtures import CONTROL_HEADERS
from tests.test_simulator import EMPLOYEE, EMPLOYEE_DEVICES, Api, control
from workflows_app.simulator import (
    EXECUTIONS_QUERY,
    RECENT_EXECUTIONS_QUERY,
    WORKFLOW_EXECUTION_FIELDS,
    ExportStore,
    Simulator,
    default_workflows,
)
from workflows_app.simulator.state import ResolvedTarget, SimState

UNKNOWN_UID = "00000000-0000-4000-8000-0000000000aa"
EXECUTIONS = "#portal_workflow_executions"
RECENT = "#portal_recent_workflow_executions"
OWN_FIELDS = (
    "request_id",
    "execution_id",
    "request_time",
    "status",
    "status_details",
    "outcome",
    "outcome_details",
)


@pytest.fixture
def api(simulator: Simulator) -> Api:
    return Api(simulator)


def rows_of(api: Api, query_id: str = EXECUTIONS, **parameters: str) -> list[dict[str, Any]]:
    answer = api.nql(query_id, **parameters)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["data"])


def start_export(api: Api, query_id: str = EXECUTIONS, **body: Any) -> str:
    answer = api.post("/api/v1/nql/export", {"queryId": query_id, **body})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["exportId"])


def export_status(api: Api, export_id: str) -> dict[str, Any]:
    answer = api.get(f"/api/v1/nql/status/{export_id}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def csv_rows(content: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(content.decode())))


# --- statuses ---------------------------------------------------------------------------------
def test_an_execution_is_pending_then_in_progress_then_final() -> None:
    now = [100.0]
    state = SimState(execution_seconds=3, clock=lambda: now[0])
    [workflow] = [w for w in default_workflows() if w.id == "#flush_dns_cache"]
    target = ResolvedTarget("device", {"name": "EMP-LT-0142"}, "EMP-LT-0142", None, True)
    record = state.record_execution(
        workflow=workflow,
        version="v2",
        devices=[target.given],
        users=[],
        params=None,
        source_header=None,
        targets=[target],
    )

    def seen() -> tuple[str, str | None]:
        [execution] = state.executions_of_request(record.request_uuid)
        return execution.status, execution.outcome

    assert seen() == ("pending", None)
    now[0] += 1.01
    assert seen() == ("in_progress", None)
    now[0] += 1.5
    assert seen() == ("in_progress", None)
    now[0] += 0.5
    assert seen() == ("success", "success")


def test_held_and_odd_statuses(api: Api, simulator: Simulator) -> None:
    devices = api.execute_v2(
        "#flush_dns_cache", devices=[{"name": "WEIRD-PC-01"}, {"name": "TIMEOUT-PC-01"}]
    ).json()
    users = api.execute_v2("#reset_mfa", users=[{"upn": "employee@example.com"}]).json()
    assert control(simulator, "advance").json()["still_waiting"] == 2
    weird, timeout = rows_of(api, request_id=devices["requestUuid"])
    assert (weird["status"], weird["outcome"]) == ("paused_by_policy", None)
    assert (timeout["status"], timeout["outcome"]) == ("timed_out", "failure")
    [waiting] = rows_of(api, request_id=users["requestUuid"])
    assert (waiting["status"], waiting["outcome"]) == ("waiting_for_event", None)
    control(simulator, "advance", {"include_waiting": True})
    assert rows_of(api, request_id=devices["requestUuid"])[0]["status"] == "success"
    assert rows_of(api, request_id=users["requestUuid"])[0]["status"] == "success"


def test_an_unresolved_target_of_a_waiting_workflow_fails_instead_of_waiting(
    api: Api, simulator: Simulator
) -> None:
    answer = api.execute_v2("#reset_mfa", users=[{"upn": "nobody@example.com"}]).json()
    simulator.advance()
    [row] = rows_of(api, request_id=answer["requestUuid"])
    assert (row["status"], row["status_details"]) == ("failure", "Target not found")


# --- the two saved queries --------------------------------------------------------------------
def test_executions_query_lists_every_field_of_each_target(api: Api, simulator: Simulator) -> None:
    device = EMPLOYEE_DEVICES[0]
    answer = api.execute_v2(
        "#repair_outlook_profile",
        devices=[{"name": device.name}, {"name": "GHOST-PC", "uid": UNKNOWN_UID}],
        users=[{"upn": "employee@example.com"}, {"sid": "S-1-5-21-1-2-3"}],
    ).json()
    body = api.nql(EXECUTIONS, request_id=answer["requestUuid"]).json()
    assert body["headers"] == list(WORKFLOW_EXECUTION_FIELDS)
    on_device, ghost, on_user, stranger = body["data"]
    assert [r["execution_id"] for r in body["data"]] == answer["executionsUuids"]
    assert on_device["device.uid"] == device.uid
    assert on_device["device.collector.uid"] == device.collector_uid
    assert on_device["user.upn"] is on_device["user.sid"] is on_device["user.uid"] is None
    assert (ghost["device.name"], ghost["device.collector.uid"]) == ("GHOST-PC", None)
    assert ghost["device.uid"] == UNKNOWN_UID  # as given: nothing resolved
    assert EMPLOYEE is not None
    assert (on_user["user.upn"], on_user["user.sid"], on_user["user.uid"]) == (
        EMPLOYEE.upn,
        EMPLOYEE.sid,
        EMPLOYEE.uid,
    )
    assert on_user["device.name"] == device.name  # the user's most recently seen device
    assert (stranger["user.sid"], stranger["user.upn"]) == ("S-1-5-21-1-2-3", None)
    assert all(r["workflow.nql_id"] == "#repair_outlook_profile" for r in body["data"])
    assert all(r["workflow.name"] == "Repair Outlook profile" for r in body["data"])
    assert '"' + answer["requestUuid"] + '"' in body["executedQuery"]


def test_executions_query_answers_v1_collector_and_sid_targets(api: Api) -> None:
    device = EMPLOYEE_DEVICES[1]
    answer = api.post(
        "/api/v1/workflows/execute",
        {"workflowId": "#repair_outlook_profile", "devices": [device.collector_uid], "users": []},
    ).json()
    body = api.nql(EXECUTIONS, version="v1", request_id=answer["requestUuid"]).json()
    [row] = [dict(zip(body["headers"], values, strict=True)) for values in body["data"]]
    assert (row["device.name"], row["device.uid"]) == (device.name, device.uid)


def test_recent_query_lists_one_workflows_past_day_newest_first(
    api: Api, simulator: Simulator
) -> None:
    old = api.execute_v2("#flush_dns_cache", devices=[{"name": "EMP-LT-0142"}]).json()
    first = api.execute_v2("#flush_dns_cache", devices=[{"name": "HD-LT-0001"}]).json()
    other = api.execute_v2("#clear_teams_cache", devices=[{"name": "HD-LT-0001"}]).json()
    last = api.execute_v2(
        "#flush_dns_cache", devices=[{"name": "ADM-LT-0001"}, {"name": "KIOSK-LOBBY-01"}]
    ).json()
    # The oldest request happened 25 hours ago.
    long_ago = datetime.now(UTC) - timedelta(hours=25)
    with simulator.state.lock:
        simulator.state.executions[0].received_at = long_ago
        simulator.state.target_executions[old["executionsUuids"][0]].request_time = long_ago
    rows = rows_of(api, RECENT, workflow_id="#flush_dns_cache")
    assert [r["execution_id"] for r in rows] == last["executionsUuids"] + first["executionsUuids"]
    assert [r["execution_id"] for r in rows_of(api, RECENT, workflow_id="#clear_teams_cache")] == (
        other["executionsUuids"]
    )
    assert rows_of(api, RECENT, workflow_id="#reset_mfa") == []
    assert rows_of(api, request_id=old["requestUuid"]) == []  # "during past 1d" as well
    assert rows_of(api, "#portal_execution_status", request_id=old["requestUuid"])  # 30 days


def test_the_queries_nql_text_is_what_the_readme_quotes() -> None:
    assert EXECUTIONS_QUERY.query_id == EXECUTIONS and EXECUTIONS_QUERY.parameter == "request_id"
    assert RECENT_EXECUTIONS_QUERY.query_id == RECENT
    assert RECENT_EXECUTIONS_QUERY.parameter == "workflow_id"
    listed = "list " + ", ".join(WORKFLOW_EXECUTION_FIELDS)
    for query in (EXECUTIONS_QUERY, RECENT_EXECUTIONS_QUERY):
        assert query.nql.startswith("workflow.executions during past 1d | where ")
        assert listed in query.nql and f"${query.parameter}" in query.nql
    assert RECENT_EXECUTIONS_QUERY.nql.endswith("| sort request_time desc")


# --- column shapes ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("shape", "prefix"),
    [("plain", ""), ("execution", "execution."), ("table", "workflow.executions.")],
)
def test_column_shapes_rename_only_the_execution_tables_own_fields(
    api: Api, simulator: Simulator, shape: str, prefix: str
) -> None:
    assert control(simulator, "settings", {"nql_column_shape": shape}).status_code == 200
    answer = api.execute_v2("#flush_dns_cache", devices=[{"name": "EMP-LT-0142"}]).json()
    expected = [prefix + f if f in OWN_FIELDS else f for f in WORKFLOW_EXECUTION_FIELDS]
    body = api.nql(EXECUTIONS, request_id=answer["requestUuid"]).json()
    assert body["headers"] == expected and list(body["data"][0]) == expected
    assert body["data"][0][prefix + "execution_id"] == answer["executionsUuids"][0]
    assert api.nql(EXECUTIONS, version="v1", request_id=answer["requestUuid"]).json()[
        "headers"
    ] == (expected)
    as_csv = api.post(
        "/api/v2/nql/execute",
        {"queryId": EXECUTIONS, "parameters": {"request_id": answer["requestUuid"]}},
        headers={"Accept": "text/csv"},
    )
    assert as_csv.text.splitlines()[0] == ",".join(expected)
    simulator.configure(export_seconds=0)
    export_id = start_export(api, parameters={"request_id": answer["requestUuid"]})
    file = requests.get(export_status(api, export_id)["resultsFileUrl"], timeout=5)
    assert file.text.splitlines()[0] == ",".join(expected)
    devices = api.nql("#portal_user_devices", upn="admin@example.com").json()
    assert devices["headers"][0] == "device.name"


def test_settings_are_checked_and_reset(simulator: Simulator) -> None:
    for bad in ({"nql_column_shape": "flat"}, {"export_seconds": -1}, {"export_url_seconds": "x"}):
        assert control(simulator, "settings", bad).status_code == 400
    changed = {"nql_column_shape": "table", "export_seconds": 0, "export_url_seconds": 60}
    settings = control(simulator, "settings", changed).json()
    assert {k: settings[k] for k in changed} == changed
    assert simulator.nql_column_shape == "table" and simulator.exports.url_seconds == 60
    simulator.reset()
    assert simulator.settings()["nql_column_shape"] == "plain"
    assert (simulator.exports.export_seconds, simulator.exports.url_seconds) == (1.0, 900)


# --- the export API ---------------------------------------------------------------------------
def test_an_export_is_submitted_then_in_progress_then_completed() -> None:
    now = [50.0]
    store = ExportStore(export_seconds=1.0, clock=lambda: now[0])
    export = store.create(
        query_id=EXECUTIONS,
        parameters={},
        compression="NONE",
        fails=False,
        produce=lambda: (["a", "b"], [{"a": "1", "b": None}]),
    )
    seen = []
    for _ in range(3):
        found = store.get(export.export_id)
        assert found is not None
        seen.append(found.status)
        now[0] += 0.5
    assert seen == ["SUBMITTED", "IN_PROGRESS", "COMPLETED"]
    assert (export.content, export.rows) == (b"a,b\n1,\n", 1)
    assert store.get("unknown") is None


def test_export_answers_every_row_as_csv_behind_a_presigned_link(
    api: Api, simulator: Simulator
) -> None:
    simulator.configure(export_seconds=0.3)
    answer = api.execute_v2("#flush_dns_cache", devices=[{"name": f"PC-{i}"} for i in range(1500)])
    request_id = answer.json()["requestUuid"]
    export_id = start_export(api, parameters={"request_id": request_id})
    assert export_status(api, export_id) == {"status": "SUBMITTED"}
    time.sleep(0.35)
    status = export_status(api, export_id)
    assert status["status"] == "COMPLETED" and set(status) == {"status", "resultsFileUrl"}
    link = urlsplit(status["resultsFileUrl"])
    assert f"{link.scheme}://{link.netloc}" == simulator.base_url
    assert link.path == f"/_exports/{export_id}.csv"
    assert parse_qs(link.query)["X-Amz-Expires"] == ["900"]
    file = requests.get(status["resultsFileUrl"], timeout=5)
    assert file.status_code == 200 and file.headers["Content-Type"] == "text/csv"
    rows = csv_rows(file.content)
    assert len(rows) == 1500 and list(rows[0]) == list(WORKFLOW_EXECUTION_FIELDS)
    assert [r["execution_id"] for r in rows] == answer.json()["executionsUuids"]
    assert rows[0]["user.upn"] == ""  # None is an empty cell
    download = simulator.state.requests[-1]
    assert (download.method, download.path, download.status) == ("GET", link.path, 200)


def test_export_rows_are_taken_when_it_completes(api: Api, simulator: Simulator) -> None:
    simulator.configure(execution_seconds=60, export_seconds=60)
    answer = api.execute_v2("#flush_dns_cache", devices=[{"name": "EMP-LT-0142"}]).json()
    export_id = start_export(api, parameters={"request_id": answer["requestUuid"]})
    assert export_status(api, export_id)["status"] == "SUBMITTED"
    assert control(simulator, "advance").status_code == 200  # executions first, then exports
    file = requests.get(export_status(api, export_id)["resultsFileUrl"], timeout=5)
    assert [r["status"] for r in csv_rows(file.content)] == ["success"]
    state = requests.get(
        simulator.base_url + "/_simulator/state", headers=CONTROL_HEADERS, timeout=5
    ).json()
    assert state["exports"] == [
        {
            "export_id": export_id,
            "query_id": EXECUTIONS,
            "parameters": {"request_id": answer["requestUuid"]},
            "status": "COMPLETED",
            "rows": 1,
        }
    ]


def test_export_of_the_recent_query_and_gzip_compression(api: Api, simulator: Simulator) -> None:
    simulator.configure(export_seconds=0)
    api.execute_v2("#flush_dns_cache", devices=[{"name": "EMP-LT-0142"}])
    export_id = start_export(
        api, RECENT, parameters={"workflow_id": "#flush_dns_cache"}, compression="GZIP"
    )
    link = export_status(api, export_id)["resultsFileUrl"]
    assert urlsplit(link).path.endswith(".csv.gz")
    file = requests.get(link, timeout=5)
    assert file.headers["Content-Type"] == "application/gzip"
    assert [r["device.name"] for r in csv_rows(gzip.decompress(file.content))] == ["EMP-LT-0142"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"queryId": "#nope"}, 404, "QUERY_NOT_FOUND"),
        ({"queryId": EXECUTIONS}, 400, "INVALID_PARAMETERS"),
        ({"queryId": EXECUTIONS, "parameters": {"request_id": "x"}, "limit": 3}, 400, None),
        (
            {"queryId": EXECUTIONS, "parameters": {"request_id": "x"}, "compression": "ZIP"},
            400,
            None,
        ),
        (
            {"queryId": EXECUTIONS, "parameters": {"request_id": "x"}, "compression": "ZSTD"},
            400,
            "UNSUPPORTED_COMPRESSION",
        ),
    ],
)
def test_export_requests_are_validated(
    api: Api, body: dict[str, Any], status: int, code: str | None
) -> None:
    answer = api.post("/api/v1/nql/export", body)
    assert answer.status_code == status
    assert answer.json()["code"] == (code or "INVALID_REQUEST")


def test_unknown_export_is_404_and_the_export_api_needs_a_token(
    api: Api, simulator: Simulator
) -> None:
    answer = api.get("/api/v1/nql/status/00000000-0000-4000-8000-000000000000")
    assert answer.status_code == 404 and answer.json()["code"] == "EXPORT_NOT_FOUND"
    anonymous = requests.post(
        simulator.base_url + "/api/v1/nql/export",
        json={"queryId": EXECUTIONS, "parameters": {"request_id": "x"}},
        timeout=5,
    )
    assert anonymous.status_code == 401


def test_download_refuses_a_token_a_wrong_signature_and_an_expired_link(
    api: Api, simulator: Simulator
) -> None:
    simulator.configure(export_seconds=0)
    export_id = start_export(api, parameters={"request_id": "x"})
    link = export_status(api, export_id)["resultsFileUrl"]
    with_token = requests.get(
        link, headers={"Authorization": api.headers["Authorization"]}, timeout=5
    )
    assert with_token.status_code == 400
    assert "<Code>InvalidArgument</Code>" in with_token.text
    assert simulator.state.requests[-1].headers["Authorization"] == "[redacted]"
    parts = urlsplit(link)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    forged = {**query, "X-Amz-Expires": "999999"}
    answer = requests.get(parts._replace(query=urlencode(forged)).geturl(), timeout=5)
    assert answer.status_code == 403 and "SignatureDoesNotMatch" in answer.text
    unsigned = requests.get(parts._replace(query="").geturl(), timeout=5)
    assert unsigned.status_code == 403 and "AccessDenied" in unsigned.text
    other = parts._replace(path="/_exports/00000000-0000-4000-8000-000000000000.csv").geturl()
    assert requests.get(other, timeout=5).status_code == 403  # signed for another file
    assert requests.post(link, timeout=5).status_code == 405
    simulator.configure(export_url_seconds=0)
    expired = requests.get(export_status(api, export_id)["resultsFileUrl"], timeout=5)
    assert expired.status_code == 403 and "Request has expired" in expired.text
    assert requests.get(link, timeout=5).status_code == 200  # an older link still has its time


# --- faults -----------------------------------------------------------------------------------
def test_export_error_fault_ends_the_next_exports_in_error(api: Api, simulator: Simulator) -> None:
    simulator.configure(export_seconds=0)
    assert control(simulator, "faults", {"export_error_count": 1}).status_code == 200
    failed = export_status(api, start_export(api, parameters={"request_id": "x"}))
    assert failed["status"] == "ERROR" and failed["errorDescription"]
    assert "resultsFileUrl" not in failed
    assert export_status(api, start_export(api, parameters={"request_id": "x"}))["status"] == (
        "COMPLETED"
    )


def test_fail_after_accept_records_the_executions_then_answers_500(
    api: Api, simulator: Simulator
) -> None:
    simulator.faults.configure(fail_after_accept_count=1)
    answer = api.execute_v2("#flush_dns_cache", devices=[{"name": "EMP-LT-0142"}])
    assert answer.status_code == 500 and simulator.state.requests[-1].fault == "fail_after_accept"
    [record] = simulator.state.executions
    simulator.advance()
    [row] = rows_of(api, RECENT, workflow_id="#flush_dns_cache")
    assert (row["request_id"], row["status"]) == (record.request_uuid, "success")
    assert api.execute_v2("#flush_dns_cache", devices=[{"name": "EMP-LT-0142"}]).status_code == 200
    assert simulator.faults.config.fail_after_accept_count == 0


def test_faults_reach_the_nql_and_export_paths_and_downloads_when_asked(
    api: Api, simulator: Simulator
) -> None:
    simulator.configure(export_seconds=0)
    simulator.faults.configure(fail_next=[503, 429])
    assert api.post("/api/v1/nql/export", {"queryId": EXECUTIONS}).status_code == 503
    assert api.nql(EXECUTIONS, request_id="x").status_code == 429
    export_id = start_export(api, parameters={"request_id": "x"})
    simulator.faults.configure(rate_limit_count=1, paths=["/api/v1/nql/status/"])
    assert api.get(f"/api/v1/nql/status/{export_id}").status_code == 429
    link = export_status(api, export_id)["resultsFileUrl"]
    simulator.faults.configure(error_rate=1.0, paths=["/api/"])
    assert requests.get(link, timeout=5).status_code == 200  # downloads are not under /api/
    simulator.faults.configure(paths=["/_exports/"])
    assert requests.get(link, timeout=5).status_code == 503
    assert api.get(f"/api/v1/nql/status/{export_id}").status_code == 200


def test_the_export_ids_and_links_of_two_exports_differ(api: Api, simulator: Simulator) -> None:
    simulator.configure(export_seconds=0)
    first = start_export(api, parameters={"request_id": "x"})
    second = start_export(api, parameters={"request_id": "x"})
    assert first != second
    one, two = (export_status(api, e)["resultsFileUrl"] for e in (first, second))
    assert (
        parse_qs(urlsplit(one).query)["X-Amz-Signature"]
        != (parse_qs(urlsplit(two).query)["X-Amz-Signature"])
    )
