"""Pydantic models of the Nexthink Workflows and NQL APIs: strict requests, tolerant responses.

Request models refuse unknown fields and enforce the spec's patterns and limits before anything is
sent. Response models ignore unknown fields and survive the spec's known quirks (see
docs/NEXTHINK-FACTS.md): recursive `triggerMethods`/`versions`, one object instead of a list, ...
Spec: workflows_app/simulator/openapi/nexthink-workflows-openapi.json (kept with the simulator,
whose validator checks every request the portal sends against it in the tests)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    computed_field,
    model_validator,
)

# Exactly the spec's regexes.
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
SID_PATTERN = r"^S(-\d+){2,10}$|^0$"
UPN_PATTERN = r"^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$"
# Not in the Workflows spec: the NQL API's saved-query identifier.
NQL_QUERY_ID_PATTERN = r"^#[a-z0-9_]{2,255}$"
MAX_TARGETS = 10_000

Uuid = Annotated[str, StringConstraints(pattern=UUID_PATTERN)]
Sid = Annotated[str, StringConstraints(pattern=SID_PATTERN)]
Upn = Annotated[str, StringConstraints(pattern=UPN_PATTERN)]
NonEmptyStr = Annotated[str, StringConstraints(min_length=1)]


class Dependency(StrEnum):
    """What a workflow targets (filter of "List workflows")."""

    USER = "USER"
    DEVICE = "DEVICE"
    USER_AND_DEVICE = "USER_AND_DEVICE"
    NONE = "NONE"


class TriggerMethod(StrEnum):
    """How a workflow may be started (filter of "List workflows")."""

    API = "API"
    MANUAL = "MANUAL"
    MANUAL_MULTIPLE = "MANUAL_MULTIPLE"
    SCHEDULER = "SCHEDULER"


class WorkflowStatus(StrEnum):
    """Whether a workflow can run."""

    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"


class RequestModel(BaseModel):
    """Base of the bodies we send: unknown fields are errors, `payload()` is the JSON to send."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def payload(self) -> dict[str, Any]:
        """Return the JSON body to send (None fields left out)."""
        return self.model_dump(mode="json", exclude_none=True)


