"""Helpers of the notification tests: a real HTTP receiver on loopback, runs to notify about,
and the channels' sends run at once in the test process instead of on a worker."""

from __future__ import annotations

import hashlib
import hmac
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from workflows_app import tasks
from workflows_app.models import ParameterDefinition, Run
from workflows_app.roles import Role
from workflows_app.services import dispatch, notifications
from workflows_app.services.runs import create_run
from workflows_app.targets import Target as Wanted
from workflows_app.targets import TargetKind

SECRET_PARAM = "hunter2-" + uuid.uuid4().hex  # a secret parameter value no output may hold


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A local HTTP server that records each POST and answers from a plan of status codes."""

    statuses: list[int] = field(default_factory=list)  # answered in order, then 200
    hang: threading.Event | None = None  # when set: wait for it before answering
    received: list[Received] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)
    url: str = ""

    def wait_for(self, count: int, timeout: float = 10) -> list[Received]:
        """Wait until `count` requests have arrived (or fail)."""
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.received) >= count, timeout=timeout):
                raise AssertionError(f"{len(self.received)} of {count} requests arrived")
            return list(self.received)


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Check a delivery's signature as docs/webhooks.md tells a receiver to."""
    parts = dict(p.split("=", 1) for p in headers["X-Portal-Signature"].split(","))
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), parts["v1"])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    plan = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with plan.arrived:
                plan.received.append(Received(self.path, dict(self.headers.items()), body))
                plan.arrived.notify_all()
            if plan.hang is not None:
                plan.hang.wait(timeout=60)
            status = plan.statuses.pop(0) if plan.statuses else 200
            answer = b'{"ok": true}' if status < 300 else b"receiver broke: try later"
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    plan.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/portal"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield plan
    if plan.hang is not None:
        plan.hang.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def sends_at_once(monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any) -> Any:
    """Deliver an event now: its mails and webhook POSTs (and their retries) run in this process."""
    monkeypatch.setattr(
        dispatch, "enqueue_email", lambda notice_id, **_: tasks.send_email_task(notice_id)
    )
    monkeypatch.setattr(
        dispatch,
        "enqueue_webhook_delivery",
        lambda delivery_id, **_: tasks.deliver_webhook_task(delivery_id),
    )

    def deliver(run_id: int, event: notifications.Event, **details: Any) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            tasks.notify_task(run_id, event.value, details)

    return deliver


@pytest.fixture
def secret_run(role_user: Any, sim_workflow: Any, db: None) -> Run:
    """A helpdesk run on two users with a secret parameter (masked in the run's row)."""
    workflow = sim_workflow("#unlock_ad_account")
    ParameterDefinition.objects.create(workflow=workflow, name="Reason", secret=True)
    return create_run(
        user=role_user("agent", Role.HELPDESK),
        workflow=workflow,
        targets=[
            Wanted(TargetKind.USER_UPN, "alice.martin@example.com", 1),
            Wanted(TargetKind.USER_UPN, "bob.stone@example.com", 2),
        ],
        params={"Reason": SECRET_PARAM},
        reason="INC0042 locked out",
        source=Run.Source.HELPDESK,
    )
