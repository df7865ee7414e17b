"""Sync the workflow catalogue from Nexthink now and print what changed."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from workflows_app.models import CatalogueSync
from workflows_app.services.catalogue_sync import sync_catalogue


class Command(BaseCommand):
    help = (
        "Sync the workflow catalogue from Nexthink (every dependency x trigger method) and print "
        "the counts; exits non-zero when the sync failed or another one is running."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        sync = sync_catalogue(trigger="command")
        if sync.status == CatalogueSync.Status.RUNNING:
            raise CommandError(
                f"Another catalogue sync (#{sync.pk}) is running since "
                f"{sync.started_at:%Y-%m-%d %H:%M:%S}; try again when it has finished."
            )
        if sync.status == CatalogueSync.Status.FAILED:
            raise CommandError(f"Catalogue sync failed: {sync.error}")
        self.stdout.write(
            f"Catalogue synced: {sync.added} added, {sync.changed} changed, "
            f"{sync.removed} removed, {sync.unchanged} unchanged"
        )
        if sync.problems:
            self.stderr.write(sync.error)
            for problem in sync.problems:
                self.stderr.write(
                    f"  {problem['dependency']}/{problem['trigger']}: {problem['error']} "
                    f"in {problem['item']}"
                )
