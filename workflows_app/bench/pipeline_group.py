"""The pipeline figures as a group of the full benchmark: the harness's workers and beat, and
this process reading the scratch database the figures poll."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dj_database_url
from django.db import connections

from workflows_app.bench.context import BenchContext
from workflows_app.bench.harness import beat_spec, children, worker_specs
from workflows_app.bench.pipeline_figures import measure_pipeline
from workflows_app.bench.report import FullReport


@dataclass
class Workers:
    """The worker processes started for one stage: each main process and its pool."""

    main: list[int] = field(default_factory=list)

    def pids(self) -> list[int]:
        return [*self.main, *children_of(self.main)]


def children_of(parents: list[int]) -> list[int]:
    """Processes whose parent is one of `parents` (a Celery worker's pool), from /proc."""
    wanted, found = set(parents), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) in wanted:
            found.append(int(stat.parent.name))
    return found


@contextmanager
def workers_and_beat(ctx: BenchContext, count: int) -> Iterator[Workers]:
    """`count` worker processes plus beat (the follow-up runs on beat), with ctx.env as it is.

    All started at once and ready before the stage's clock starts; stopped together.
    """
    specs = [*worker_specs(ctx, count), beat_spec(ctx)]
    with children(specs, Path(ctx.log_dir)) as started:
        yield Workers([c.process.pid for c in started[:count]])


@contextmanager
def on_database(url: str) -> Iterator[None]:
    """This process's default connection on the database at `url`, then back."""
    connection = connections["default"]
    saved = dict(connection.settings_dict)
    parsed = dj_database_url.parse(url)
    connection.close()
    connection.settings_dict.update(
        {key: parsed[key] for key in ("NAME", "USER", "PASSWORD", "HOST", "PORT") if key in parsed}
    )
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


def measure_pipeline_group(ctx: BenchContext, report: FullReport) -> None:
    """Bulk overhead, self-service latency, follow-up, worker scaling, tokens and memory."""
    with on_database(ctx.database_url):
        measure_pipeline(ctx, report, start_workers=lambda n: workers_and_beat(ctx, n))
