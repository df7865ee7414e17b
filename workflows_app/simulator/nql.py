"""The NQL execute API (v1 and v2) answering the saved queries of `queries`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from .catalogue import iso
from .inventory import Inventory
from .queries import SAVED_QUERIES, ColumnShape, requested_query, table, to_csv
from .replies import Incoming, Reply, json_reply
from .state import SimState

MAX_ROWS = 1000
DateTimeShape = Literal["object", "iso"]

__all__ = ["MAX_ROWS", "SAVED_QUERIES", "DateTimeShape", "execute"]


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


def execute(
    request: Incoming,
    version: Literal["v1", "v2"],
    *,
    inventory: Inventory,
    state: SimState,
    datetime_shape: DateTimeShape,
    column_shape: ColumnShape,
) -> Reply:
    """POST /api/v{1,2}/nql/execute: v1 answers rows as arrays, v2 as objects; CSV on request."""
    found = requested_query(request.body)
    if isinstance(found, Reply):
        return found
    query, value = found
    headers, rows = table(
        query, value, inventory=inventory, state=state, shape=column_shape, limit=MAX_ROWS
    )
    if (request.header("Accept") or "").split(";")[0].strip().lower() == "text/csv":
        return Reply(200, to_csv(headers, rows), "text/csv")
    quoted = '"' + value.replace('"', '\\"') + '"'
    data: list[Any] = rows if version == "v2" else [[r[h] for h in headers] for r in rows]
    return json_reply(
        200,
        {
            "queryId": query.query_id,
            "executedQuery": query.nql.replace(f"${query.parameter}", quoted),
            "rows": len(rows),
            "executionDateTime": _datetime(datetime_shape),
            "headers": headers,
            "data": data,
        },
    )
