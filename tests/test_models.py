"""The Nexthink models: the spec's patterns and limits, strict requests, tolerant responses."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError

from workflows_app.nexthink import (
    MAX_TARGETS,
    SID_PATTERN,
    UPN_PATTERN,
    UUID_PATTERN,
    ClientConfig,
    DeviceData,
    ErrorResponse,
    ExecutionRequest,
    ExecutionResponse,
    ExternalIdsExecutionRequest,
    NqlExportRequest,
    NqlExportStatus,
    NqlRequest,
    NqlResponse,
    ThinkletTriggerRequest,
    TriggerMethod,
    UserData,
    Workflow,
    WorkflowStatus,
    parse_trigger_methods,
)
from workflows_app.nexthink.errors import BadRequest, RateLimited, parse_retry_after
from workflows_app.simulator.spec import load_spec, validate_request

DEVICE = "0e4b3b8c-6f3a-4c1e-9d55-3e0c1c6f9a11"
SID = "S-1-5-21-1004336348-1177238915-682003330-1101"
V1 = "/api/v1/workflows/execute"
V2 = "/api/v2/workflows/execute"

uuids = st.uuids().map(str)
sids = st.lists(st.integers(0, 2**32), min_size=2, max_size=10).map(
    lambda parts: "S" + "".join(f"-{p}" for p in parts)
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)


def _workflow(**changes: object) -> dict[str, object]:
    payload: dict[str, object] = {
        "id": "#restart_print_spooler",
        "uuid": "5f0c3d2e-6a7b-4c8d-9e0f-1a2b3c4d5e6f",
        "name": "Restart print spooler",
        "description": "Restarts the spooler.",
        "status": "ACTIVE",
        "lastUpdateTime": "2025-06-11T09:14:27Z",
        "triggerMethods": ["API", "MANUAL"],
        "versions": [{"versionNumber": 1, "isActive": True}],
    }
    payload.update(changes)
    return payload


# -- patterns and limits ------------------------------------------------------------------------


def test_patterns_are_exactly_the_specs():
    schemas = load_spec()["components"]["schemas"]
    assert schemas["ExecutionRequest"]["properties"]["devices"]["items"]["pattern"] == UUID_PATTERN
    assert schemas["ExecutionRequest"]["properties"]["users"]["items"]["pattern"] == SID_PATTERN
    assert schemas["UserData"]["properties"]["upn"]["pattern"] == UPN_PATTERN
    assert schemas["ExecutionRequest"]["properties"]["devices"]["maxItems"] == MAX_TARGETS


@pytest.mark.parametrize("sid", ["S-1-5", "S-1-5-21-1-2-3-4-5-6-7", "0"])
def test_v1_accepts_spec_sids(sid):
    assert ExecutionRequest(workflowId="#w", users=[sid]).users == [sid]


@pytest.mark.parametrize(
    "sid", ["S-1", "s-1-5-21", "S-1-5-21\n", "S-1-2-3-4-5-6-7-8-9-10-11", "00"]
)
def test_v1_refuses_malformed_sids(sid):
    with pytest.raises(ValidationError):
        ExecutionRequest(workflowId="#w", users=[sid])


@pytest.mark.parametrize("device", ["not-a-uuid", DEVICE + "0", DEVICE + "\n", DEVICE[:-1]])
def test_v1_refuses_malformed_collector_uuids(device):
    with pytest.raises(ValidationError):
        ExecutionRequest(workflowId="#w", devices=[device])


def test_execute_request_needs_at_least_one_target():
    with pytest.raises(ValidationError, match="at least one device or user"):
        ExecutionRequest(workflowId="#w")
    with pytest.raises(ValidationError, match="at least one device or user"):
        ExternalIdsExecutionRequest(workflowId="#w", devices=[], users=[])


def test_execute_request_always_sends_both_lists():
    payload = ExecutionRequest(workflowId="#w", devices=[DEVICE]).payload()
    assert payload == {"workflowId": "#w", "devices": [DEVICE], "users": []}
    assert validate_request("POST", V1, payload) == []


def test_params_are_sent_only_when_given():
    payload = ExecutionRequest(workflowId="#w", users=[SID], params={"Reason": "locked"}).payload()
    assert payload["params"] == {"Reason": "locked"}


@pytest.mark.parametrize("field", ["devices", "users"])
def test_ten_thousand_targets_is_the_limit(field):
    value = DEVICE if field == "devices" else SID
    full = ExecutionRequest(workflowId="#w", **{field: [value] * MAX_TARGETS})
    assert validate_request("POST", V1, full.payload()) == []
    with pytest.raises(ValidationError):
        ExecutionRequest(workflowId="#w", **{field: [value] * (MAX_TARGETS + 1)})
    v2_item = DeviceData(name="PC") if field == "devices" else UserData(sid=SID)
    with pytest.raises(ValidationError):
        ExternalIdsExecutionRequest(workflowId="#w", **{field: [v2_item] * (MAX_TARGETS + 1)})


def test_request_models_refuse_unknown_fields():
    with pytest.raises(ValidationError):
        ExecutionRequest(workflowId="#w", users=[SID], target="x")  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        DeviceData(name="PC", hostname="PC")  # type: ignore[call-arg]


def test_workflow_id_cannot_be_empty():
    with pytest.raises(ValidationError):
        ExecutionRequest(workflowId="", users=[SID])


def test_device_and_user_need_one_identifier():
    with pytest.raises(ValidationError, match="name, uid or collectorUid"):
        DeviceData()
    with pytest.raises(ValidationError, match="uid, upn or sid"):
        UserData()
    with pytest.raises(ValidationError):
        UserData(upn="not an email")
    with pytest.raises(ValidationError):
        DeviceData(uid="nope")


def test_v2_request_serialises_only_given_identifiers():
    req = ExternalIdsExecutionRequest(
        workflowId="#w",
        devices=[DeviceData(name="EMP-LT-0142"), DeviceData(collectorUid=DEVICE)],
        users=[UserData(upn="erin@example.com", sid=SID)],
    )
    payload = req.payload()
    assert payload["devices"] == [{"name": "EMP-LT-0142"}, {"collectorUid": DEVICE}]
    assert payload["users"] == [{"upn": "erin@example.com", "sid": SID}]
    assert "params" not in payload
    assert validate_request("POST", V2, payload) == []


def test_thinklet_parameters_must_not_be_empty_strings():
    assert ThinkletTriggerRequest().payload() == {}
    with pytest.raises(ValidationError):
        ThinkletTriggerRequest(parameters={"Approval": ""})


@pytest.mark.parametrize("query_id", ["#portal_user_devices", "#ab", "#a_1"])
def test_nql_request_accepts_saved_query_ids(query_id):
    payload = NqlRequest(queryId=query_id, parameters={"upn": "x@y.z"}).payload()
    assert validate_request("POST", "/api/v2/nql/execute", payload) == []


@pytest.mark.parametrize("query_id", ["portal", "#a", "#Upper", "#with-dash", "#" + "a" * 256])
def test_nql_request_refuses_bad_query_ids(query_id):
    with pytest.raises(ValidationError):
        NqlRequest(queryId=query_id)
    assert validate_request("POST", "/api/v2/nql/execute", {"queryId": query_id}) != []


@pytest.mark.parametrize("compression", [None, "NONE", "GZIP", "ZSTD"])
def test_nql_export_request_conforms_to_the_export_endpoint(compression):
    request = NqlExportRequest(
        queryId="#portal_workflow_executions",
        parameters={"request_id": "r-1"},
        compression=compression,
    )
    payload = request.payload()
    assert ("compression" in payload) is (compression is not None)
    assert validate_request("POST", "/api/v1/nql/export", payload) == []


@pytest.mark.parametrize(
    "fields",
    [
        {"queryId": "portal"},
        {"queryId": "#ok", "compression": "ZIP"},
        {"queryId": "#ok", "format": "csv"},
        {"queryId": "#ok", "parameters": {"n": 1}},
    ],
)
def test_nql_export_request_is_strict(fields):
    with pytest.raises(ValidationError):
        NqlExportRequest(**fields)
    assert validate_request("POST", "/api/v1/nql/export", fields) != []


@pytest.mark.parametrize(
    ("answer", "done", "failed"),
    [
        ({"status": "COMPLETED", "resultsFileUrl": "https://s3/x.csv?sig=1"}, True, False),
        ({"status": "ERROR", "errorDescription": "Query timed out"}, False, True),
        ({"status": "in_progress"}, False, False),
        ({"status": "SOMETHING_NEW", "progress": 40}, False, False),
    ],
)
def test_nql_export_status_is_read_tolerantly(answer, done, failed):
    status = NqlExportStatus.model_validate(answer)
    assert (status.status, status.done, status.failed) == (answer["status"], done, failed)
    assert status.errorDescription == answer.get("errorDescription")


def test_nql_export_status_path_conforms_to_the_spec():
    assert validate_request("GET", "/api/v1/nql/status/abc-123", None) == []
    assert validate_request("POST", "/api/v1/nql/status/abc-123", None) != []


# -- property tests: the models and the spec agree ---------------------------------------------


@given(
    devices=st.lists(uuids, max_size=5),
    users=st.lists(sids, max_size=5),
    params=st.none() | st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
)
def test_any_valid_v1_request_conforms_to_the_spec(devices, users, params):
    try:
        req = ExecutionRequest(workflowId="#w", devices=devices, users=users, params=params)
    except ValidationError:
        assert not devices and not users
        return
    assert validate_request("POST", V1, req.payload()) == []


@given(st.one_of(sids, st.from_regex(SID_PATTERN, fullmatch=True), st.text(max_size=30)))
def test_sid_acceptance_matches_the_spec(text):
    accepted = True
    try:
        ExecutionRequest(workflowId="#w", users=[text])
    except ValidationError:
        accepted = False
    spec_ok = validate_request("POST", V1, {"workflowId": "#w", "devices": [], "users": [text]})
    assert accepted == (spec_ok == [])


@given(st.one_of(st.emails(), st.text(max_size=30)))
def test_upn_acceptance_matches_the_spec(text):
    accepted = True
    try:
        UserData(upn=text)
    except ValidationError:
        accepted = False
    body = {"workflowId": "#w", "devices": [], "users": [{"upn": text}]}
    assert accepted == (validate_request("POST", V2, body) == [])


device_data = st.fixed_dictionaries(
    {},
    optional={"name": st.text(min_size=1, max_size=10), "uid": uuids, "collectorUid": uuids},
).filter(bool)
user_data = st.fixed_dictionaries(
    {}, optional={"uid": uuids, "upn": st.from_regex(UPN_PATTERN, fullmatch=True), "sid": sids}
).filter(bool)


@given(devices=st.lists(device_data, max_size=4), users=st.lists(user_data, max_size=4))
def test_any_valid_v2_request_conforms_to_the_spec(devices, users):
    if not devices and not users:
        return
    req = ExternalIdsExecutionRequest(
        workflowId="#w",
        devices=[DeviceData(**d) for d in devices],
        users=[UserData(**u) for u in users],
    )
    assert validate_request("POST", V2, req.payload()) == []


# -- tolerant responses ------------------------------------------------------------------------


def test_execution_response_needs_one_execution_and_ignores_extras():
    parsed = ExecutionResponse.model_validate(
        {"requestUuid": "r", "executionsUuids": ["e"], "new": 1}
    )
    assert parsed.executionsUuids == ["e"]
    with pytest.raises(ValidationError):
        ExecutionResponse.model_validate({"requestUuid": "r", "executionsUuids": []})


def test_error_response_tolerates_missing_fields():
    assert ErrorResponse.model_validate({"code": "X"}).details == ""


API_MANUAL = frozenset({TriggerMethod.API, TriggerMethod.MANUAL})


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        (["API", "MANUAL"], API_MANUAL),
        (["api", "manual", "TELEPATHY"], API_MANUAL),
        ("API,MANUAL", API_MANUAL),
        (
            [{"name": "API"}, {"type": "MANUAL"}, {"method": "SCHEDULER", "enabled": False}],
            API_MANUAL,
        ),
        ({"API": True, "MANUAL": True, "SCHEDULER": False}, API_MANUAL),
        (
            {"apiEnabled": True, "manualEnabled": True, "schedulerEnabled": False},
            API_MANUAL,
        ),
        ({"manualMultipleEnabled": True}, frozenset({TriggerMethod.MANUAL_MULTIPLE})),
        ({"triggerMethods": [{"triggerMethod": "API"}, {"triggerMethod": "MANUAL"}]}, API_MANUAL),
        ({"API": {"enabled": True}, "MANUAL": {"enabled": "false"}}, {TriggerMethod.API}),
        ({"id": "#x", "name": "Run via API", "description": "API"}, frozenset()),
        (None, frozenset()),
        (42, frozenset()),
        ([[[[[[[["API"]]]]]]]], frozenset()),  # nested beyond reason: ignored, no crash
    ],
)
def test_trigger_methods_are_derived_from_any_shape(shape, expected):
    workflow = Workflow.model_validate(_workflow(triggerMethods=shape))
    assert workflow.trigger_methods == frozenset(expected)
    assert workflow.trigger_methods_raw == shape
    assert workflow.raw["triggerMethods"] == shape


def test_workflow_keeps_the_whole_payload():
    payload = _workflow(dependency="DEVICE", brandNew={"x": 1}, versions={"weird": True})
    workflow = Workflow.model_validate(payload)
    assert workflow.raw == payload
    assert workflow.versions_raw == {"weird": True}
    assert workflow.lastUpdateTime == datetime(2025, 6, 11, 9, 14, 27, tzinfo=UTC)
    assert workflow.api_enabled and workflow.is_active


def test_workflow_survives_a_model_round_trip():
    workflow = Workflow.model_validate(_workflow())
    again = Workflow.model_validate(workflow.model_dump(by_alias=True))
    assert again.raw == workflow.raw
    assert again.trigger_methods == workflow.trigger_methods


def test_unknown_status_is_treated_as_not_runnable():
    workflow = Workflow.model_validate(_workflow(status="DRAFT"))
    assert workflow.status is WorkflowStatus.INACTIVE
    assert workflow.raw["status"] == "DRAFT"
    assert Workflow.model_validate(_workflow(status="active")).status is WorkflowStatus.ACTIVE
    assert Workflow.model_validate(_workflow(status=None)).status is WorkflowStatus.INACTIVE


def test_missing_description_and_versions_are_tolerated():
    payload = _workflow()
    del payload["description"], payload["versions"], payload["triggerMethods"]
    workflow = Workflow.model_validate(payload)
    assert workflow.description == ""
    assert workflow.versions_raw is None
    assert workflow.trigger_methods == frozenset()


@given(trigger_methods=json_values, versions=json_values)
def test_workflow_never_crashes_on_unknown_shapes(trigger_methods, versions):
    workflow = Workflow.model_validate(_workflow(triggerMethods=trigger_methods, versions=versions))
    assert workflow.trigger_methods <= set(TriggerMethod)
    assert parse_trigger_methods(trigger_methods) == workflow.trigger_methods


@given(st.sets(st.sampled_from(list(TriggerMethod))))
def test_list_and_flag_shapes_agree(methods):
    as_list = parse_trigger_methods([m.value for m in methods])
    as_flags = parse_trigger_methods({m.value: m in methods for m in TriggerMethod})
    assert as_list == as_flags == frozenset(methods)


def test_nql_v2_objects_and_v1_arrays_parse_to_the_same_rows():
    base = {"queryId": "#q", "executedQuery": "devices", "rows": 1, "headers": ["a", "b"]}
    v2 = NqlResponse.model_validate({**base, "data": [{"a": 1, "b": "x"}]})
    v1 = NqlResponse.model_validate({**base, "data": [[1, "x"]]})
    assert v1.data == v2.data == [{"a": 1, "b": "x"}]


@pytest.mark.parametrize(
    "value",
    [
        {"year": 2025, "month": 9, "day": 1, "hour": 8, "minute": 0, "second": 5},
        "2025-09-01T08:00:05Z",
    ],
)
def test_nql_execution_time_in_either_shape(value):
    response = NqlResponse.model_validate({"queryId": "#q", "executionDateTime": value, "data": []})
    assert response.executed_at == datetime(2025, 9, 1, 8, 0, 5, tzinfo=UTC)


def test_nql_odd_execution_time_is_none_not_an_error():
    response = NqlResponse.model_validate({"queryId": "#q", "executionDateTime": {"year": "x"}})
    assert response.executed_at is None
    assert response.rows == 0


# -- errors and config -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [("7", 7.0), ("0.5", 0.5), ("-3", 0.0), ("soon", None), ("", None), (None, None)],
)
def test_retry_after_seconds(header, expected):
    assert parse_retry_after(header) == expected


def test_retry_after_http_date():
    now = datetime(2025, 9, 1, 8, 0, 0, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=120), usegmt=True)
    assert parse_retry_after(header, now=now) == 120.0
    assert parse_retry_after(format_datetime(now - timedelta(days=1), usegmt=True), now=now) == 0


@given(st.integers(0, 10**6))
def test_retry_after_reads_any_whole_number(seconds):
    assert parse_retry_after(str(seconds)) == seconds


def test_errors_say_what_failed():
    error = BadRequest("INVALID_WORKFLOW", "No workflow #x", 400)
    assert "INVALID_WORKFLOW" in error.message and "No workflow #x" in error.message
    assert RateLimited(3).retry_after == 3 and RateLimited(3).status == 429


def test_config_never_shows_the_secret():
    config = ClientConfig(
        api_url="https://t.api.eu.nexthink.cloud/",
        token_url="https://t-login.eu.nexthink.cloud/oauth2/default/v1/token",
        client_id="portal",
        client_secret=SecretStr("hunter2-secret"),
    )
    assert "hunter2" not in repr(config) and "hunter2" not in str(config)
    assert "hunter2" not in json.dumps(config.model_dump(mode="json"))
    assert config.api_url == "https://t.api.eu.nexthink.cloud"


def test_config_refuses_a_url_without_scheme():
    with pytest.raises(ValidationError):
        ClientConfig(api_url="t.api", token_url="https://x", client_id="c", client_secret="s")


def test_spec_refuses_unknown_body_fields_and_query_parameters():
    body = {"workflowId": "#w", "devices": [DEVICE], "users": [], "targets": []}
    assert any("targets" in e for e in validate_request("POST", V1, body))
    errors = validate_request("GET", "/api/v1/workflows/details?nql-id=%23w", None)
    assert "query.nql-id: unknown query parameter" in errors
    assert "query.nqlId: required parameter is missing" in errors


def test_spec_checks_the_bearer_token_when_headers_are_given():
    body = {"workflowId": "#w", "devices": [DEVICE], "users": []}
    json_headers = {"Content-Type": "application/json"}
    assert validate_request("POST", V1, body, json_headers) == [
        "header.Authorization: a Bearer token is required"
    ]
    assert validate_request("POST", V1, body, {**json_headers, "authorization": "Bearer t"}) == []


def test_spec_patterns_do_not_let_a_trailing_newline_through():
    assert re.search(SID_PATTERN, "S-1-5\n")  # Python's `$` would...
    body = {"workflowId": "#w", "devices": [], "users": ["S-1-5\n"]}
    assert validate_request("POST", V1, body) != []  # ...but the spec check does not.
