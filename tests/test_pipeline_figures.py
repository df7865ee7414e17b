"""The pipeline figures of the full benchmark, measured in quick mode against real processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.celery_fixtures import BeatProcess, RedisServer, WorkerProcess, worker_env
from tests.nexthink_fixtures import CONTROL_TOKEN
from workflows_app.bench.context import BenchContext
from workflows_app.bench.pipeline_figures import measure_pipeline
from workflows_app.bench.report import FullReport, render
from workflows_app.simulator import Simulator

FIGURES = {
    "pipeline.bulk_overhead",
    "pipeline.follow_up_nql_calls",
    "pipeline.follow_up_cycles",
    "pipeline.worker_memory",
    "pipeline.self_service_latency",
    "pipeline.worker_scaling_1",
    "pipeline.worker_scaling_2",
    "pipeline.worker_scaling_4",
    "pipeline.token_economy",
    "pipeline.csv_export_memory",
}


class Workers:
    """What start_workers yields: the worker processes' pids, main and pool."""

    def __init__(self, workers: list[WorkerProcess]) -> None:
        self.workers = workers

    def pids(self) -> list[int]:
        return [p for w in self.workers if w.process for p in [w.process.pid, *w.pool_pids()]]


def workers_starter(
    ctx: BenchContext, queue: str, log_dir: Path
) -> Callable[[int], AbstractContextManager[Workers]]:
    """n single-process workers and beat, with ctx.env as it is at each start."""

    @contextmanager
    def start(count: int) -> Iterator[Workers]:
        env = dict(ctx.env)
        started: list[WorkerProcess] = []
        beat = BeatProcess(env, log_dir)
        try:
            for n in range(count):
                worker = WorkerProcess(env, queue, log_dir, concurrency=1, name=f"bench{n}")
                started.append(worker)
                worker.start()
            beat.start()
            yield Workers(started)
        finally:
            beat.stop()
            for worker in started:
                worker.stop()

    return start


@pytest.fixture
def bench_context(
    live_server: Any,
    transactional_db: None,
    simulator: Simulator,
    nexthink_settings: Any,
    pipeline_redis: RedisServer,
    celery_producer: Any,
    celery_queue: str,
) -> BenchContext:
    """The test database, live server, session simulator and private Redis as a BenchContext."""
    # Production settings: one token cache for every worker (the test settings give each
    # process a cache of its own, which would count one token fetch per worker).
    env = {
        **worker_env(simulator, pipeline_redis, celery_queue),
        "DJANGO_SETTINGS_MODULE": "portal.settings",
    }
    return BenchContext(
        database_url=env["DATABASE_URL"],
        portal_url=live_server.url,
        simulator_url=simulator.base_url,
        simulator_token=CONTROL_TOKEN,
        env=env,
        quick=True,
    )


def test_quick_run_reports_every_pipeline_figure_with_samples(
    bench_context: BenchContext, celery_queue: str, tmp_path: Path
) -> None:
    report = FullReport()
    start = workers_starter(bench_context, celery_queue, tmp_path)
    measure_pipeline(bench_context, report, start_workers=start)
    print(render(report))
    by_key = {f.key: f for f in report.figures}
    assert set(by_key) == FIGURES
    assert all(f.samples for f in report.figures), render(report)
    assert all(f.met is None for f in report.figures)
    assert by_key["pipeline.worker_memory"].samples[0] > 0
