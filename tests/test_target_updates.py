"""Bulk target updates (services/target_updates.py): every row gets its own values, in chunks."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.test_run_views import make_run, make_workflow
from workflows_app.models import Outcome, Target
from workflows_app.services import target_updates
from workflows_app.services.target_updates import update_targets


def test_each_target_gets_its_own_values_and_no_other_row_changes(helpdesk, enqueued, monkeypatch):
    monkeypatch.setattr(target_updates, "CHUNK", 3)  # several statements
    run = make_run(helpdesk, make_workflow("#bulk"), count=8)
    other = make_run(helpdesk, make_workflow("#other"), count=2)
    targets = list(Target.objects.filter(run=run).order_by("position"))
    chosen = targets[:7]  # the last one is left alone
    for i, target in enumerate(chosen):
        target.execution_uuid = str(uuid.uuid4())
        target.outcome = Outcome.FAILURE if i % 2 else Outcome.SUCCESS
        target.outcome_details = f'it\'s "{i}" — ünïcode; DROP TABLE x; --' if i else ""

    with CaptureQueriesContext(connection) as queries:
        update_targets(chosen, ("execution_uuid", "outcome", "outcome_details"))

    stored = {t.pk: t for t in Target.objects.filter(run=run)}
    for target in chosen:
        got = stored[target.pk]
        assert (got.execution_uuid, got.outcome, got.outcome_details) == (
            target.execution_uuid,
            target.outcome,
            target.outcome_details,
        )
    untouched = stored[targets[7].pk]
    assert untouched.execution_uuid == "" and untouched.outcome == ""
    assert not Target.objects.filter(run=other).exclude(execution_uuid="").exists()
    if connection.vendor == "postgresql":
        updates = [q for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
        assert len(updates) == 3 and all("unnest" in q["sql"] for q in updates)
        assert not any("CASE" in q["sql"] for q in updates)


def test_nothing_to_write_sends_nothing_and_only_text_columns_are_written(helpdesk, enqueued):
    with CaptureQueriesContext(connection) as queries:
        update_targets([], ("outcome",))
    assert queries.captured_queries == []
    run = make_run(helpdesk, make_workflow("#bulk"), count=1)
    if connection.vendor == "postgresql":
        with pytest.raises(TypeError, match="text columns only"):
            update_targets(list(Target.objects.filter(run=run)), ("position",))


def test_execution_ids_and_shared_values_are_written_without_a_model_per_row(helpdesk, enqueued):
    run = make_run(helpdesk, make_workflow("#bulk"), count=5)
    ids = list(Target.objects.filter(run=run).order_by("position").values_list("pk", flat=True))
    uuids = [str(uuid.uuid4()).upper() if i % 2 else str(uuid.uuid4()) for i in range(5)]

    with CaptureQueriesContext(connection) as queries:
        target_updates.write_columns(
            ids[:4],
            {"execution_uuid": uuids[:4]},
            same={"outcome": Outcome.PENDING, "outcome_details": ""},
        )

    stored = dict(Target.objects.filter(run=run).values_list("pk", "execution_uuid"))
    assert [stored[pk] for pk in ids] == [*uuids[:4], ""]
    assert set(Target.objects.filter(pk__in=ids[:4]).values_list("outcome", flat=True)) == {
        Outcome.PENDING
    }
    assert Target.objects.get(pk=ids[4]).outcome == ""
    if connection.vendor == "postgresql":
        assert len(queries.captured_queries) == 1


@pytest.mark.parametrize(
    "values",
    [
        ["3f2504e0-4f89-11d3-9a0c-0305e82c3301", "ABCDEF-0123"],  # bare
        ["a,b", "c"],  # a comma inside a value
        ["", "0a"],  # an empty value
        ["NULL", 'say "hi"', "back\\slash", "{brace}", " spaced "],
    ],
)
def test_text_arrays_read_back_as_the_values_given(values, db):
    with connection.cursor() as cursor:  # the suite runs on PostgreSQL, whose literals these are
        cursor.execute("SELECT %s::text[]", [target_updates.text_array(values)])
        assert cursor.fetchone()[0] == values
