"""Print how long parsing, creating and reading back a large run take on this database."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from workflows_app.benchmarks import render_table, run_benchmarks
from workflows_app.models import Run
from workflows_app.targets import MAX_TARGETS_PER_RUN


class Command(BaseCommand):
    help = (
        "Measure parse_text, create_run and the run pages' queries on N targets (median, min, "
        "max of the repeats). Everything is written in one transaction that is rolled back."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--targets", type=int, default=MAX_TARGETS_PER_RUN, metavar="N", help="targets per run"
        )
        parser.add_argument("--repeat", type=int, default=3, metavar="R", help="runs of each step")
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
        parser.add_argument(
            "--profile", action="store_true", help="also profile one create_run (cProfile)"
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="run even if the database holds runs (it still rolls everything back)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        count, repeat = options["targets"], options["repeat"]
        if not 1 <= count <= MAX_TARGETS_PER_RUN:
            raise CommandError(f"--targets must be between 1 and {MAX_TARGETS_PER_RUN:,}.")
        if repeat < 1:
            raise CommandError("--repeat must be at least 1.")
        existing = Run.objects.count()
        if existing and not options["force"]:
            # Nothing is kept, but the writes load the server and the runs skew the list query.
            raise CommandError(
                f"This database holds {existing:,} run{'s' if existing != 1 else ''}: it looks "
                "like a real portal. Benchmark "
                "a copy or an empty database, or pass --force (everything is rolled back)."
            )
        report = run_benchmarks(targets=count, repeat=repeat, profile=options["profile"])
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
        else:
            self.stdout.write(render_table(report))
