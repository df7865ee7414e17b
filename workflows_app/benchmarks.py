"""Benchmarks of what a large run costs: parsing the paste, creating the run, reading it back.

Everything is written inside one transaction that is rolled back at the end, so a benchmark
leaves no rows behind and queues no batch (on_commit callbacks never fire).
"""

from __future__ import annotations

import cProfile
import io
import pstats
import random
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.utils import timezone

from workflows_app import targets as targets_mod
from workflows_app.models import Run, Target, Workflow
from workflows_app.selectors.history import PAGE_SIZE, history_page, parse_filters
from workflows_app.selectors.runs import TARGETS_PER_PAGE, target_page
from workflows_app.services import runs as runs_service
from workflows_app.services.target_insert import TargetRow, copy_supported, insert_targets


class _Rollback(Exception):
    """Raised inside the benchmark's transaction to undo everything it wrote."""


@dataclass(frozen=True)
class Figure:
    """One measured step: its timings in seconds and how many items each timing covered."""

    key: str
    name: str
    samples: list[float]
    items: int = 0
    unit: str = ""

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples) * 1000

    @property
    def min_ms(self) -> float:
        return min(self.samples) * 1000

    @property
    def max_ms(self) -> float:
        return max(self.samples) * 1000

    @property
    def rate(self) -> float | None:
        """Items per second at the median, when the step handles items."""
        median = statistics.median(self.samples)
        return self.items / median if self.items and median else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "median_ms": round(self.median_ms, 3),
            "min_ms": round(self.min_ms, 3),
            "max_ms": round(self.max_ms, 3),
            "samples_ms": [round(s * 1000, 3) for s in self.samples],
            "items": self.items,
            "per_second": round(self.rate, 1) if self.rate else None,
            "unit": self.unit,
        }


@dataclass
class Report:
    """What one benchmark run measured, with the setting it ran in."""

    targets: int
    repeat: int
    database: dict[str, str]
    figures: list[Figure] = field(default_factory=list)
    ratios: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    profile: str = ""

    def figure(self, key: str) -> Figure:
        return next(f for f in self.figures if f.key == key)

    def as_dict(self) -> dict[str, Any]:
        return {
            "targets": self.targets,
            "repeat": self.repeat,
            "database": self.database,
            "figures": [f.as_dict() for f in self.figures],
            "ratios": {k: round(v, 3) for k, v in self.ratios.items()},
            "notes": self.notes,
            "profile": self.profile,
        }


def device_lines(count: int, seed: int = 42) -> str:
    """`count` distinct pasted device lines: two device names for every Collector UUID."""
    rng = random.Random(seed)
    lines = []
    for i in range(count):
        if i % 3 == 2:
            lines.append(str(uuid.UUID(int=rng.getrandbits(128), version=4)))
        else:
            lines.append(f"PC-{i:06d}-{rng.choice(('LON', 'PAR', 'NYC', 'SGP'))}")
    return "\n".join(lines) + "\n"