class ResponseModel(BaseModel):
    """Base of the answers we parse: unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)


def _require_one_target(devices: list[Any], users: list[Any]) -> None:
    # The spec marks both lists required; its prose says one may be empty. Send both, need one.
    if not devices and not users:
        raise ValueError("at least one device or user is required")


class ExecutionRequest(RequestModel):
    """Body of "Trigger a workflow V1": Collector UUIDs and SIDs."""

    workflowId: NonEmptyStr
    devices: list[Uuid] = Field(default_factory=list, max_length=MAX_TARGETS)
    users: list[Sid] = Field(default_factory=list, max_length=MAX_TARGETS)
    params: dict[str, str] | None = None

    @model_validator(mode="after")
    def _check_targets(self) -> Self:
        _require_one_target(self.devices, self.users)
        return self


class DeviceData(RequestModel):
    """A device chosen by name, uid or Collector UUID (v2); at least one is required."""

    name: NonEmptyStr | None = None
    uid: Uuid | None = None
    collectorUid: Uuid | None = None

    @model_validator(mode="after")
    def _check_identifier(self) -> Self:
        if self.name is None and self.uid is None and self.collectorUid is None:
            raise ValueError("a device needs a name, uid or collectorUid")
        return self


class UserData(RequestModel):
    """A user chosen by uid, UPN or SID (v2); at least one is required."""

    uid: Uuid | None = None
    upn: Upn | None = None
    sid: Sid | None = None

    @model_validator(mode="after")
    def _check_identifier(self) -> Self:
        if self.uid is None and self.upn is None and self.sid is None:
            raise ValueError("a user needs a uid, upn or sid")
        return self


class ExternalIdsExecutionRequest(RequestModel):
    """Body of "Trigger a workflow V2": devices and users by external identifiers."""

    workflowId: NonEmptyStr
    devices: list[DeviceData] = Field(default_factory=list, max_length=MAX_TARGETS)
    users: list[UserData] = Field(default_factory=list, max_length=MAX_TARGETS)
    params: dict[str, str] | None = None

    @model_validator(mode="after")
    def _check_targets(self) -> Self:
        _require_one_target(self.devices, self.users)
        return self


class ThinkletTriggerRequest(RequestModel):
    """Body of "Trigger wait for event": parameters for the waiting step."""

    parameters: dict[str, NonEmptyStr] | None = None


class NqlRequest(RequestModel):
    """Body of `POST /api/v2/nql/execute`: a saved query and its `$parameters`."""

    queryId: Annotated[str, StringConstraints(pattern=NQL_QUERY_ID_PATTERN)]
    parameters: dict[str, str] | None = None


class NqlExportRequest(RequestModel):
    """Body of `POST /api/v1/nql/export`: a saved query, its `$parameters`, a compression."""

    queryId: Annotated[str, StringConstraints(pattern=NQL_QUERY_ID_PATTERN)]
    parameters: dict[str, str] | None = None
    compression: Literal["NONE", "GZIP", "ZSTD"] | None = None


class ExecutionResponse(ResponseModel):
    """Answer of execute v1/v2: one request UUID, one execution UUID per target."""

    requestUuid: NonEmptyStr
    executionsUuids: list[str] = Field(min_length=1)


class ErrorResponse(ResponseModel):
    """Error body of the Workflows API."""

    code: str = ""
    details: str = ""


class ThinkletTriggerResponse(ResponseModel):
    """One element of the "Trigger wait for event" answer."""

    requestUuid: NonEmptyStr


# Keys that name a trigger method inside an object, e.g. {"type": "API", "enabled": true}.
_NAME_KEYS = ("name", "type", "method", "triggerMethod", "trigger_method", "trigger", "value", "id")
_FLAG_KEYS = ("enabled", "active", "isEnabled", "is_enabled", "value")
_ALIASES = {"SCHEDULE": "SCHEDULER", "SCHEDULED": "SCHEDULER", "MANUAL_MULTI": "MANUAL_MULTIPLE"}
_MAX_DEPTH = 6


_PREFIXES = ("IS_", "ENABLE_", "ALLOW_")
_SUFFIXES = ("_ENABLED", "_ENABLE", "_TRIGGER", "_ALLOWED", "_ACTIVE")


def _trigger_method(value: Any) -> TriggerMethod | None:
    """Map "api", "manualMultiple", "apiEnabled", "manual-multiple", ... to a TriggerMethod."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", value.strip())
    name = re.sub(r"[\s\-]+", "_", name).upper()
    for prefix in _PREFIXES:
        name = name.removeprefix(prefix)
    for suffix in _SUFFIXES:
        name = name.removesuffix(suffix)
    name = _ALIASES.get(name, name)
    return TriggerMethod.__members__.get(name)


def _is_enabled(flag: Any) -> bool:
    """Read an "enabled" flag that may be a bool, a string or a nested object."""
    if isinstance(flag, str):
        return flag.strip().lower() not in {"", "false", "0", "no", "off", "disabled"}
    if isinstance(flag, dict):
        for key in _FLAG_KEYS:
            if key in flag:
                return _is_enabled(flag[key])
        return True
    return bool(flag) if isinstance(flag, bool | int | float) else flag is not None


def _walk_triggers(value: Any, depth: int) -> Iterator[TriggerMethod]:
    if depth > _MAX_DEPTH:
        return
    if isinstance(value, str):
        # "API" or "API,MANUAL".
        for token in re.split(r"[,;|]+", value):
            method = _trigger_method(token)
            if method is not None:
                yield method
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _walk_triggers(item, depth + 1)
    elif isinstance(value, dict):
        yield from _walk_trigger_object(value, depth)


def _walk_trigger_object(value: dict[Any, Any], depth: int) -> Iterator[TriggerMethod]:
    named = [value[key] for key in _NAME_KEYS if _trigger_method(value.get(key)) is not None]
    if named:
        # One trigger described by an object, possibly switched off: {"type": "API", "enabled": 0}.
        flags = [
            value[key] for key in _FLAG_KEYS if key in value and _trigger_method(value[key]) is None
        ]
        if all(_is_enabled(flag) for flag in flags):
            yield from _walk_triggers(named[0], depth + 1)
        return
    for key, item in value.items():
        method = _trigger_method(key)
        if method is not None:
            # A map of flags: {"API": true, "MANUAL": {"enabled": false}}.
            if _is_enabled(item):
                yield method
        elif not isinstance(item, str) or _looks_like_trigger_key(key):
            # A wrapper: {"triggerMethods": [...]}, {"values": [...]}; free text is skipped.
            yield from _walk_triggers(item, depth + 1)


