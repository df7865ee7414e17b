"""Writing many targets' text columns at once: the one way the pipeline updates targets in bulk.

On PostgreSQL one UPDATE joins the targets with the new values sent as arrays (`unnest`), in
chunks of CHUNK rows: linear in the rows. Django's `bulk_update` writes a CASE with one branch per
row, which PostgreSQL evaluates for every row it updates: recording 10,000 execution ids took
5.6 s that way and 0.17-0.33 s this way (see the closing note of issue 11). Other databases
(SQLite in demo mode) keep `bulk_update`.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, models

from workflows_app.models import Target

CHUNK = 10_000
BULK_UPDATE_BATCH = 1_000


def update_targets(rows: Sequence[Target], fields: Sequence[str]) -> None:
    """Write `fields` (text columns) of each target in `rows` (saved targets, by id)."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        Target.objects.bulk_update(rows, list(fields), batch_size=BULK_UPDATE_BATCH)
        return
    columns = []
    for name in fields:
        column = Target._meta.get_field(name)
        if not isinstance(column, models.CharField | models.TextField):
            raise TypeError(f"update_targets writes text columns only, not {name}")
        columns.append(connection.ops.quote_name(column.column))
    table = connection.ops.quote_name(Target._meta.db_table)
    assignments = ", ".join(f"{c} = v.{c}" for c in columns)
    arrays = ", ".join("%s::text[]" for _ in columns)
    sql = (
        f"UPDATE {table} AS t SET {assignments} FROM unnest(%s::bigint[], {arrays}) "
        f"AS v(id, {', '.join(columns)}) WHERE t.id = v.id"
    )
    with connection.cursor() as cursor:
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            values = [[getattr(row, name) for row in chunk] for name in fields]
            cursor.execute(sql, [[row.pk for row in chunk], *values])
