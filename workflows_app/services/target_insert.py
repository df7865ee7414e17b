"""Writing a run's target rows in bulk: COPY on PostgreSQL, multi-row INSERTs elsewhere."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from django.db import connection
from django.db.backends.utils import CursorDebugWrapper
from django.db.models import Field

from workflows_app.models import Target

# (batch id, position in the run, kind, value): what differs between a run's target rows.
TargetRow = tuple[int, int, str, str]
_GIVEN = ("run", "batch", "position", "kind", "value")
# Rows per INSERT statement on databases without COPY (SQLite in demo mode).
INSERT_BATCH = 5_000


def copy_supported() -> bool:
    """Whether the database takes COPY ... FROM STDIN (PostgreSQL, through psycopg 3)."""
    return connection.vendor == "postgresql"


def insert_targets(run_id: int, rows: Iterable[TargetRow], *, use_copy: bool | None = None) -> None:
    """Insert a run's targets in the current transaction, with COPY where the database has it.

    Both ways store the same rows; the other columns get the model's defaults. COPY streams
    the rows in one statement, without building a model instance or SQL text for each one,
    which is what made 100,000 targets take seconds.
    """
    if use_copy is None:
        use_copy = copy_supported()
    if use_copy:
        _copy(run_id, rows)
    else:
        Target.objects.bulk_create(
            (
                Target(run_id=run_id, batch_id=batch_id, position=position, kind=kind, value=value)
                for batch_id, position, kind, value in rows
            ),
            batch_size=INSERT_BATCH,
        )


def _copy(run_id: int, rows: Iterable[TargetRow]) -> None:
    """Stream the rows with COPY; the columns and defaults come from the model."""
    meta = Target._meta
    others = [f for f in meta.concrete_fields if not f.primary_key and f.name not in _GIVEN]
    columns = [_column(name) for name in _GIVEN] + [f.column for f in others]
    defaults = tuple(f.get_default() for f in others)
    quote = connection.ops.quote_name
    sql = f"COPY {quote(meta.db_table)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
    with connection.cursor() as cursor:
        with _logged(cursor, sql), cursor.cursor.copy(sql) as copy:
            for batch_id, position, kind, value in rows:
                copy.write_row((run_id, batch_id, position, kind, value, *defaults))


def _column(name: str) -> str:
    """The database column of one of Target's concrete fields."""
    field = Target._meta.get_field(name)
    if not isinstance(field, Field):
        raise TypeError(f"Target.{name} is not a concrete field with a column")
    return field.column


def _logged(cursor: Any, sql: str) -> AbstractContextManager[None]:
    """Record the COPY in connection.queries as Django does its own queries (when DEBUG)."""
    if isinstance(cursor, CursorDebugWrapper):
        return cursor.debug_sql(sql)
    return nullcontext()
