"""Run the Nexthink simulator (a fake tenant) in the foreground until Ctrl-C."""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from workflows_app.simulator.server import Simulator, serve_forever


class Command(BaseCommand):
    help = "Serve a simulated Nexthink tenant (OAuth, Workflows API, NQL API) for the demo."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument(
            "--client-id", default=getattr(settings, "NEXTHINK_CLIENT_ID", None) or "portal-demo"
        )
        parser.add_argument(
            "--client-secret",
            default=getattr(settings, "NEXTHINK_CLIENT_SECRET", None) or "demo-secret",
        )
        parser.add_argument("--execution-seconds", type=float, default=3.0)
        parser.add_argument("--trigger-shape", choices=("flags", "list"), default="flags")
        parser.add_argument("--verbose-http", action="store_true", help="Log every request.")
        parser.add_argument(
            "--control-token",
            default=os.environ.get("SIMULATOR_CONTROL_TOKEN") or None,
            help="Required as X-Simulator-Token by /_simulator/; without one, those endpoints "
            "answer only on a loopback address.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        def ready(sim: Simulator) -> None:
            self.stdout.write(f"Nexthink simulator: {sim.base_url}")
            self.stdout.write(f"Token URL:          {sim.token_url}")
            self.stdout.write(f"Client id:          {sim.client_id}")
            self.stdout.write("Control endpoints:  /_simulator/state, /_simulator/advance, ...")
            self.stdout.write("Ctrl-C stops it.")
            self.stdout.flush()

        serve_forever(
            options["host"],
            options["port"],
            on_ready=ready,
            client_id=options["client_id"],
            client_secret=options["client_secret"],
            execution_seconds=options["execution_seconds"],
            trigger_shape=options["trigger_shape"],
            verbose=options["verbose_http"],
            control_token=options["control_token"],
        )
        self.stdout.write("Nexthink simulator stopped.")
