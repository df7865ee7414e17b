"""Message priorities (services/dispatch.py): a person waiting is served before bulk and beat."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings

from tests.celery_fixtures import BROKER_DB, CACHE_DB, RedisServer
from tests.test_run_views import make_workflow
from workflows_app.models import Run
from workflows_app.services import dispatch
from workflows_app.services.runs import create_run
from workflows_app.targets import parse_text

# Batch ids no test database holds: these messages are read back here, never by a worker.
NO_BATCH = 2_000_000_000
# A database of the session's private Redis that neither its broker nor its cache uses.
PRIORITY_DB = max(BROKER_DB, CACHE_DB) + 5


@pytest.fixture
def own_queue(pipeline_redis: RedisServer) -> Iterator[tuple[Any, str]]:
    """This process's Celery app publishing to a Redis database of this test alone, and the
    name of the queue its messages go to there.

    Not the session's `celery_producer`, nor its broker database: the app's connection pools
    are shared per broker URL, so this test neither redirects the session's messages nor
    closes a pool the pipeline and browser tests' workers publish through.
    """
    from portal.celery import app

    saved = (app.conf.broker_url, app._pool, app.amqp._producer_pool)
    app.conf.broker_url = pipeline_redis.url(PRIORITY_DB)
    app._pool = app.amqp._producer_pool = None  # the new URL's pools; the others stay open
    try:
        yield app, app.conf.task_default_queue
    finally:
        with app.connection_for_write() as conn:
            conn.default_channel.client.flushdb()  # this test's database alone
        app.conf.broker_url, app._pool, app.amqp._producer_pool = saved


def test_a_click_is_served_before_queued_bulk_batches_and_beats_work(
    own_queue: tuple[Any, str],
) -> None:
    app, name = own_queue
    for n in range(3):
        dispatch.enqueue_batch(NO_BATCH + n)
    beat = settings.CELERY_BEAT_SCHEDULE
    app.send_task(dispatch.SWEEP_BATCHES, **beat["sweep-batches"]["options"])  # as beat sends it
    dispatch.enqueue_check(NO_BATCH + 5)
    app.send_task(dispatch.FOLLOW_UP, **beat["follow-up"]["options"])
    dispatch.enqueue_batch(NO_BATCH + 9, priority=dispatch.batch_priority(1))

    taken = []
    with app.connection_for_write() as conn:  # the broker the messages were just sent to
        queue = conn.SimpleQueue(name)
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
    # Beat's messages wait behind both, but for the follow-up cycle, which only queues checks.
    assert {
        name: entry["options"]["priority"] for name, entry in settings.CELERY_BEAT_SCHEDULE.items()
    } == {
        **dict.fromkeys(settings.CELERY_BEAT_SCHEDULE, dispatch.BACKGROUND),
        "follow-up": dispatch.INTERACTIVE,
    }