def timed(step: Callable[[], object], repeat: int) -> list[float]:
    """Run `step` `repeat` times; the wall-clock seconds of each run."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        step()
        samples.append(time.perf_counter() - started)
    return samples


@contextmanager
def rolled_back() -> Iterator[None]:
    """A savepoint undone on leaving, whatever happened inside."""
    with transaction.atomic():
        try:
            yield
        finally:
            transaction.set_rollback(True)


def database_description() -> dict[str, str]:
    """Which database the figures come from."""
    vendor = connection.vendor
    version = ""
    with connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute("SHOW server_version")
            version = cursor.fetchone()[0]
        elif vendor == "sqlite":
            cursor.execute("SELECT sqlite_version()")
            version = cursor.fetchone()[0]
    return {
        "vendor": vendor,
        "version": version,
        "name": str(connection.settings_dict.get("NAME", "")),
        "debug": str(settings.DEBUG),
    }


def run_benchmarks(*, targets: int, repeat: int, profile: bool = False) -> Report:
    """Measure every step on `targets` targets, `repeat` times each, then roll everything back."""
    report = Report(targets=targets, repeat=repeat, database=database_description())
    if settings.DEBUG:
        report.notes.append(
            "DEBUG is on: Django keeps every query's SQL in memory, so writes look slower than "
            "in production."
        )
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                # Django's foreign keys are checked at commit, which never comes here: check
                # them as each statement ends instead, so their cost is in the figures.
                with connection.cursor() as cursor:
                    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                report.notes.append("Foreign keys were checked as each write ended, as at commit.")
            else:
                report.notes.append("Foreign key checks, left to a commit, are not in the figures.")
            _measure(report, targets, repeat, profile)
            raise _Rollback
    except _Rollback:
        pass
    _add_ratios(report)
    return report


def _measure(report: Report, count: int, repeat: int, profile: bool) -> None:
    """The measurements themselves, inside the transaction run_benchmarks rolls back."""
    text = device_lines(count)
    parsed = targets_mod.parse_text(text)
    if not parsed.ok or len(parsed.targets) != count:
        raise RuntimeError(f"the generated lines did not parse: {parsed.errors[:3]}")
    chosen = parsed.targets
    samples = timed(lambda: targets_mod.parse_text(text), repeat)
    report.figures.append(
        Figure("parse_text", f"parse_text, {count:,} pasted device lines", samples, count, "lines")
    )

    user, workflow = _make_user_and_workflow()

    def create() -> Run:
        return runs_service.create_run(
            user=user,
            workflow=workflow,
            targets=chosen,
            params={},
            reason="benchmark",
            source=Run.Source.CLI,
            allow_duplicate=True,
        )

    samples = []
    run: Run | None = None
    for index in range(repeat):
        # Each run but the last is undone at once, so every one writes into the same table.
        with transaction.atomic():
            started = time.perf_counter()
            run = create()
            samples.append(time.perf_counter() - started)
            if index < repeat - 1:
                transaction.set_rollback(True)
    assert run is not None
    method = "COPY" if copy_supported() else "bulk_create"
    report.figures.append(
        Figure(
            "create_run",
            f"create_run, {count:,} targets ({method})",
            samples,
            count,
            "rows",
        )
    )
    _measure_parts(report, run, workflow, chosen, repeat)
    if profile:
        report.profile = _profile(create)

    # What run_list and run_detail read, through the same selectors, with the run above in the
    # table: each call reads one page (plus the row that tells whether a next page exists).
    for key, name, read in (
        (
            "run_page",
            f"run page query: first {TARGETS_PER_PAGE} targets",
            partial(target_page, run),
        ),
        (
            "runs_list",
            f"runs list query: first {PAGE_SIZE} runs",
            partial(history_page, user, parse_filters({}, user)[0]),
        ),
    ):
        read()  # warm up: planned and cached, as on a server that is in use
        report.figures.append(Figure(key, name, timed(read, repeat)))


def _measure_parts(
    report: Report,
    run: Run,
    workflow: Workflow,
    chosen: list[targets_mod.Target],
    repeat: int,
) -> None:
    """The steps of create_run that grow with the number of targets, each on its own."""
    count = len(chosen)
    fingerprint = timed(lambda: runs_service._fingerprint(workflow, chosen, {}), repeat)
    batches = timed(lambda: targets_mod.batches(chosen), repeat)
    report.figures += [
        Figure("fingerprint", f"  fingerprint of {count:,} targets", fingerprint, count, "targets"),
        Figure("batches", f"  split {count:,} targets into batches", batches, count, "targets"),
    ]
    # The run's own rows, written again (and undone) by each insert method on its own.
    rows: list[TargetRow] = list(
        Target.objects.filter(run=run).values_list("batch_id", "position", "kind", "value")
    )
    methods = [("insert_copy", "COPY", True)] if copy_supported() else []
    methods.append(("insert_bulk_create", "bulk_create", False))
    for key, label, use_copy in methods:
        samples = []
        for _ in range(repeat):
            with rolled_back():
                started = time.perf_counter()
                insert_targets(run.pk, rows, use_copy=use_copy)
                samples.append(time.perf_counter() - started)
        name = f"  insert {count:,} target rows with {label}"
        report.figures.append(Figure(key, name, samples, count, "rows"))


def _profile(create: Callable[[], Run]) -> str:
    """The functions create_run spends most time in, from one more (rolled back) run."""
    profiler = cProfile.Profile()
    with rolled_back():
        profiler.enable()
        create()
        profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(20)
    return out.getvalue()


def _make_user_and_workflow() -> tuple[User, Workflow]:
    """A superuser (an admin to the portal) and a runnable workflow that takes devices."""
    suffix = uuid.uuid4().hex[:12]
    user = get_user_model().objects.create_user(
        username=f"benchmark-{suffix}", email="", password=None, is_superuser=True
    )
    now = timezone.now()
    workflow = Workflow.objects.create(
        nql_id=f"#benchmark_{suffix}",
        uuid=str(uuid.uuid4()),
        name="Benchmark workflow",
        status=Workflow.Status.ACTIVE,
        dependency="DEVICE",
        trigger_api=True,
        first_seen=now,
        last_seen=now,
    )
    return user, workflow


def _add_ratios(report: Report) -> None:
    """The relations between figures that matter when judging a change."""
    per_10k = 10_000 / report.targets
    parse = report.figure("parse_text").median_ms
    create = report.figure("create_run").median_ms
    report.ratios["parse_text ms per 10,000 lines"] = parse * per_10k
    report.ratios["create_run ms per 10,000 targets"] = create * per_10k
    report.ratios["create_run time / parse_text time"] = create / parse
    keys = {f.key for f in report.figures}
    insert = "insert_copy" if "insert_copy" in keys else "insert_bulk_create"
    for key in ("fingerprint", "batches", insert):  # the parts create_run itself goes through
        report.ratios[f"{key} as % of create_run"] = 100 * report.figure(key).median_ms / create
    if {"insert_copy", "insert_bulk_create"} <= keys:
        report.ratios["insert: bulk_create time / COPY time"] = (
            report.figure("insert_bulk_create").median_ms / report.figure("insert_copy").median_ms
        )


def render_table(report: Report) -> str:
    """The report as a plain text table."""
    db = report.database
    lines = [
        f"Benchmark: {report.targets:,} targets, median of {report.repeat} repeat(s)",
        f"Database: {db['vendor']} {db['version']} ({db['name']}), DEBUG={db['debug']}",
        "All writes were rolled back; no batch was queued.",
        "",
    ]
    width = max(len(f.name) for f in report.figures)
    lines.append(
        f"{'step':<{width}}  {'median ms':>10}  {'min ms':>10}  {'max ms':>10}  {'per second':>16}"
    )
    for f in report.figures:
        rate = f"{f.rate:,.0f} {f.unit}" if f.rate else ""
        lines.append(
            f"{f.name:<{width}}  {f.median_ms:>10,.1f}  {f.min_ms:>10,.1f}  "
            f"{f.max_ms:>10,.1f}  {rate:>16}"
        )
    lines += ["", "Ratios"]
    width = max(len(name) for name in report.ratios)
    lines += [f"  {name:<{width}}  {value:>10,.1f}" for name, value in report.ratios.items()]
    lines += [f"Note: {note}" for note in report.notes]
    if report.profile:
        lines += ["", "Profile of one create_run (cumulative time):", report.profile]
    return "\n".join(lines)
