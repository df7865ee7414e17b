"""Register an outgoing webhook from a shell (the console's "Add a webhook")."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from workflows_app.management.actors import actor_named
from workflows_app.services.webhook_admin import EVENT_NAMES, WebhookRefused, create_webhook


class Command(BaseCommand):
    help = (
        "Register a URL that receives run and flow run events as signed JSON POSTs "
        "(docs/webhooks.md). The secret is read from a file, never from the command line "
        "(shell history, process list)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("url", metavar="URL", help="https:// address of the receiver")
        parser.add_argument(
            "--secret-file",
            required=True,
            metavar="FILE",
            help="file holding the signing secret (its first line; '-' reads standard input)",
        )
        parser.add_argument(
            "--events",
            default="",
            help=f"comma-separated events to send (default: all): {', '.join(EVENT_NAMES)}",
        )
        parser.add_argument("--description", default="", help="what receives it")
        parser.add_argument("--user", metavar="USERNAME", help="recorded in the audit log")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = actor_named(options["user"])
        secret = self._secret(options["secret_file"])
        events = [e.strip() for e in options["events"].split(",") if e.strip()]
        try:
            hook = create_webhook(
                url=options["url"],
                secret=secret,
                events=events,
                description=options["description"],
                actor=actor,
            )
        except WebhookRefused as exc:
            raise CommandError(exc.message) from None
        which = ", ".join(hook.events) if hook.events else "all events"
        self.stdout.write(f"Webhook {hook.pk} added: {hook.url} ({which}).")

    def _secret(self, name: str) -> str:
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(
                f"Cannot read the secret file {name}: {exc.__class__.__name__}"
            ) from None
        lines = text.splitlines()
        return lines[0].strip() if lines else ""
