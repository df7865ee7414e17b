"""The NQL execute API with the saved queries the portal relies on."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from .catalogue import iso
from .inventory import Inventory
from .replies import Incoming, Reply, error_reply, json_reply
from .state import SimState

MAX_ROWS = 1000
DateTimeShape = Literal["object", "iso"]

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
_EXECUTIONS_NQL = "workflow.executions during past 30d | where {where} | list " + ", ".join(
    EXECUTION_FIELDS
)


@dataclass(frozen=True)
class SavedQuery:
    """An NQL API query an admin saved in Nexthink: its text, parameters and simulated rows."""

    query_id: str
    parameter: str
    nql: str
    headers: tuple[str, ...]
    rows: Callable[[Inventory, SimState, str], list[dict[str, Any]]]


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


def _request_status(inventory: Inventory, state: SimState, request_id: str) -> list[dict[str, Any]]:
    return [e.to_row() for e in state.executions_of_request(request_id)]


def _execution_by_id(
    inventory: Inventory, state: SimState, execution_id: str
) -> list[dict[str, Any]]:
    found = state.find_execution(execution_id)
    return [found.to_row()] if found else []


SAVED_QUERIES = {
    q.query_id: q
    for q in (
        SavedQuery(
            "#portal_user_devices",
            "upn",
            "devices during past 90d | where user.upn == $upn | list device.name, "
            "device.uid, device.collector.uid, device.last_seen | sort last_seen desc",
            DEVICE_FIELDS,
            _user_devices,
        ),
        SavedQuery(
            "#portal_execution_status",
            "request_id",
            _EXECUTIONS_NQL.format(where="request_id == $request_id"),
            EXECUTION_FIELDS,
            _request_status,
        ),
        SavedQuery(
            "#portal_execution_by_id",
            "execution_id",
            _EXECUTIONS_NQL.format(where="execution_id == $execution_id"),
            EXECUTION_FIELDS,
            _execution_by_id,
        ),
    )
}


def _datetime(shape: DateTimeShape) -> Any:
    now = datetime.now(UTC).replace(microsecond=0)
    if shape == "iso":
        return iso(now)
    return {
        "year": now.year,
        "month": now.month,
        "day": now.day,
        "hour": now.hour,
        "minute": now.minute,
        "second": now.second,
    }


def _csv(headers: tuple[str, ...], rows: list[dict[str, Any]]) -> Reply:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows([["" if r[h] is None else r[h] for h in headers] for r in rows])
    return Reply(200, buffer.getvalue().encode(), "text/csv")


def execute(
    request: Incoming,
    version: Literal["v1", "v2"],
    *,
    inventory: Inventory,
    state: SimState,
    datetime_shape: DateTimeShape,
) -> Reply:
    """POST /api/v{1,2}/nql/execute: v1 answers rows as arrays, v2 as objects."""
    query_id: str = request.body["queryId"]
    query = SAVED_QUERIES.get(query_id)
    if query is None:
        return error_reply(404, "QUERY_NOT_FOUND", f"No NQL API query with id {query_id}.")
    parameters: dict[str, str] = request.body.get("parameters") or {}
    value = parameters.get(query.parameter)
    if value is None or value == "":
        return error_reply(
            400, "INVALID_PARAMETERS", f"Query {query_id} needs the parameter {query.parameter!r}."
        )
    rows = query.rows(inventory, state, value)[:MAX_ROWS]
    if (request.header("Accept") or "").split(";")[0].strip().lower() == "text/csv":
        return _csv(query.headers, rows)
    quoted = '"' + value.replace('"', '\\"') + '"'
    data: list[Any] = rows if version == "v2" else [[r[h] for h in query.headers] for r in rows]
    return json_reply(
        200,
        {
            "queryId": query_id,
            "executedQuery": query.nql.replace(f"${query.parameter}", quoted),
            "rows": len(rows),
            "executionDateTime": _datetime(datetime_shape),
            "headers": list(query.headers),
            "data": data,
        },
    )
