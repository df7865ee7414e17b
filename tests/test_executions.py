"""Reading `workflow.executions` rows: column names in any shape, status words known or not."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from workflows_app.models import Outcome
from workflows_app.services.executions import Columns, outcome_of, parse_rows, parse_time

ROW = {
    "request_id": "0F9C2B1E-0000-4000-8000-000000000001",
    "execution_id": "5B4D0C3A-0000-4000-8000-000000000002",
    "request_time": "2026-11-28T10:15:30Z",
    "workflow.nql_id": "#clear_teams_cache",
    "workflow.name": "Clear Teams cache",
    "device.name": "PC-042",
    "device.collector.uid": "3FA85F64-5717-4562-B3FC-2C963F66AFA6",
    "user.upn": None,
    "status": "success",
    "status_details": "Workflow completed",
    "outcome": "success",
    "outcome_details": "Cache cleared",
}
OWN_FIELDS = (
    "request_id",
    "execution_id",
    "request_time",
    "status",
    "status_details",
    "outcome",
    "outcome_details",
)


def shaped(row: dict, prefix: str) -> dict:
    """The row as a query naming the table's own fields with a prefix would answer it."""
    return {(prefix + key if key in OWN_FIELDS else key): value for key, value in row.items()}


@pytest.mark.parametrize("prefix", ["", "execution.", "workflow.executions."])
def test_columns_are_found_by_their_last_segments_whatever_the_prefix(prefix: str) -> None:
    (row,) = parse_rows([shaped(ROW, prefix)])
    assert row.execution_id == "5b4d0c3a-0000-4000-8000-000000000002"
    assert row.request_id == "0f9c2b1e-0000-4000-8000-000000000001"
    assert row.request_time == datetime(2026, 11, 28, 10, 15, 30, tzinfo=UTC)
    assert (row.status, row.status_details) == ("success", "Workflow completed")
    assert (row.upstream_outcome, row.outcome_details) == ("success", "Cache cleared")
    assert row.outcome == Outcome.SUCCESS and not row.still_open
    assert ("device_name", "pc-042") in row.identities
    assert ("device_collector", "3fa85f64-5717-4562-b3fc-2c963f66afa6") in row.identities


def test_a_field_of_another_table_is_not_taken_for_the_executions_own() -> None:
    columns = Columns(["workflow.name", "device.name", "execution.status", "status_details"])
    assert columns.find("status") == "execution.status"
    assert columns.find("device.name") == "device.name"
    assert columns.find("name") in ("workflow.name", "device.name")  # never asked for
    assert columns.find("outcome") is None
    assert columns.missing(["status", "execution_id"]) == ["execution_id"]


@pytest.mark.parametrize(
    ("status", "outcome", "expected"),
    [
        ("success", "", Outcome.SUCCESS),
        ("failure", "", Outcome.FAILURE),
        ("in_progress", "", Outcome.RUNNING),
        ("pending", "", Outcome.PENDING),
        ("waiting_for_event", "", Outcome.WAITING),
        ("SUCCESS", "", Outcome.SUCCESS),
        ("timed_out", "failure", Outcome.FAILURE),  # an unknown word: the outcome column tells
        ("paused_by_policy", "", Outcome.UNKNOWN),
        ("", "", Outcome.UNKNOWN),
    ],
)
def test_status_words_map_to_outcomes(status: str, outcome: str, expected: Outcome) -> None:
    assert outcome_of(status, outcome) == expected


def test_an_unknown_status_is_kept_raw_and_asked_about_again() -> None:
    (row,) = parse_rows([{**ROW, "status": "paused_by_policy", "outcome": None}])
    assert (row.status, row.outcome) == ("paused_by_policy", Outcome.UNKNOWN)
    assert row.still_open  # the portal cannot tell: it asks again until the horizon


def test_rows_without_an_execution_id_are_skipped_and_times_parse_in_every_shape() -> None:
    rows = parse_rows([{**ROW, "execution_id": ""}, {**ROW, "request_time": None}])
    assert len(rows) == 1 and rows[0].request_time is None
    assert parse_time("2026-11-28T10:15:30") == datetime(2026, 11, 28, 10, 15, 30, tzinfo=UTC)
    assert parse_time("not a time") is None
    parts = {"year": 2026, "month": 11, "day": 28, "hour": 1, "minute": 2, "second": 3}
    (row,) = parse_rows([{**ROW, "request_time": parts}])
    assert row.request_time == datetime(2026, 11, 28, 1, 2, 3, tzinfo=UTC)


def test_headers_name_columns_even_for_rows_given_as_csv() -> None:
    headers = ["execution.execution_id", "execution.status"]
    csv_rows = [{"execution.execution_id": "ABC", "execution.status": "in_progress"}]
    (row,) = parse_rows(csv_rows, headers)
    assert (row.execution_id, row.outcome) == ("abc", Outcome.RUNNING)
