"""What the simulated tenant remembers: tokens, requests seen, executions and their progress."""

from __future__ import annotations

import dataclasses
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from .catalogue import SimWorkflow, iso

TargetKind = Literal["device", "user"]
# Status words as Nexthink's public clients know them, plus two for the portal's tolerance tests:
# `timed_out` (final, outcome failure) and `paused_by_policy` (never final on its own).
PENDING, IN_PROGRESS, SUCCESS, FAILURE = "pending", "in_progress", "success", "failure"
WAITING_FOR_EVENT, TIMED_OUT, PAUSED_BY_POLICY = (
    "waiting_for_event",
    "timed_out",
    "paused_by_policy",
)
FINAL_STATUSES = frozenset({SUCCESS, FAILURE, TIMED_OUT})
# Held until released: by the trigger endpoint (waiting) or advance(include_waiting=True).
HELD_STATUSES = frozenset({WAITING_FOR_EVENT, PAUSED_BY_POLICY})
PENDING_SHARE = 1 / 3  # of execution_seconds spent pending, the rest in progress
MAX_RECORDED_REQUESTS = 20_000  # a long demo run polls a lot; keep the newest ones


@dataclass(frozen=True)
class ResolvedTarget:
    """One target of an execute request, after looking it up in the inventory.

    The identifiers are what NQL shows of the device and user: the inventory's when the target
    resolved, else what the request gave.
    """

    kind: TargetKind
    given: Any
    device_name: str | None
    user_upn: str | None
    resolved: bool
    device_uid: str | None = None
    device_collector_uid: str | None = None
    user_sid: str | None = None
    user_uid: str | None = None

    @property
    def label(self) -> str:
        """What decides the simulated outcome: the device name, else the UPN, else the raw id."""
        return self.device_name or self.user_upn or str(self.given)


@dataclass
class SimTargetExecution:
    """One execution (one target) as NQL's workflow.executions table would show it."""

    execution_uuid: str
    request_uuid: str
    workflow: SimWorkflow
    target: ResolvedTarget
    request_time: datetime
    due_at: float | None
    start_at: float | None = None
    status: str = PENDING
    status_details: str = "Queued"
    outcome: str | None = None
    outcome_details: str | None = None
    triggered: bool = False
    # The faults said this workflow's executions fail (FaultConfig.fail_workflows).
    forced_failure: bool = False
    trigger_params: dict[str, str] | None = None

    def to_row(self) -> dict[str, Any]:
        """The workflow.executions row, keyed by NQL field name."""
        return {
            "request_id": self.request_uuid,
            "execution_id": self.execution_uuid,
            "request_time": iso(self.request_time),
            "workflow.nql_id": self.workflow.id,
            "workflow.name": self.workflow.name,
            "device.name": self.target.device_name,
            "device.uid": self.target.device_uid,
            "device.collector.uid": self.target.device_collector_uid,
            "user.sid": self.target.user_sid,
            "user.upn": self.target.user_upn,
            "user.uid": self.target.user_uid,
            "status": self.status,
            "status_details": self.status_details,
            "outcome": self.outcome,
            "outcome_details": self.outcome_details,
        }


@dataclass
class SimExecutionRecord:
    """One accepted execute request, as received (see docs/CONTRACTS.md)."""

    request_uuid: str
    execution_uuids: list[str]
    workflow_id: str
    version: Literal["v1", "v2"]
    devices: list[Any]
    users: list[Any]
    params: dict[str, str] | None
    source_header: str | None
    received_at: datetime
    workflow_uuid: str = ""
    unresolved: list[Any] = field(default_factory=list)


