"""Writing many targets' text columns at once: the one way the pipeline updates targets in bulk.

On PostgreSQL one UPDATE joins the targets with the new values sent as arrays (`unnest`), in
chunks of CHUNK rows: linear in the rows. Django's `bulk_update` writes a CASE with one branch per
row, which PostgreSQL evaluates for every row it updates: recording 10,000 execution ids took
5.6 s that way and 0.17-0.33 s this way (see the closing note of issue 11). Each array is sent as
one array literal (a single text parameter) rather than as a Python list, which psycopg would
adapt element by element, and a value every row shares is sent once: recording a batch's
execution ids builds no model instance at all (`write_columns`). Other databases (SQLite in
demo mode) keep `bulk_update`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from django.db import connection, models

from workflows_app.models import Target

CHUNK = 10_000
BULK_UPDATE_BATCH = 1_000
# Non-empty elements an array literal can hold unquoted (UUIDs), joined by commas: no quote,
# brace, backslash or space, and never the word NULL (it has letters outside a-f).
_BARE_LIST = re.compile(r"[0-9a-fA-F-]+(?:,[0-9a-fA-F-]+)*")


def update_targets(rows: Sequence[Target], fields: Sequence[str]) -> None:
    """Write `fields` (text columns) of each target in `rows` (saved targets, by id)."""
    if not rows:
        return
    write_columns(
        [row.pk for row in rows], {name: [getattr(row, name) for row in rows] for name in fields}
    )


def write_columns(
    ids: Sequence[int],
    values: Mapping[str, Sequence[str]],
    *,
    same: Mapping[str, str] | None = None,
) -> None:
    """Give target `ids[i]` the text `values[field][i]` of each field, and `same[field]` to all."""
    same = same or {}
    if not ids:
        return
    if connection.vendor != "postgresql":
        rows = [
            Target(pk=pk, **{name: column[i] for name, column in values.items()}, **same)
            for i, pk in enumerate(ids)
        ]
        Target.objects.bulk_update(rows, [*values, *same], batch_size=BULK_UPDATE_BATCH)
        return
    varying = [_text_column(name) for name in values]
    shared = [_text_column(name) for name in same]
    table = connection.ops.quote_name(Target._meta.db_table)
    assignments = [f"{c} = v.{c}" for c in varying] + [f"{c} = %s" for c in shared]
    arrays = "".join(", %s::text[]" for _ in varying)
    names = "".join(f", {c}" for c in varying)
    sql = (
        f"UPDATE {table} AS t SET {', '.join(assignments)} FROM unnest(%s::bigint[]{arrays}) "
        f"AS v(id{names}) WHERE t.id = v.id"
    )
    with connection.cursor() as cursor:
        for start in range(0, len(ids), CHUNK):
            end = start + CHUNK
            cursor.execute(
                sql,
                [
                    *same.values(),
                    "{" + ",".join(map(str, ids[start:end])) + "}",
                    *(text_array(column[start:end]) for column in values.values()),
                ],
            )


def text_array(values: Sequence[str]) -> str:
    """A PostgreSQL text[] literal of `values`, each element quoted unless it needs no quotes."""
    joined = ",".join(values)
    # The count tells a comma inside a value from one between values.
    if _BARE_LIST.fullmatch(joined) and joined.count(",") + 1 == len(values):
        return "{" + joined + "}"
    quoted = (v.replace("\\", "\\\\").replace('"', '\\"') for v in values)
    return "{" + ",".join(f'"{v}"' for v in quoted) + "}"


def _text_column(name: str) -> str:
    """The quoted column of one of Target's text fields (TypeError for any other field)."""
    column = Target._meta.get_field(name)
    if not isinstance(column, models.CharField | models.TextField):
        raise TypeError(f"update_targets writes text columns only, not {name}")
    return connection.ops.quote_name(column.column)
