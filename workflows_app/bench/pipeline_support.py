"""What the pipeline figures drive: the portal as people use it, the simulator's records, memory.

Everything here talks HTTP to the running pieces of a BenchContext, or reads the scratch
database through the ORM (the benchmark process's default connection must be that database).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.contrib.auth.models import Group, User
from django.db import connection
from django.db.models import Max, Min
from django.utils import timezone

from workflows_app.models import (
    Run,
    RunEvent,
    RunEventKind,
    Target,
    Workflow,
    WorkflowCuration,
)
from workflows_app.models.runs import FINAL_RUN_STATUSES
from workflows_app.roles import Role
from workflows_app.simulator.catalogue import default_workflows

from .context import BenchContext

PASSWORD = "bench-pipeline-pw-12345"
TIMEOUT = 60  # seconds for any one HTTP call of the benchmark
_TOKEN = re.compile(r'name="token" value="([^"]+)"')
# One device: a hidden field; several: radio buttons, the most recently seen checked.
_CHOSEN_DEVICE = re.compile(r'name="device" value="([^"]+)"(?:>| data-testid="device" checked)')


def wait_for(condition: Callable[[], Any], *, timeout: float, what: str) -> Any:
    """Poll `condition` until it returns something truthy; RuntimeError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise RuntimeError(f"Timed out after {timeout:g} s waiting for {what}.")
        time.sleep(0.05)


def check_database(ctx: BenchContext) -> None:
    """Refuse to seed or poll another database than the benchmark's scratch one."""
    wanted = urlsplit(ctx.database_url).path.lstrip("/")
    used = connection.settings_dict["NAME"]
    if wanted != used:
        raise RuntimeError(
            f"The pipeline figures read the scratch database {wanted!r}, but this process is "
            f"connected to {used!r}: point DATABASE_URL (or DATABASES) at the scratch database."
        )


# --- rows ------------------------------------------------------------------------------------


def portal_user(username: str, role: Role, *, email: str = "") -> User:
    """A person who signs in with PASSWORD, with one role (created once, reused after)."""
    user, _ = User.objects.get_or_create(
        username=username, defaults={"email": email or f"{username}@example.com"}
    )
    # Hashed the way the portal under test checks it (production settings), whatever hashers
    # this process is configured with (the test settings know MD5 only); few rounds, it is a
    # throwaway account.
    hasher = PBKDF2PasswordHasher()
    user.password = hasher.encode(PASSWORD, hasher.salt(), iterations=1_000)
    user.save(update_fields=["password"])
    group, _ = Group.objects.get_or_create(name=role.value)
    user.groups.add(group)
    return user


def workflow_fields(sim: Any, now: datetime) -> dict[str, Any]:
    """A catalogue row's fields for one of the simulator's workflows, seen `now`."""
    return {
        "uuid": sim.uuid,
        "name": sim.name,
        "description": sim.description,
        "status": sim.status,
        "dependency": sim.dependency,
        "trigger_api": "API" in sim.trigger_methods,
        "trigger_manual": "MANUAL" in sim.trigger_methods,
        "trigger_manual_multiple": "MANUAL_MULTIPLE" in sim.trigger_methods,
        "trigger_scheduler": "SCHEDULER" in sim.trigger_methods,
        "first_seen": now,
        "last_seen": now,
    }


def catalogue_workflow(nql_id: str, *, self_service: bool = False) -> Workflow:
    """The portal's row of one of the simulator's workflows, as a catalogue sync would write it."""
    sim = next(w for w in default_workflows() if w.id == nql_id)
    workflow, _ = Workflow.objects.update_or_create(
        nql_id=nql_id, defaults=workflow_fields(sim, timezone.now())
    )
    if self_service:
        WorkflowCuration.objects.update_or_create(
            workflow=workflow, defaults={"self_service": True}
        )
    return workflow


def all_submitted(run_ids: list[int]) -> bool:
    """Whether every target of these runs has its execution UUID stored."""
    return not Target.objects.filter(run_id__in=run_ids, execution_uuid="").exists()


def batch_times(run_id: int) -> tuple[datetime | None, datetime | None]:
    """When the run's first batch was claimed by a worker and its last batch recorded."""
    events = RunEvent.objects.filter(run_id=run_id)
    first = events.filter(kind=RunEventKind.BATCH_CLAIMED).aggregate(at=Min("at"))["at"]
    last = events.filter(kind=RunEventKind.BATCH_SUBMITTED).aggregate(at=Max("at"))["at"]
    return first, last


def runs_final(run_ids: Iterable[int]) -> bool:
    """Whether every one of these runs has a final status (every outcome known)."""
    return (
        not Run.objects.filter(pk__in=list(run_ids)).exclude(status__in=FINAL_RUN_STATUSES).exists()
    )


# --- the portal, as a browser would use it ----------------------------------------------------


