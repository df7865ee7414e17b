"""Resume an execution waiting for an event, as a named portal user, by the inbox's rules."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from workflows_app.models import Run
from workflows_app.services.resume import ResumeRefused, resume_execution

EXIT_REFUSED = 1


class Command(BaseCommand):
    help = (
        "Resume an execution paused on a 'wait for event' step (by its execution UUID), sending "
        "the given parameters as they are. Prints Nexthink's request id."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("execution_uuid", metavar="EXECUTION_UUID")
        parser.add_argument(
            "--param",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="a parameter the wait step expects (repeat for several)",
        )
        parser.add_argument("--user", required=True, metavar="USERNAME", help="who resumes it")

    def handle(self, *args: Any, **options: Any) -> None:
        username = options["user"]
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.", returncode=EXIT_REFUSED)
        if not user.is_active:
            raise CommandError(f"User {username!r} is inactive.", returncode=EXIT_REFUSED)
        params = parse_params(options["param"])
        try:
            resumption = resume_execution(
                user=user,
                execution_uuid=options["execution_uuid"],
                params=params,
                source=Run.Source.CLI,
            )
        except ResumeRefused as exc:
            raise CommandError(f"Not resumed: {exc.message}", returncode=EXIT_REFUSED) from None
        self.stdout.write(resumption.request_uuid)


def parse_params(given: list[str]) -> dict[str, str]:
    """NAME=VALUE pairs (the value may hold '='); a missing '=' or a repeated name is refused."""
    params: dict[str, str] = {}
    for item in given:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise CommandError(f"--param {item!r}: write NAME=VALUE.", returncode=EXIT_REFUSED)
        name = name.strip()
        if name in params:
            raise CommandError(f"--param {name!r} is given twice.", returncode=EXIT_REFUSED)
        params[name] = value
    return params
