"""`manage.py show_run RUN_ID [--json]`: a run seen from the shell."""

from __future__ import annotations

import json
from collections.abc import Iterator
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from tests.test_run_views import make_run, make_workflow
from workflows_app.models import Batch, BatchState, Outcome, Run, Target
from workflows_app.selectors.runs import targets_of
from workflows_app.services import lifecycle

pytestmark = pytest.mark.django_db


def show(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("show_run", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def run(helpdesk, enqueued) -> Run:
    """A run of three targets: one succeeded, one failed with Nexthink's words, one unknown."""
    run = make_run(helpdesk, make_workflow("#clear_teams_cache"), count=3)
    Batch.objects.filter(run=run).update(
        state=BatchState.SUBMITTED,
        request_uuid="5e1f0c4a-0000-4000-8000-00000000000a",
        attempts=1,
        finished_at=timezone.now(),
        next_check_at=timezone.now(),
        check_error="NQL answered 429: asked again later",
    )
    for position, (outcome, status, details) in enumerate(
        [
            (Outcome.SUCCESS, "success", ""),
            (Outcome.FAILURE, "failure", "Teams is not installed"),
            (Outcome.UNKNOWN, "frobnicating", ""),
        ]
    ):
        Target.objects.filter(run=run, position=position).update(
            outcome=outcome,
            status=status,
            status_details=details,
            execution_uuid=f"00000000-0000-4000-9000-00000000000{position}",
        )
    batch_id = Batch.objects.get(run=run).pk
    lifecycle.recount(batch_id)
    lifecycle.refresh_run_status(run.pk)
    run.refresh_from_db()
    return run


def test_json_prints_the_run_as_one_document_and_nothing_else(run):
    out, err = show(str(run.pk), "--json")
    document = json.loads(out)  # the whole of stdout is one JSON document
    assert err == ""
    assert document == {
        "id": run.pk,
        "status": "partial",
        "kind": "workflow",
        "workflow": "#clear_teams_cache",
        "batches": [
            {
                "number": 1,
                "state": "submitted",
                "request_id": "5e1f0c4a-0000-4000-8000-00000000000a",
                "error_code": None,
                "error_details": None,
                "engines": [],
            }
        ],
        "targets": [
            {
                "value": "00000000-0000-0000-0000-000000000001",
                "kind": "device_collector",
                "execution_id": "00000000-0000-4000-9000-000000000000",
                "outcome": "success",
                "upstream_status": "success",
                "details": None,
            },
            {
                "value": "00000000-0000-0000-0000-000000000002",
                "kind": "device_collector",
                "execution_id": "00000000-0000-4000-9000-000000000001",
                "outcome": "failure",
                "upstream_status": "failure",
                "details": "Teams is not installed",
            },
            {
                "value": "00000000-0000-0000-0000-000000000003",
                "kind": "device_collector",
                "execution_id": "00000000-0000-4000-9000-000000000002",
                "outcome": "unknown",
                "upstream_status": "frobnicating",
                "details": None,
            },
        ],
    }


def test_json_of_a_run_not_sent_yet_has_no_outcomes(helpdesk, enqueued):
    run = make_run(helpdesk, make_workflow(), count=2)
    document = json.loads(show(str(run.pk), "--json")[0])
    assert document["status"] == "queued"
    assert document["batches"][0]["state"] == "queued"
    assert [t["outcome"] for t in document["targets"]] == [None, None]
    assert [t["execution_id"] for t in document["targets"]] == [None, None]


def test_json_streams_every_target_of_a_big_run(helpdesk, enqueued):
    run = make_run(helpdesk, make_workflow(), count=12_000)
    streamed = targets_of(run, chunk_size=500)
    assert isinstance(streamed, Iterator) and not isinstance(streamed, list)
    document = json.loads(show(str(run.pk), "--json")[0])
    assert len(document["targets"]) == 12_000
    assert [b["number"] for b in document["batches"]] == [1, 2]
    assert document["targets"][-1]["value"] == f"00000000-0000-0000-0000-{12_000:012x}"


def test_summary_reads_like_a_report(run):
    out, _ = show(str(run.pk))
    assert f"Run {run.pk}: Workflow #clear_teams_cache (#clear_teams_cache)" in out
    assert "Status:   Partly failed" in out
    assert "Outcomes: Succeeded 1 · Failed 1 · Unknown 1" in out
    assert "#1 Submitted: 3 targets, request 5e1f0c4a-0000-4000-8000-00000000000a" in out
    assert "last check failed: NQL answered 429" in out
    assert "First 3 of 3 targets:" in out
    assert "Failed [failure]: Teams is not installed" in out
    assert "Unknown [frobnicating]" in out


@pytest.mark.parametrize("run_id", ["999999", "0", str(2**63)])
def test_an_unknown_run_is_an_error(run_id, db):
    with pytest.raises(CommandError, match=f"Run {run_id} does not exist"):
        show(run_id, "--json")


def test_a_run_id_must_be_a_number(db):
    with pytest.raises(CommandError, match="invalid int value"):
        show("abc")