@dataclass
class SimRequestRecord:
    """One HTTP request the simulator answered (Authorization redacted)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any
    spec_errors: list[str]
    status: int
    fault: str | None
    received_at: datetime


def _final(execution: SimTargetExecution) -> tuple[str, str, str, str]:
    """Deterministic outcome: unknown targets and names containing "fail" fail."""
    label = execution.target.label
    name = execution.workflow.name
    if not execution.target.resolved:
        return (
            FAILURE,
            "Target not found",
            FAILURE,
            f"No {execution.target.kind} matches {execution.target.given!r}",
        )
    if "fail" in label.lower() or execution.forced_failure:
        return FAILURE, "Remote action failed", FAILURE, f"{name} failed on {label}: exit 1"
    if "timeout" in label.lower():
        return TIMED_OUT, "Device did not answer", FAILURE, f"{label} was offline"
    return SUCCESS, "Workflow completed", SUCCESS, f"{name} completed on {label}"


def _held(execution: SimTargetExecution) -> tuple[str, str] | None:
    """The status an execution pauses in once its time is up, if it pauses at all."""
    if not execution.target.resolved:
        return None
    if execution.workflow.waits_for_event and not execution.triggered:
        return WAITING_FOR_EVENT, "Waiting for event"
    if "weird" in execution.target.label.lower():
        return PAUSED_BY_POLICY, "Paused by a policy"
    return None


class SimState:
    """All mutable tenant state, behind one lock so handler threads can share it."""

    def __init__(
        self, execution_seconds: float = 3.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.lock = threading.RLock()
        self.execution_seconds = execution_seconds
        self._clock = clock
        self.reset()

    def reset(self) -> None:
        """Forget every token, request and execution."""
        with self.lock:
            self.executions: list[SimExecutionRecord] = []
            self.target_executions: dict[str, SimTargetExecution] = {}
            self.requests: list[SimRequestRecord] = []
            self.token_requests = 0
            self.tokens_issued = 0
            self._tokens: dict[str, float] = {}
            self._unfinished: set[str] = set()

    # --- tokens -------------------------------------------------------------------------
    def count_token_request(self) -> None:
        """Count one call to the token endpoint, successful or not."""
        with self.lock:
            self.token_requests += 1

    def issue_token(self, ttl_seconds: float) -> str:
        """A new opaque access token valid for ttl_seconds."""
        token = "sim." + secrets.token_urlsafe(32)
        with self.lock:
            self._tokens[token] = self._clock() + ttl_seconds
            self.tokens_issued += 1
        return token

    def token_valid(self, token: str) -> bool:
        """Whether the token was issued here and has not expired."""
        with self.lock:
            expiry = self._tokens.get(token)
            return expiry is not None and self._clock() < expiry

    def expire_tokens(self) -> int:
        """Expire every issued token now; returns how many there were."""
        with self.lock:
            for token in self._tokens:
                self._tokens[token] = float("-inf")
            return len(self._tokens)

    # --- requests -----------------------------------------------------------------------
    def record_request(self, record: SimRequestRecord) -> None:
        """Remember one answered HTTP request."""
        with self.lock:
            self.requests.append(record)
            if len(self.requests) > MAX_RECORDED_REQUESTS:
                del self.requests[: len(self.requests) - MAX_RECORDED_REQUESTS]

    # --- executions ---------------------------------------------------------------------
    def record_execution(
        self,
        *,
        workflow: SimWorkflow,
        version: Literal["v1", "v2"],
        devices: list[Any],
        users: list[Any],
        params: dict[str, str] | None,
        source_header: str | None,
        targets: list[ResolvedTarget],
        forced_failure: bool = False,
    ) -> SimExecutionRecord:
        """Accept an execute request: one request UUID, one pending execution per target."""
        now = datetime.now(UTC)
        request_uuid = str(uuid.uuid4())
        with self.lock:
            start = self._clock() + self.execution_seconds * PENDING_SHARE
            due = self._clock() + self.execution_seconds
            children = [
                SimTargetExecution(
                    execution_uuid=str(uuid.uuid4()),
                    request_uuid=request_uuid,
                    workflow=workflow,
                    target=t,
                    request_time=now,
                    due_at=due,
                    start_at=start,
                    forced_failure=forced_failure,
                )
                for t in targets
            ]
            record = SimExecutionRecord(
                request_uuid=request_uuid,
                execution_uuids=[c.execution_uuid for c in children],
                workflow_id=workflow.id,
                version=version,
                devices=devices,
                users=users,
                params=params,
                source_header=source_header,
                received_at=now,
                workflow_uuid=workflow.uuid,
                unresolved=[t.given for t in targets if not t.resolved],
            )
            self.executions.append(record)
            self.target_executions.update((c.execution_uuid, c) for c in children)
            self._unfinished.update(c.execution_uuid for c in children)
        return record

    def _step(self, execution: SimTargetExecution, now: float, release: bool) -> None:
        """pending -> in_progress -> held (waiting_for_event, paused_by_policy) or final."""
        if execution.status in FINAL_STATUSES:
            return
        if execution.status not in HELD_STATUSES:
            if execution.start_at is not None and now < execution.start_at:
                return
            if execution.due_at is not None and now < execution.due_at:
                execution.status, execution.status_details = IN_PROGRESS, "Running"
                return
            execution.start_at = execution.due_at = None
            held = _held(execution)
            if held is not None:
                execution.status, execution.status_details = held
        if execution.status in HELD_STATUSES and not release:
            return
        status, details, outcome, outcome_details = _final(execution)
        execution.status, execution.status_details = status, details
        execution.outcome, execution.outcome_details = outcome, outcome_details
        self._unfinished.discard(execution.execution_uuid)

    def tick(self) -> None:
        """Move every execution whose time has come to its next state."""
        with self.lock:
            now = self._clock()
            for execution_uuid in list(self._unfinished):
                self._step(self.target_executions[execution_uuid], now, release=False)

    def advance(self, include_waiting: bool = False) -> int:
        """Finish everything now; held executions stay held unless asked; returns how many are."""
        with self.lock:
            for execution_uuid in list(self._unfinished):
                execution = self.target_executions[execution_uuid]
                self._step(execution, float("inf"), release=include_waiting)
            return len(self._unfinished)

    def trigger(self, execution_uuid: str, parameters: dict[str, str] | None) -> str:
        """Resume an execution waiting for an event; returns a new request UUID.

        Raises KeyError for an unknown execution and ValueError when it is not waiting.
        """
        with self.lock:
            self.tick()
            execution = self.target_executions[execution_uuid.lower()]
            if execution.status != WAITING_FOR_EVENT:
                raise ValueError(f"execution is {execution.status}, not waiting for an event")
            execution.triggered = True
            execution.trigger_params = parameters
            execution.status, execution.status_details = IN_PROGRESS, "Event received"
            execution.start_at = self._clock()
            execution.due_at = execution.start_at + self.execution_seconds
            return str(uuid.uuid4())

    def find_execution(self, execution_uuid: str) -> SimTargetExecution | None:
        """A snapshot of one execution, or None."""
        with self.lock:
            self.tick()
            found = self.target_executions.get(execution_uuid.lower())
            return dataclasses.replace(found) if found else None

    def executions_of_request(self, request_uuid: str) -> list[SimTargetExecution]:
        """Snapshots of a request's executions, in the order of its executionsUuids."""
        with self.lock:
            self.tick()
            record = next(
                (r for r in self.executions if r.request_uuid == request_uuid.lower()), None
            )
            if record is None:
                return []
            return [dataclasses.replace(self.target_executions[e]) for e in record.execution_uuids]

    def executions_of_workflow(
        self, workflow_id: str, *, since: datetime
    ) -> list[SimTargetExecution]:
        """Snapshots of a workflow's executions requested since then, newest request first."""
        wanted = workflow_id.lower()
        with self.lock:
            self.tick()
            return [
                dataclasses.replace(self.target_executions[e])
                for r in reversed(self.executions)
                if r.workflow_id.lower() == wanted and r.received_at >= since
                for e in r.execution_uuids
            ]

    def snapshot(self, request_limit: int = 200) -> dict[str, Any]:
        """A JSON-ready view of everything, for GET /_simulator/state."""
        with self.lock:
            self.tick()
            by_status: dict[str, int] = {}
            for e in self.target_executions.values():
                by_status[e.status] = by_status.get(e.status, 0) + 1
            return {
                "counts": {
                    "executions": len(self.executions),
                    "target_executions": len(self.target_executions),
                    "by_status": by_status,
                    "requests": len(self.requests),
                    "token_requests": self.token_requests,
                    "tokens_issued": self.tokens_issued,
                },
                "executions": [self.record_json(r) for r in self.executions],
                "requests": [request_json(r) for r in self.requests[-request_limit:]],
            }

    def requests_matching(self, path_prefix: str) -> dict[str, Any]:
        """The token counts and every recorded request under path_prefix, without headers."""
        with self.lock:
            found = [
                {k: v for k, v in request_json(r).items() if k != "headers"}
                for r in self.requests
                if r.path.startswith(path_prefix)
            ]
            return {
                "token_requests": self.token_requests,
                "tokens_issued": self.tokens_issued,
                "requests": found,
            }

    def record_json(self, record: SimExecutionRecord) -> dict[str, Any]:
        """One execute request with the current state of each of its executions."""
        with self.lock:
            data = dataclasses.asdict(record)
            data["received_at"] = iso(record.received_at)
            # The benchmark times the path to this moment: iso() keeps whole seconds only.
            data["received_epoch"] = record.received_at.timestamp()
            data["targets"] = [
                {
                    **self.target_executions[e].to_row(),
                    "target_kind": self.target_executions[e].target.kind,
                    "target": self.target_executions[e].target.given,
                    "resolved": self.target_executions[e].target.resolved,
                }
                for e in record.execution_uuids
            ]
            return data


def request_json(record: SimRequestRecord) -> dict[str, Any]:
    """One recorded HTTP request as JSON (bodies kept as received)."""
    data = dataclasses.asdict(record)
    data["received_at"] = iso(record.received_at)
    data["received_epoch"] = record.received_at.timestamp()
    return data
