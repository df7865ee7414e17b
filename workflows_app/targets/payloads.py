"""Turning parsed targets into what an execute request needs: API version, batches, the request."""

from collections.abc import Mapping, Sequence
from typing import Literal

from workflows_app.nexthink.models import (
    MAX_TARGETS,
    Dependency,
    DeviceData,
    ExecutionRequest,
    ExternalIdsExecutionRequest,
    UserData,
)

from .model import Target, TargetKind

ApiVersion = Literal["v1", "v2"]
_V1_KINDS = frozenset({TargetKind.DEVICE_COLLECTOR, TargetKind.USER_SID})
# The spec's DeviceData and UserData field that carries each kind.
_V2_FIELDS: dict[TargetKind, str] = {
    TargetKind.DEVICE_COLLECTOR: "collectorUid",
    TargetKind.DEVICE_UID: "uid",
    TargetKind.DEVICE_NAME: "name",
    TargetKind.USER_SID: "sid",
    TargetKind.USER_UPN: "upn",
    TargetKind.USER_UID: "uid",
}


def fits_v1(targets: Sequence[Target]) -> bool:
    """Whether the v1 execute call can take these targets (only Collector UUIDs and SIDs)."""
    return all(t.kind in _V1_KINDS for t in targets)


def api_version(targets: Sequence[Target]) -> ApiVersion:
    """The execute API a run of these targets goes through: v1 when it can take them all."""
    return "v1" if fits_v1(targets) else "v2"


def execution_request(
    workflow_id: str,
    targets: Sequence[Target],
    params: Mapping[str, str] | None,
    version: ApiVersion,
) -> ExecutionRequest | ExternalIdsExecutionRequest:
    """The body of one execute call: devices and users, each in the order given.

    Raises ValueError (pydantic's ValidationError is one) when the targets cannot be sent so:
    v1 with a kind other than Collector UUIDs and SIDs, too many, none, or a value off the spec.
    """
    devices = [t for t in targets if t.is_device]
    users = [t for t in targets if t.is_user]
    given = dict(params) if params is not None else None
    if version == "v1":
        if not fits_v1(targets):
            raise ValueError("only Collector UUIDs and SIDs can be sent with the v1 API")
        return ExecutionRequest(
            workflowId=workflow_id,
            devices=[t.value for t in devices],
            users=[t.value for t in users],
            params=given,
        )
    return ExternalIdsExecutionRequest(
        workflowId=workflow_id,
        devices=[DeviceData(**{_V2_FIELDS[t.kind]: t.value}) for t in devices],
        users=[UserData(**{_V2_FIELDS[t.kind]: t.value}) for t in users],
        params=given,
    )


def check_dependency(targets: Sequence[Target], dependency: str) -> list[str]:
    """Say why these targets do not suit a workflow's dependency; empty when they do."""
    try:
        dep = Dependency(str(dependency).upper())
    except ValueError:
        return [f"This workflow's target type {dependency!r} is unknown to the portal."]
    if dep is Dependency.NONE:
        if targets:
            return [f"This workflow takes no targets: remove the {_count(len(targets), 'target')}."]
        return []
    devices = [t for t in targets if t.is_device]
    users = [t for t in targets if t.is_user]
    messages: list[str] = []
    if dep is Dependency.DEVICE and users:
        messages.append(
            f"This workflow runs on devices only: remove the {_count(len(users), 'user')} "
            f"(the first is on line {users[0].line})."
        )
    if dep is Dependency.USER and devices:
        messages.append(
            f"This workflow runs on users only: remove the {_count(len(devices), 'device')} "
            f"(the first is on line {devices[0].line})."
        )
    if dep in (Dependency.DEVICE, Dependency.USER_AND_DEVICE) and not devices:
        messages.append("This workflow needs at least one device.")
    if dep in (Dependency.USER, Dependency.USER_AND_DEVICE) and not users:
        messages.append("This workflow needs at least one user.")
    return messages


def batches(targets: Sequence[Target], size: int = MAX_TARGETS) -> list[list[Target]]:
    """Split targets, in order, into requests of at most `size` devices and `size` users each."""
    if not 1 <= size <= MAX_TARGETS:
        raise ValueError(f"batch size must be between 1 and {MAX_TARGETS:,}, not {size}")
    chunks: list[list[Target]] = []
    devices = users = 0
    for target in targets:
        # The n-th device goes to chunk n // size, and so does the n-th user: devices and users
        # share requests, so the number of requests is as small as the larger list allows.
        if target.is_device:
            index, devices = devices // size, devices + 1
        else:
            index, users = users // size, users + 1
        if index == len(chunks):
            chunks.append([])
        chunks[index].append(target)
    return chunks


def _count(number: int, noun: str) -> str:
    """'1 user', '2 users'."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"
