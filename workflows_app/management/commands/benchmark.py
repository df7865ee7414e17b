"""Print how long the portal's heavy paths take on this database: a large run, the history."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from workflows_app.bench.context import STAGES
from workflows_app.bench.full import FigureGroup, run_full
from workflows_app.bench.http_figures import measure_http
from workflows_app.bench.pipeline_group import measure_pipeline_group
from workflows_app.bench.report import render
from workflows_app.benchmarks import render_table, run_benchmarks
from workflows_app.history_benchmark import render_history_table, run_history_benchmark
from workflows_app.models import Run
from workflows_app.targets import MAX_TARGETS_PER_RUN

SUITES = ("run", "history", "all", "full")
MAX_HISTORY_TARGETS = 5_000_000
# The full suite's figures, measured in this order against one harness (workflows_app/bench/).
FIGURE_GROUPS: list[FigureGroup] = [measure_http, measure_pipeline_group]


class Command(BaseCommand):
    help = (
        "Measure the portal on this database (median, min, max of the repeats). Suite 'run': "
        "parse_text, create_run and the run pages' queries on N targets. Suite 'history': the "
        "history pages through the real URLs at a small and a large seeded history, and their "
        "ratio. Everything is written in transactions that are rolled back. Suite 'full': "
        "a scratch database, gunicorn, Celery workers and the simulator; one table of figures."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--suite", choices=SUITES, default="run", help="what to measure (default: run)"
        )
        parser.add_argument(
            "--targets", type=int, default=MAX_TARGETS_PER_RUN, metavar="N", help="targets per run"
        )
        parser.add_argument(
            "--small",
            type=int,
            default=1_000,
            metavar="N",
            help="history suite: target rows of the small history (default 1,000)",
        )
        parser.add_argument(
            "--large",
            type=int,
            default=1_000_000,
            metavar="N",
            help="history suite: target rows of the large history (default 1,000,000)",
        )
        parser.add_argument(
            "--repeat",
            type=int,
            default=None,
            metavar="R",
            help="runs of each step (default 3; 5 for the history)",
        )
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
        parser.add_argument(
            "--profile", action="store_true", help="also profile one create_run (cProfile)"
        )
        parser.add_argument(
            "--quick",
            action="store_true",
            help="full suite: tiny sizes and no thresholds (the test suite's smoke run)",
        )
        parser.add_argument(
            "--keep",
            action="store_true",
            help="full suite: keep the scratch database (its URL is printed)",
        )
        parser.add_argument(
            "--only",
            default="",
            metavar="STAGES",
            help="full suite: measure only these stages, comma-separated: " + ", ".join(STAGES),
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="run even if the database holds runs (it still rolls everything back)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        suite = options["suite"]
        if suite == "full":
            self.full(options)
            return
        count = options["targets"]
        small, large = options["small"], options["large"]
        if not 1 <= count <= MAX_TARGETS_PER_RUN:
            raise CommandError(f"--targets must be between 1 and {MAX_TARGETS_PER_RUN:,}.")
        for name, size in (("--small", small), ("--large", large)):
            if not 1 <= size <= MAX_HISTORY_TARGETS:
                raise CommandError(f"{name} must be between 1 and {MAX_HISTORY_TARGETS:,}.")
        if options["repeat"] is not None and options["repeat"] < 1:
            raise CommandError("--repeat must be at least 1.")
        existing = Run.objects.count()
        if existing and not options["force"]:
            # Nothing is kept, but the writes load the server and the runs skew the list query.
            raise CommandError(
                f"This database holds {existing:,} run{'s' if existing != 1 else ''}: it looks "
                "like a real portal. Benchmark "
                "a copy or an empty database, or pass --force (everything is rolled back)."
            )
        reports: dict[str, dict[str, Any]] = {}
        tables: list[str] = []
        if suite in ("run", "all"):
            report = run_benchmarks(
                targets=count, repeat=options["repeat"] or 3, profile=options["profile"]
            )
            reports["run"] = report.as_dict()
            tables.append(render_table(report))
        if suite in ("history", "all"):
            history = run_history_benchmark(small=small, large=large, repeat=options["repeat"] or 5)
            reports["history"] = history.as_dict()
            tables.append(render_history_table(history))
        if options["json"]:
            # One suite: its report as it always was; both: each under its name.
            self.stdout.write(json.dumps(reports[suite] if suite != "all" else reports, indent=2))
        else:
            self.stdout.write("\n\n".join(tables))

    def full(self, options: dict[str, Any]) -> None:
        """The whole portal in its own scratch database: one table (or JSON) of figures."""
        repeat = options["repeat"] or (2 if options["quick"] else 5)
        if repeat < 1:
            raise CommandError("--repeat must be at least 1.")
        only = frozenset(s.strip() for s in options["only"].split(",") if s.strip())
        if only - set(STAGES):
            unknown = ", ".join(sorted(only - set(STAGES)))
            raise CommandError(
                f"--only: unknown stage(s) {unknown}; choose from {', '.join(STAGES)}."
            )
        report = run_full(
            FIGURE_GROUPS, quick=options["quick"], keep=options["keep"], repeat=repeat, only=only
        )
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
        else:
            self.stdout.write(render(report))
        if report.failures:
            raise CommandError("Some figures could not be measured: " + "; ".join(report.failures))
