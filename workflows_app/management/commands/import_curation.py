"""Apply a curation document: all of it, or (on any error) nothing, listing every error."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from workflows_app.services.curation import CurationImportError, import_curation


class Command(BaseCommand):
    help = (
        "Import a curation document exported by export_curation or the admin pages. The whole "
        "document is validated first; on any error every problem is printed with its JSON path "
        "and nothing is applied (exit status 1)."
    )
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", metavar="FILE", help="the JSON document, or - for stdin")
        parser.add_argument(
            "--replace-all",
            action="store_true",
            help="reset the curation and parameters of workflows the document does not list",
        )
        parser.add_argument("--user", metavar="USERNAME", help="recorded as who curated")

    def handle(self, *args: Any, **options: Any) -> None:
        content = self._read(options["file"], options.get("stdin"))
        user = self._user(options.get("user"))
        try:
            result = import_curation(content, user=user, replace_all=options["replace_all"])
        except CurationImportError as exc:
            for error in exc.errors:
                self.stderr.write(error)
            raise CommandError(
                f"{len(exc.errors)} problem(s) in {options['file']}; nothing was applied."
            ) from None
        for warning in result.warnings:
            self.stderr.write(f"warning: {warning}")
        self.stdout.write(self.style.SUCCESS(result.summary()))

    def _read(self, name: str, stdin: Any) -> bytes:
        """The document's bytes (decoding is the import's job, so errors read the same)."""
        if name == "-":
            stream = stdin or sys.stdin
            data = stream.buffer.read() if hasattr(stream, "buffer") else stream.read()
            return data if isinstance(data, bytes) else str(data).encode("utf-8")
        try:
            return Path(name).read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {name}: {exc.strerror or exc}.") from exc

    def _user(self, username: str | None) -> Any:
        """The named user, or None when no name is given."""
        if not username:
            return None
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named '{username}'.")
        return user