def _looks_like_trigger_key(key: Any) -> bool:
    return isinstance(key, str) and ("trigger" in key.lower() or "method" in key.lower())


def parse_trigger_methods(value: Any) -> frozenset[TriggerMethod]:
    """Derive the trigger methods from any shape of `triggerMethods`; never raises."""
    try:
        return frozenset(_walk_triggers(value, 0))
    except Exception:  # noqa: BLE001 - a malformed payload must never break the catalogue
        return frozenset()


class Workflow(ResponseModel):
    """A workflow's configuration, parsed tolerantly; the payload is kept whole in `raw`."""

    model_config = ConfigDict(extra="ignore", frozen=False, populate_by_name=True)

    id: str
    uuid: str
    name: str
    description: str = ""
    status: WorkflowStatus
    lastUpdateTime: datetime
    trigger_methods_raw: Any = Field(default=None, alias="triggerMethods")
    versions_raw: Any = Field(default=None, alias="versions")
    raw: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _keep_raw(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        raw = data.get("raw")
        if not isinstance(raw, dict):
            # The payload as received; a model dumped and re-validated keeps its original raw.
            data["raw"] = {k: v for k, v in data.items() if k != "raw"}
        status = data.get("status")
        status = status.strip().upper() if isinstance(status, str) else None
        # A missing or unknown status must not hide the catalogue: treat it as not runnable.
        data["status"] = status if status in WorkflowStatus.__members__ else "INACTIVE"
        if data.get("description") is None:
            data["description"] = ""
        return data

    @computed_field  # type: ignore[prop-decorator]
    @cached_property
    def trigger_methods(self) -> frozenset[TriggerMethod]:
        """Trigger methods found in `triggerMethods`, whatever its shape; unknown ones ignored."""
        return parse_trigger_methods(self.trigger_methods_raw)

    @property
    def is_active(self) -> bool:
        """Whether the workflow is active."""
        return self.status is WorkflowStatus.ACTIVE

    @property
    def api_enabled(self) -> bool:
        """Whether the workflow can be started through the API (execute answers 403 otherwise)."""
        return TriggerMethod.API in self.trigger_methods


class NqlResponse(ResponseModel):
    """Answer of `POST /api/v2/nql/execute`; v1-style rows (arrays) are turned into objects."""

    queryId: str
    executedQuery: str = ""
    rows: int = 0
    executionDateTime: Any = None
    headers: list[str] | None = None
    data: list[dict[str, Any]] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _rows_as_objects(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        rows, headers = data.get("data"), data.get("headers")
        if isinstance(rows, list) and isinstance(headers, list):
            if any(isinstance(row, list) for row in rows):
                data = dict(data)
                data["data"] = [
                    dict(zip(headers, row, strict=False)) if isinstance(row, list) else row
                    for row in rows
                ]
        if data.get("rows") is None and isinstance(data.get("data"), list):
            data = {**data, "rows": len(data["data"])}
        return data

    @property
    def executed_at(self) -> datetime | None:
        """When the query ran, from an ISO string or a {year, month, day, ...} object."""
        value = self.executionDateTime
        try:
            if isinstance(value, str):
                return datetime.fromisoformat(value.replace("Z", "+00:00"))
            if isinstance(value, dict):
                parts = {k: int(value.get(k, 0)) for k in ("hour", "minute", "second")}
                return datetime(
                    int(value["year"]), int(value["month"]), int(value["day"]), **parts, tzinfo=UTC
                )
        except (KeyError, TypeError, ValueError):
            return None
        return None


class NqlExportResponse(ResponseModel):
    """Answer of `POST /api/v1/nql/export`: the id to poll the export's status with."""

    exportId: NonEmptyStr


class NqlExportStatus(ResponseModel):
    """Answer of `GET /api/v1/nql/status/{exportId}`.

    `status` is kept as answered (SUBMITTED, IN_PROGRESS, COMPLETED, ERROR, or a value not
    documented yet); `resultsFileUrl` is a pre-signed link valid for a short while (15 minutes).
    """

    status: str
    resultsFileUrl: str | None = None
    errorDescription: str | None = None

    @property
    def done(self) -> bool:
        """Whether the export completed: its file can be downloaded from `resultsFileUrl`."""
        return self.status.strip().upper() == "COMPLETED"

    @property
    def failed(self) -> bool:
        """Whether the export ended in error (`errorDescription` says why)."""
        return self.status.strip().upper() == "ERROR"
