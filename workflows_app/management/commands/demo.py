"""Run the whole portal in demo mode: simulator, web, worker and beat, stopped together."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from workflows_app.models import DeviceAssignment, WorkflowCuration
from workflows_app.services.accounts import ensure_demo_accounts
from workflows_app.services.curation import import_curation

DEMO_CURATION = Path(__file__).resolve().parents[2] / "demo" / "curation.json"
DEMO_CLASSIC_DEVICE = ("EMP-LT-0142", "da2add909a144e8235453f88dc45172f")
# Fixes the demo tenant always fails, so a newcomer sees "Did not work" and "Get help".
DEMO_FAILING_FIXES = ("#restart_print_spooler",)


class Command(BaseCommand):
    help = "Start the portal in demo mode (web, Celery worker and beat, Nexthink simulator)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--simulator-port", type=int, default=8765)
        parser.add_argument(
            "--prepare-only",
            action="store_true",
            help="Migrate, create the demo accounts and load the catalogue, then exit.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEMO_MODE:
            raise CommandError("The demo command runs only with PORTAL_DEMO=true.")
        Path(settings.DEMO_DIR).mkdir(parents=True, exist_ok=True)
        for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
            folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get(key)
            if folder:
                Path(str(folder)).mkdir(parents=True, exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)
        names = ensure_demo_accounts(password=settings.DEMO_PASSWORD)
        self.stdout.write(f"Demo accounts: {', '.join(names)} (password {settings.DEMO_PASSWORD})")

        manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]
        celery = [sys.executable, "-m", "celery", "-A", "portal"]
        sim_port = options["simulator_port"]
        # Demo mode's tenant is always the simulator: this process and every child use it.
        sim_url = f"http://127.0.0.1:{sim_port}"
        settings.NEXTHINK_API_URL = sim_url
        settings.NEXTHINK_TOKEN_URL = f"{sim_url}/oauth2/default/v1/token"
        # Its classic web interface too (Act API v2): demo mode shows both kinds.
        settings.NEXTHINK_CLASSIC_URL = sim_url
        # Links in mails and webhooks point at this portal, whatever port it was given.
        base_url = os.environ.get("PORTAL_BASE_URL") or f"http://127.0.0.1:{options['port']}"
        settings.PORTAL_BASE_URL = base_url
        env = {
            **os.environ,
            "PORTAL_BASE_URL": base_url,
            "PORTAL_DEMO": "true",
            "NEXTHINK_API_URL": settings.NEXTHINK_API_URL,
            "NEXTHINK_TOKEN_URL": settings.NEXTHINK_TOKEN_URL,
            "NEXTHINK_CLASSIC_URL": sim_url,
        }
        children: dict[str, subprocess.Popen[bytes]] = {}

        def start(name: str, argv: list[str]) -> None:
            children[name] = subprocess.Popen(argv, env=env, start_new_session=True)

        def stop_all(*_: Any) -> None:
            for proc in children.values():
                if proc.poll() is None:
                    proc.terminate()  # the leader stops its own children (Celery pool)
            deadline = time.monotonic() + 10
            for proc in children.values():
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)

        # Ctrl-C (or SIGTERM from a supervisor) stops every child, even when started detached.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            start("simulator", [*manage, "nexthink_simulator", "--port", str(sim_port)])
            self._wait_for(f"http://127.0.0.1:{sim_port}/_simulator/state", children["simulator"])
            self._fail_fixes(sim_url)
            self._load_catalogue()
            if options["prepare_only"]:
                return
            start("worker", [*celery, "worker", "-l", "INFO", "-c", "2"])
            schedule = settings.CELERY_BEAT_SCHEDULE_FILENAME
            start("beat", [*celery, "beat", "-l", "INFO", "-s", schedule])
            start("web", [*manage, "runserver", f"127.0.0.1:{options['port']}", "--noreload"])
            url = f"http://127.0.0.1:{options['port']}/"
            self.stdout.write(
                self.style.SUCCESS(f"Portal running at {url} (Ctrl-C stops everything)")
            )
            while True:
                for name, proc in children.items():
                    if proc.poll() is not None:
                        raise CommandError(f"The {name} process stopped (exit {proc.returncode}).")
                time.sleep(0.5)
        except KeyboardInterrupt:
            self.stdout.write("Stopping…")
        finally:
            stop_all()

    def _wait_for(self, url: str, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise CommandError("The Nexthink simulator did not start.")
            try:
                with urllib.request.urlopen(url, timeout=1) as answer:  # noqa: S310 - loopback
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise CommandError(f"Nothing answered at {url} within 30 s.")

    def _fail_fixes(self, sim_url: str) -> None:
        """Tell the simulator to fail every execution of DEMO_FAILING_FIXES."""
        request = urllib.request.Request(  # noqa: S310 - the simulator on loopback
            f"{sim_url}/_simulator/faults",
            data=json.dumps({"fail_workflows": list(DEMO_FAILING_FIXES)}).encode(),
            headers={
                "Content-Type": "application/json",
                "X-Simulator-Token": os.environ.get("SIMULATOR_CONTROL_TOKEN", ""),
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=5):  # noqa: S310 - loopback
                pass
        except (urllib.error.URLError, OSError) as exc:
            self.stderr.write(f"The simulator did not take the demo's failing fixes: {exc}")
            return
        self.stdout.write(f"Demo: these fixes always fail: {', '.join(DEMO_FAILING_FIXES)}")

    def _load_catalogue(self) -> None:
        try:
            call_command("sync_workflows", stdout=self.stdout)
        except CommandError as exc:
            self.stderr.write(f"Catalogue not loaded yet: {exc}")
            return
        if WorkflowCuration.objects.exists():
            return  # an admin's curation is never overwritten by the demo's
        result = import_curation(DEMO_CURATION.read_bytes(), user=None)
        self.stdout.write(f"Demo curation loaded: {result.summary()}")
        # The demo employee's laptop on the classic platform, so its remote actions can run.
        employee = get_user_model().objects.filter(username="employee").first()
        if employee is not None:
            DeviceAssignment.objects.get_or_create(
                user=employee,
                device_name=DEMO_CLASSIC_DEVICE[0],
                defaults={"classic_uid": DEMO_CLASSIC_DEVICE[1], "note": "demo (classic)"},
            )
