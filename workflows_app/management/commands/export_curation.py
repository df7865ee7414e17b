"""Write the portal's whole curation as one JSON document (to stdout or a file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from workflows_app.services.curation import dump_curation, export_curation


class Command(BaseCommand):
    help = (
        "Export every workflow's curation and parameter definitions as one JSON document "
        "(the format import_curation and the admin pages read)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", metavar="FILE", help="write here instead of stdout")

    def handle(self, *args: Any, **options: Any) -> None:
        document = export_curation()
        text = dump_curation(document)
        output = options.get("output")
        if not output or output == "-":
            self.stdout.write(text, ending="")
            return
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot write {output}: {exc.strerror or exc}.") from exc
        self.stderr.write(
            f"Exported the curation of {len(document['workflows'])} workflow(s) to {output}."
        )
