"""Register (or update) a remote action of the classic platform from a shell."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from workflows_app.management.actors import actor_named
from workflows_app.roles import Role
from workflows_app.services.remote_actions import RegistrationError, RemoteActionSpec, register

ROLES = {"helpdesk": Role.HELPDESK.value, "admin": Role.ADMIN.value}


class Command(BaseCommand):
    help = (
        "Register a remote action of the classic platform by its UID (Finder: right-click it, "
        "Export > Remote action Uid), so the portal can run it; run again to update it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("uid", metavar="UID", help="the remote action's UID")
        parser.add_argument("--name", required=True, help="how the portal names it")
        parser.add_argument("--description", default="", help="what it does")
        parser.add_argument(
            "--param",
            action="append",
            default=[],
            metavar="NAME",
            help="a parameter it takes (repeat for several); other names are refused",
        )
        parser.add_argument(
            "--role",
            action="append",
            default=None,
            choices=("helpdesk", "admin"),
            help="who may run it (repeat; default: helpdesk and admins)",
        )
        parser.add_argument(
            "--self-service", action="store_true", help="offer it to employees on their device"
        )
        parser.add_argument("--user", metavar="USERNAME", help="recorded in the audit log")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = actor_named(options["user"])
        spec = RemoteActionSpec(
            uid=options["uid"],
            name=options["name"],
            description=options["description"],
            params=tuple(options["param"]),
            allowed_roles=tuple(ROLES[r] for r in options["role"]) if options["role"] else None,
            self_service=True if options["self_service"] else None,
        )
        try:
            row, created = register(spec, actor=actor)
        except RegistrationError as exc:
            raise CommandError(exc.message) from None
        params = ", ".join(row.parameters.values_list("name", flat=True)) or "none"
        verb = "Registered" if created else "Updated"
        self.stdout.write(f"{verb} remote action {row.name} ({row.nql_id}); parameters: {params}")
