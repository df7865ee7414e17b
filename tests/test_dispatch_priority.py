"""Message priorities (services/dispatch.py): a person waiting is served before bulk and beat."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.conf import settings

from tests.celery_fixtures import _drop_queue, use_default_queue
from tests.test_run_views import make_workflow
from workflows_app.models import Run
from workflows_app.services import dispatch
from workflows_app.services.runs import create_run
from workflows_app.targets import parse_text

# Batch ids no test database holds: these messages are read back here, never by a worker.
NO_BATCH = 2_000_000_000


@pytest.fixture
def own_queue(celery_producer: Any, celery_queue: str) -> Any:
    """The producer publishing to a queue of this test alone, emptied afterwards."""
    name = f"{celery_queue}-priority"
    saved = celery_producer.conf.task_default_queue
    use_default_queue(celery_producer, name)
    try:
        yield name
    finally:
        use_default_queue(celery_producer, saved)
        with celery_producer.connection_for_write() as conn:
            _drop_queue(conn.default_channel.client, name)


def test_a_click_is_served_before_queued_bulk_batches_and_beats_work(
    celery_producer: Any, own_queue: str
) -> None:
    for n in range(3):
        dispatch.enqueue_batch(NO_BATCH + n)
    celery_producer.send_task(dispatch.SWEEP_BATCHES)  # as beat sends it: no priority of its own
    dispatch.enqueue_check(NO_BATCH + 5)
    cycle = settings.CELERY_BEAT_SCHEDULE["follow-up"]["options"]["priority"]
    celery_producer.send_task(dispatch.FOLLOW_UP, priority=cycle)  # as beat sends the cycle
    dispatch.enqueue_batch(NO_BATCH + 9, priority=dispatch.batch_priority(1))

    taken = []
    with celery_producer.connection_for_read() as conn:
        queue = conn.SimpleQueue(own_queue)
        for _ in range(7):
            message = queue.get(timeout=5)  # as a worker takes them: by priority, then in order
            taken.append((message.headers["task"], json.loads(message.body)[0]))
            message.ack()

    assert taken == [
        # The follow-up cycle only leases and queues checks: it must not expire behind batches.
        (dispatch.FOLLOW_UP, []),
        (dispatch.SUBMIT_BATCH, [NO_BATCH + 9]),
        (dispatch.SUBMIT_BATCH, [NO_BATCH]),
        (dispatch.SUBMIT_BATCH, [NO_BATCH + 1]),
        (dispatch.SUBMIT_BATCH, [NO_BATCH + 2]),
        (dispatch.CHECK_BATCH, [NO_BATCH + 5]),
        (dispatch.SWEEP_BATCHES, []),
    ]


def test_small_runs_are_interactive_and_large_ones_bulk(
    helpdesk: Any, monkeypatch: Any, django_capture_on_commit_callbacks: Any
) -> None:
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(
        dispatch, "enqueue_batch", lambda batch_id, **kw: sent.append((batch_id, kw["priority"]))
    )
    workflow = make_workflow("#priorities")
    runs = {}
    for count in (1, dispatch.INTERACTIVE_TARGETS, dispatch.INTERACTIVE_TARGETS + 1):
        lines = "\n".join(f"laptop-{count}-{n}" for n in range(count))
        with django_capture_on_commit_callbacks(execute=True):
            runs[count] = create_run(
                user=helpdesk,
                workflow=workflow,
                targets=parse_text(lines).targets,
                params={},
                reason=f"{count} targets",
                source=Run.Source.HELPDESK,
            )
    by_batch = dict(sent)
    priorities = {count: by_batch[run.batches.get().pk] for count, run in runs.items()}
    assert priorities == {
        1: dispatch.INTERACTIVE,
        dispatch.INTERACTIVE_TARGETS: dispatch.INTERACTIVE,
        dispatch.INTERACTIVE_TARGETS + 1: dispatch.BULK,
    }
    # Every other task (beat's, the catalogue sync, retention) waits behind both.
    assert settings.CELERY_TASK_ROUTES["workflows_app.tasks.*"] == {"priority": dispatch.BACKGROUND}
