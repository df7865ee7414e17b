"""The Workflows API endpoints: execute (v1, v2), trigger wait for event, list and details."""

from __future__ import annotations

from typing import Any, Literal

from .catalogue import Catalogue, SimWorkflow, TriggerShape
from .faults import Faults
from .inventory import Inventory
from .replies import Incoming, Reply, error_reply, json_reply
from .state import ResolvedTarget, SimState


def list_workflows(
    request: Incoming, *, catalogue: Catalogue, trigger_shape: TriggerShape
) -> Reply:
    """GET /api/v1/workflows: exactly the workflows matching dependency and trigger method."""
    only_active = request.param("fetchOnlyActiveWorkflows") == "true"
    found = catalogue.filter(
        request.param("dependency") or "", request.param("triggerMethod") or "", only_active
    )
    return json_reply(200, [w.to_payload(trigger_shape) for w in found])


def workflow_details(
    request: Incoming, *, catalogue: Catalogue, trigger_shape: TriggerShape
) -> Reply:
    """GET /api/v1/workflows/details?nqlId=: an array with that workflow, empty when unknown."""
    workflow = catalogue.get(request.param("nqlId") or "")
    return json_reply(200, [workflow.to_payload(trigger_shape)] if workflow else [])


def _dependency_problem(workflow: SimWorkflow, devices: list[Any], users: list[Any]) -> str | None:
    if workflow.dependency == "DEVICE" and (not devices or users):
        return (
            f"Workflow {workflow.id} has dependency DEVICE: give devices only "
            f"(got {len(devices)} devices, {len(users)} users)"
        )
    if workflow.dependency == "USER" and (not users or devices):
        return (
            f"Workflow {workflow.id} has dependency USER: give users only "
            f"(got {len(devices)} devices, {len(users)} users)"
        )
    return None


def _given(given: Any, key: str) -> str | None:
    value = given.get(key) if isinstance(given, dict) else None
    return value if isinstance(value, str) else None


def _device_target(inventory: Inventory, given: Any, version: str) -> ResolvedTarget:
    if version == "v1":
        device = inventory.resolve_device(collector_uid=given)
    else:
        device = inventory.resolve_device(
            name=given.get("name"), uid=given.get("uid"), collector_uid=given.get("collectorUid")
        )
    if device is None:
        collector = given if isinstance(given, str) else _given(given, "collectorUid")
        return ResolvedTarget(
            "device",
            given,
            _given(given, "name"),
            None,
            resolved=False,
            device_uid=_given(given, "uid"),
            device_collector_uid=collector,
        )
    return ResolvedTarget(
        "device",
        given,
        device.name,
        None,
        resolved=True,
        device_uid=device.uid,
        device_collector_uid=device.collector_uid,
    )


def _user_target(inventory: Inventory, given: Any, version: str) -> ResolvedTarget:
    if version == "v1":
        user = inventory.resolve_user(sid=given)
    else:
        user = inventory.resolve_user(
            upn=given.get("upn"), sid=given.get("sid"), uid=given.get("uid")
        )
    if user is None:
        sid = given if isinstance(given, str) else _given(given, "sid")
        return ResolvedTarget(
            "user",
            given,
            None,
            _given(given, "upn"),
            resolved=False,
            user_sid=sid,
            user_uid=_given(given, "uid"),
        )
    # The workflow runs on the user's most recently seen device, which NQL shows too.
    devices = inventory.devices_of(user.upn)
    device = devices[0] if devices else None
    return ResolvedTarget(
        "user",
        given,
        device.name if device else None,
        user.upn,
        resolved=True,
        device_uid=device.uid if device else None,
        device_collector_uid=device.collector_uid if device else None,
        user_sid=user.sid,
        user_uid=user.uid,
    )


def execute(
    request: Incoming,
    version: Literal["v1", "v2"],
    *,
    catalogue: Catalogue,
    inventory: Inventory,
    state: SimState,
    faults: Faults,
) -> Reply:
    """POST /api/v{1,2}/workflows/execute on a body that already passed spec validation."""
    body: dict[str, Any] = request.body
    workflow = catalogue.get(body["workflowId"])
    if workflow is None:
        return error_reply(
            400, "WORKFLOW_NOT_FOUND", f"No workflow with id {body['workflowId']!r} exists."
        )
    if not workflow.active:
        return error_reply(
            400, "WORKFLOW_INACTIVE", f"Workflow {workflow.id} has no active version."
        )
    if not workflow.api_enabled:
        return error_reply(
            403,
            "API_TRIGGER_DISABLED",
            f"Workflow {workflow.id} cannot be triggered through the API.",
        )
    devices, users = body["devices"], body["users"]
    problem = _dependency_problem(workflow, devices, users)
    if problem:
        return error_reply(400, "INVALID_TARGETS", problem)
    targets = [_device_target(inventory, d, version) for d in devices]
    targets += [_user_target(inventory, u, version) for u in users]
    record = state.record_execution(
        workflow=workflow,
        version=version,
        devices=devices,
        users=users,
        params=body.get("params"),
        source_header=request.header("Source"),
        targets=targets,
        forced_failure=faults.fails_workflow(workflow.id),
    )
    if faults.take_fail_after_accept(request.path):
        # The executions exist and progress; only the answer is lost.
        reply = error_reply(500, "INTERNAL_ERROR", "Simulated server error after execution.")
        reply.fault = "fail_after_accept"
        return reply
    reply = json_reply(
        200, {"requestUuid": record.request_uuid, "executionsUuids": record.execution_uuids}
    )
    reply.hang = faults.take_hang(request.path)
    if reply.hang:
        reply.fault = "timeout_after_accept"
    return reply


def trigger_wait_for_event(request: Incoming, *, catalogue: Catalogue, state: SimState) -> Reply:
    """POST .../workflows/{workflowUuid}/execution/{executionUuid}/trigger: resume a wait.

    404 for an unknown workflow or execution, 400 for an execution that is not waiting.
    """
    workflow = catalogue.by_uuid(request.path_params["workflowUuid"])
    if workflow is None:
        return error_reply(
            404,
            "WORKFLOW_NOT_FOUND",
            f"No workflow with UUID {request.path_params['workflowUuid']}.",
        )
    execution_uuid = request.path_params["executionUuid"]
    execution = state.find_execution(execution_uuid)
    if execution is None or execution.workflow.uuid != workflow.uuid:
        return error_reply(
            404, "EXECUTION_NOT_FOUND", f"Workflow {workflow.id} has no execution {execution_uuid}."
        )
    try:
        request_uuid = state.trigger(execution_uuid, request.body.get("parameters"))
    except ValueError as exc:
        return error_reply(400, "EXECUTION_NOT_WAITING", f"Execution {execution_uuid}: {exc}.")
    return json_reply(200, [{"requestUuid": request_uuid}])
