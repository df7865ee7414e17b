"""The NQL queries an admin saved in the simulated tenant: their text, fields and rows.

Shared by NQL execute (at most 1,000 rows) and the export API (every row, as a CSV file).
Field names come back in the shape a tenant is configured with (`ColumnShape`): Nexthink's
answers have been seen naming the execution table's own fields `status`, `execution.status` or
`workflow.executions.status`; fields of another table (`device.name`) keep their name.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from .catalogue import iso
from .inventory import Inventory
from .replies import Reply, error_reply
from .state import SimState, SimTargetExecution

ColumnShape = Literal["plain", "execution", "table"]
_PREFIXES: dict[str, str] = {
    "plain": "",
    "execution": "execution.",
    "table": "workflow.executions.",
}

# The fields of workflow.executions the portal's two saved queries list, in their order.
WORKFLOW_EXECUTION_FIELDS = (
    "request_id",
    "execution_id",
    "request_time",
    "workflow.nql_id",
    "workflow.name",
    "device.name",
    "device.uid",
    "device.collector.uid",
    "user.sid",
    "user.upn",
    "user.uid",
    "status",
    "status_details",
    "outcome",
    "outcome_details",
)
# What the older saved queries (#portal_execution_status, #portal_execution_by_id) list.
EXECUTION_FIELDS = (
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
)
DEVICE_FIELDS = ("device.name", "device.uid", "device.collector.uid", "device.last_seen")

_LIST = ", ".join(WORKFLOW_EXECUTION_FIELDS)
_LEGACY_NQL = "workflow.executions during past 30d | where {where} | list " + ", ".join(
    EXECUTION_FIELDS
)
RECENT_PERIOD = timedelta(days=1)

Rows = Callable[[Inventory, SimState, str], list[dict[str, Any]]]


@dataclass(frozen=True)
class SavedQuery:
    """An NQL API query an admin saved in Nexthink: its text, parameter, fields and rows."""

    query_id: str
    parameter: str
    nql: str
    headers: tuple[str, ...]
    rows: Rows

    def columns(self, shape: ColumnShape) -> list[str]:
        """The field names as a tenant with this column shape answers them."""
        return [shaped(name, shape) for name in self.headers]


def shaped(field: str, shape: ColumnShape) -> str:
    """A field's name in a column shape: only the execution table's own fields change."""
    return field if "." in field else _PREFIXES[shape] + field


def _user_devices(inventory: Inventory, state: SimState, upn: str) -> list[dict[str, Any]]:
    return [
        {
            "device.name": d.name,
            "device.uid": d.uid,
            "device.collector.uid": d.collector_uid,
            "device.last_seen": iso(d.last_seen),
        }
        for d in inventory.devices_of(upn)
    ]


def _rows(executions: Iterable[SimTargetExecution], since: datetime) -> list[dict[str, Any]]:
    return [e.to_row() for e in executions if e.request_time >= since]


def _request_executions(
    inventory: Inventory, state: SimState, request_id: str
) -> list[dict[str, Any]]:
    since = datetime.now(UTC) - RECENT_PERIOD
    return _rows(state.executions_of_request(request_id), since)


def _recent_executions(
    inventory: Inventory, state: SimState, workflow_id: str
) -> list[dict[str, Any]]:
    since = datetime.now(UTC) - RECENT_PERIOD
    return _rows(state.executions_of_workflow(workflow_id, since=since), since)


def _request_status(inventory: Inventory, state: SimState, request_id: str) -> list[dict[str, Any]]:
    return [e.to_row() for e in state.executions_of_request(request_id)]


def _execution_by_id(
    inventory: Inventory, state: SimState, execution_id: str
) -> list[dict[str, Any]]:
    found = state.find_execution(execution_id)
    return [found.to_row()] if found else []


USER_DEVICES_QUERY = SavedQuery(
    "#portal_user_devices",
    "upn",
    "devices during past 90d | where user.upn == $upn | list device.name, "
    "device.uid, device.collector.uid, device.last_seen | sort last_seen desc",
    DEVICE_FIELDS,
    _user_devices,
)
# The portal's follow-up: every execution of one request (the requestUuid of a batch).
EXECUTIONS_QUERY = SavedQuery(
    "#portal_workflow_executions",
    "request_id",
    f"workflow.executions during past 1d | where request_id == $request_id | list {_LIST}",
    WORKFLOW_EXECUTION_FIELDS,
    _request_executions,
)
# The portal's reconciliation: a workflow's executions requested in the past 24 h, newest first.
RECENT_EXECUTIONS_QUERY = SavedQuery(
    "#portal_recent_workflow_executions",
    "workflow_id",
    "workflow.executions during past 1d | where workflow.nql_id == $workflow_id "
    f"| list {_LIST} | sort request_time desc",
    WORKFLOW_EXECUTION_FIELDS,
    _recent_executions,
)

SAVED_QUERIES = {
    q.query_id: q
    for q in (
        USER_DEVICES_QUERY,
        EXECUTIONS_QUERY,
        RECENT_EXECUTIONS_QUERY,
        SavedQuery(
            "#portal_execution_status",
            "request_id",
            _LEGACY_NQL.format(where="request_id == $request_id"),
            EXECUTION_FIELDS,
            _request_status,
        ),
        SavedQuery(
            "#portal_execution_by_id",
            "execution_id",
            _LEGACY_NQL.format(where="execution_id == $execution_id"),
            EXECUTION_FIELDS,
            _execution_by_id,
        ),
    )
}


def requested_query(body: dict[str, Any]) -> tuple[SavedQuery, str] | Reply:
    """The saved query a valid NQL request names and its parameter's value, or the refusal."""
    query_id: str = body["queryId"]
    query = SAVED_QUERIES.get(query_id)
    if query is None:
        return error_reply(404, "QUERY_NOT_FOUND", f"No NQL API query with id {query_id}.")
    parameters: dict[str, str] = body.get("parameters") or {}
    value = parameters.get(query.parameter)
    if value is None or value == "":
        return error_reply(
            400, "INVALID_PARAMETERS", f"Query {query_id} needs the parameter {query.parameter!r}."
        )
    return query, value


def table(
    query: SavedQuery,
    value: str,
    *,
    inventory: Inventory,
    state: SimState,
    shape: ColumnShape,
    limit: int | None = None,
) -> tuple[list[str], list[dict[str, Any]]]:
    """The query's answer now: field names in the tenant's shape and rows keyed by them."""
    rows = query.rows(inventory, state, value)
    if limit is not None:
        rows = rows[:limit]
    names = dict(zip(query.headers, query.columns(shape), strict=True))
    return list(names.values()), [{names[h]: row[h] for h in query.headers} for row in rows]


def to_csv(headers: list[str], rows: list[dict[str, Any]]) -> bytes:
    """A CSV file (UTF-8, header row first) as Nexthink's NQL API writes it; None is empty."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows([["" if r[h] is None else r[h] for h in headers] for r in rows])
    return buffer.getvalue().encode()
