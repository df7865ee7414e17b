"""manage.py create_api_token USERNAME [--expires-days N] [--name NAME]: print a new token once."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from workflows_app.services import api_tokens


class Command(BaseCommand):
    help = "Create a personal API token for a helpdesk agent or admin and print it (once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--expires-days", type=int, default=None)
        parser.add_argument("--name", default="command line")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user {options['username']!r}.")
        try:
            new = api_tokens.create_token(
                user=user, name=options["name"], expires_days=options["expires_days"]
            )
        except api_tokens.TokenRefused as exc:
            raise CommandError(exc.message) from None
        self.stderr.write(f"Token '{new.token.name}' for {user.get_username()}; shown only once:")
        self.stdout.write(new.secret)