class PortalSession:
    """One signed-in person's browser: cookies, the CSRF token, no redirects followed."""

    def __init__(self, ctx: BenchContext, username: str) -> None:
        self.base = ctx.portal_url.rstrip("/")
        self.http = requests.Session()
        self.get("/login/").raise_for_status()
        answer = self.post("/login/", {"username": username, "password": PASSWORD})
        if answer.status_code != 302:
            raise RuntimeError(f"Signing in {username} answered {answer.status_code}.")

    def _kept(self, response: requests.Response) -> requests.Response:
        # Browsers send Secure cookies to http://localhost; requests only over HTTPS.
        for cookie in self.http.cookies:
            cookie.secure = False
        return response

    def get(self, path: str) -> requests.Response:
        return self._kept(self.http.get(self.base + path, timeout=TIMEOUT, allow_redirects=False))

    def post(
        self, path: str, data: dict[str, str], files: dict[str, Any] | None = None
    ) -> requests.Response:
        csrf = self.http.cookies.get("csrftoken") or ""
        answer = self.http.post(
            self.base + path,
            data={**data, "csrfmiddlewaretoken": csrf},
            files=files,
            headers={"Referer": self.base + path, "X-CSRFToken": csrf},
            timeout=TIMEOUT,
            allow_redirects=False,
        )
        return self._kept(answer)

    def start_run(
        self,
        workflow: Workflow,
        targets: list[str],
        reason: str,
        *,
        took: list[float] | None = None,
    ) -> int:
        """The run form (targets as an uploaded file) and its confirmation: the new run's id.

        `took`, when given, receives the seconds each of the two posts took.
        """
        path = f"/workflows/{workflow.pk}/run/"
        upload = {"targets_file": ("targets.txt", "\n".join(targets).encode(), "text/plain")}
        began = time.monotonic()
        form = self.post(path, {"reason": reason, "targets_text": ""}, files=upload)
        token = _TOKEN.search(form.text)
        if form.status_code != 200 or token is None:
            raise RuntimeError(f"The run form answered {form.status_code} without a confirmation.")
        posted = time.monotonic()
        started = self.post(path + "confirm/", {"token": token.group(1)})
        if took is not None:
            took += [posted - began, time.monotonic() - posted]
        found = re.search(r"/runs/(\d+)/", started.headers.get("Location", ""))
        if started.status_code != 302 or found is None:
            raise RuntimeError(f"The confirmation answered {started.status_code}, not a run.")
        return int(found.group(1))

    def chosen_device(self, workflow: Workflow) -> str:
        """The device the self-service confirmation offers first (most recently seen)."""
        page = self.get(f"/self-service/{workflow.pk}/")
        found = _CHOSEN_DEVICE.search(page.text)
        if found is None:
            raise RuntimeError(f"The self-service page answered {page.status_code}, no device.")
        return found.group(1)


# --- the simulator's control endpoints ---------------------------------------------------------


class SimulatorControl:
    """The simulator's /_simulator/ endpoints, with the control token."""

    def __init__(self, ctx: BenchContext) -> None:
        self.base = ctx.simulator_url.rstrip("/") + "/_simulator/"
        self.http = requests.Session()
        self.http.headers["X-Simulator-Token"] = ctx.simulator_token

    def get(self, name: str, **params: str) -> Any:
        answer = self.http.get(self.base + name, params=params, timeout=TIMEOUT)
        answer.raise_for_status()
        return answer.json()

    def post(self, name: str, body: dict[str, Any] | None = None) -> Any:
        answer = self.http.post(self.base + name, json=body or {}, timeout=TIMEOUT)
        answer.raise_for_status()
        return answer.json()


# --- memory of other processes ----------------------------------------------------------------


def status_kb(pid: int, field: str) -> int:
    """One `kB` field of /proc/<pid>/status (VmRSS, VmHWM), 0 once the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    found = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(found.group(1)) if found else 0


def pids_of(handle: object) -> list[int]:
    """The worker processes a start_workers handle names: `pids` (a list or a method)."""
    pids = getattr(handle, "pids", None)
    found = pids() if callable(pids) else pids
    return [int(p) for p in found or []]


def listening_pids(url: str) -> list[int]:
    """Processes holding the socket listening on the URL's port (gunicorn's master, workers)."""
    port = urlsplit(url).port
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if any(str(fd.readlink()) in inodes for fd in (proc / "fd").iterdir()):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


@contextmanager
def rss_growth(pids: list[int]) -> Iterator[list[float]]:
    """Sample these processes' RSS while the block runs; yields [largest growth in MB] after."""
    base = {pid: status_kb(pid, "VmRSS") for pid in pids}
    peak = dict(base)
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.01):
            for pid in pids:
                peak[pid] = max(peak[pid], status_kb(pid, "VmRSS"))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    growth: list[float] = []
    try:
        yield growth
    finally:
        done.set()
        sampler.join()
        growth.append(max((peak[p] - base[p] for p in pids), default=0) / 1024)
