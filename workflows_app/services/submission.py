"""Sending one batch to Nexthink exactly once: claim it, build the request, call, record.

A batch is claimed (queued -> sending) before the call out and its outcome recorded after,
each through the batch lifecycle (services/lifecycle.py). Nexthink has no idempotency key, so
a batch that may have reached it (a redelivered message, a read timeout, a 5xx other than 503,
a worker that died mid-call) ends `unknown` and is never sent again automatically. Only what
proves nothing ran (a 429, a 503, no connection) is queued again, with backoff: for an
unavailable tenant over `NEXTHINK_SUBMIT_RETRY_MINUTES` (an outage, not a blip).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from contextlib import closing
from functools import partial
from typing import TypeVar

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from pydantic import ValidationError

from workflows_app import targets as targets_mod
from workflows_app.models import Batch, BatchState, Run, RunnableKind, Target
from workflows_app.nexthink import errors as nx
from workflows_app.nexthink.classic import ClassicClient, RemoteActionRefused, TooManyDevices
from workflows_app.nexthink.client import NexthinkClient
from workflows_app.nexthink.models import (
    ExecutionRequest,
    ExecutionResponse,
    ExternalIdsExecutionRequest,
)
from workflows_app.nexthink_factory import get_classic_client, get_client
from workflows_app.services import engine_answers, lifecycle
from workflows_app.services.params import MASK
from workflows_app.services.secrets import SecretsUnreadable, decrypt_dict

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Rate limiting is Nexthink asking us to wait, not failing: allow many more tries than for 5xx.
RATE_LIMITED_MAX_ATTEMPTS = 20


class _Outcome(Exception):
    """Internal: the batch ends before any call out (nothing was sent)."""

    def __init__(self, code: str, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


def send_batch(batch_id: int, *, claim_id: str) -> None:
    """Claim a queued batch for this task, send it once, and record what Nexthink answered."""
    if not lifecycle.claim(batch_id, claim_id):
        _handle_unclaimable(batch_id, claim_id)
        return
    batch = Batch.objects.select_related("run").get(pk=batch_id)
    if batch.run.kind == RunnableKind.REMOTE_ACTION:
        _send_remote_action(batch, claim_id)
        return
    try:
        request, target_ids = _build_request(batch)
        client = _client()
    except _Outcome as exc:
        lifecycle.finish(batch, claim_id, BatchState.FAILED, exc.code, exc.details)
        return
    with closing(client):
        if isinstance(request, ExecutionRequest):
            response = _call(batch, claim_id, partial(client.execute_v1, request))
        else:
            response = _call(batch, claim_id, partial(client.execute_v2, request))
    if response is not None:
        _record_success(batch, claim_id, target_ids, response)


def _send_remote_action(batch: Batch, claim_id: str) -> None:
    """Send a remote action batch to the classic web interface and record its Engines' answers."""
    try:
        client = _classic_client()
    except _Outcome as exc:
        lifecycle.finish(batch, claim_id, BatchState.FAILED, exc.code, exc.details)
        return
    with closing(client):
        try:
            uids = Target.objects.filter(batch=batch).order_by("position")
            request = client.request(
                remote_action_uid=batch.run.workflow_uuid,
                device_uids=list(uids.values_list("value", flat=True)),
                request_uid=engine_answers.request_uid(batch),
                params=_params(batch.run),
            )
        except _Outcome as exc:
            lifecycle.finish(batch, claim_id, BatchState.FAILED, exc.code, exc.details)
            return
        results = _call(batch, claim_id, partial(client.run, request))
    if results is not None:
        engine_answers.record(batch, claim_id, sent_as=request.requestUid or "", results=results)


def _call(batch: Batch, claim_id: str, call: Callable[[], T]) -> T | None:
    """Make the one call out for a claimed batch; on failure end or requeue it, return None.

    Only what proves nothing ran is queued again; what may have run ends `unknown`.
    """
    try:
        return call()
    except nx.RateLimited as exc:
        _retry_rate_limited(batch, claim_id, exc)
    except nx.Unavailable as exc:
        _retry_unavailable(batch, claim_id, exc)
    except TooManyDevices as exc:
        engine_answers.split(batch, claim_id, details=exc.message)
    except RemoteActionRefused as exc:
        lifecycle.finish(batch, claim_id, BatchState.FAILED, exc.code or "REFUSED", exc.message)
    except nx.BadRequest as exc:
        lifecycle.finish(batch, claim_id, BatchState.FAILED, exc.code or "BAD_REQUEST", exc.message)
    except nx.Forbidden as exc:
        lifecycle.finish(batch, claim_id, BatchState.FAILED, exc.code or "FORBIDDEN", exc.message)
    except nx.Unauthorized as exc:
        details = exc.message
        if batch.run.kind != RunnableKind.REMOTE_ACTION:
            details += " The portal's Nexthink API credentials need fixing by an admin."
        lifecycle.finish(batch, claim_id, BatchState.FAILED, "UNAUTHORIZED", details)
    except (nx.OutcomeUnknown, nx.InvalidResponse) as exc:
        code = "OUTCOME_UNKNOWN" if isinstance(exc, nx.OutcomeUnknown) else "INVALID_RESPONSE"
        lifecycle.finish(batch, claim_id, BatchState.UNKNOWN, code, exc.message)
    except nx.NexthinkError as exc:
        # A Nexthink error this code does not know: it may have run, so do not send it again.
        lifecycle.finish(batch, claim_id, BatchState.UNKNOWN, "NEXTHINK_ERROR", exc.message)
    except SoftTimeLimitExceeded:
        lifecycle.finish(
            batch,
            claim_id,
            BatchState.UNKNOWN,
            "TIME_LIMIT",
            "The task ran out of time while talking to Nexthink; the request may have run.",
        )
    return None


def _classic_client() -> ClassicClient:
    """The classic web interface's client; a configuration error fails the batch unsent."""
    try:
        return get_classic_client()
    except (ValidationError, ImproperlyConfigured) as exc:
        problem = (
            f"{exc.error_count()} problem(s)" if isinstance(exc, ValidationError) else str(exc)
        )
        raise _Outcome(
            "CLIENT_CONFIG",
            f"The portal's classic Nexthink settings are invalid ({problem}); an admin must fix "
            "NEXTHINK_CLASSIC_* settings.",
        ) from None


def _client() -> NexthinkClient:
    """The configured client; a configuration error fails the batch before anything is sent."""
    try:
        return get_client()
    except ValidationError as exc:
        raise _Outcome(
            "CLIENT_CONFIG",
            f"The portal's Nexthink settings are invalid ({exc.error_count()} problem(s)); "
            "an admin must fix NEXTHINK_* settings.",
        ) from None


def _handle_unclaimable(batch_id: int, claim_id: str) -> None:
    """A message for a batch this task cannot claim: a redelivery, a duplicate or an early one."""
    batch = Batch.objects.filter(pk=batch_id).first()
    if batch is None:
        logger.warning("Batch %s no longer exists; message %s dropped", batch_id, claim_id)
        return
    if batch.state == BatchState.SENDING and batch.claim_id == claim_id:
        # The broker redelivered the very message that claimed the batch: its worker died
        # during the call, so the request may have reached Nexthink. Never send it again.
        logger.warning("Batch %s redelivered to %s mid-send; marking unknown", batch_id, claim_id)
        lifecycle.finish(
            batch,
            claim_id,
            BatchState.UNKNOWN,
            "REDELIVERED",
            "The message sending this batch was delivered again (its worker died or lost the "
            "broker) before Nexthink's answer was recorded, so it may or may not have run. "
            "Reconcile it with Nexthink's execution history before sending these targets again.",
        )
        return
    logger.info(
        "Batch %s is %s (claim %s); message %s has nothing to do",
        batch_id,
        batch.state,
        batch.claim_id or "-",
        claim_id,
    )


def _build_request(
    batch: Batch,
) -> tuple[ExecutionRequest | ExternalIdsExecutionRequest, list[int]]:
    """The execute request for the batch, and its target ids in the order they are sent.

    Devices come first, then users, each in the order given: Nexthink answers one execution
    UUID per target in that order.
    """
    rows = (
        Target.objects.filter(batch=batch).order_by("position").values_list("id", "kind", "value")
    )
    stored = [(pk, targets_mod.from_row(kind, value)) for pk, kind, value in rows]
    ordered = sorted(stored, key=lambda row: row[1].is_user)  # stable: devices, then users
    sent = [t for _, t in ordered]
    params = _params(batch.run)
    version: targets_mod.ApiVersion = "v1" if batch.api_version == "v1" else "v2"
    try:
        request = targets_mod.execution_request(batch.run.workflow_nql_id, sent, params, version)
    except (ValidationError, ValueError) as exc:
        raise _Outcome("INVALID_TARGETS", f"The request could not be built: {exc}") from None
    return request, [pk for pk, _ in ordered]


def _params(run: Run) -> dict[str, str] | None:
    """The values to send: stored ones with each masked secret replaced by its decrypted value."""
    try:
        secrets = decrypt_dict(run.secret_params)
    except SecretsUnreadable as exc:
        raise _Outcome("SECRETS_UNREADABLE", str(exc)) from None
    values = {**run.params, **secrets}
    missing = sorted(k for k, v in values.items() if v == MASK)
    if missing:
        raise _Outcome(
            "SECRETS_LOST",
            f"The secret parameter(s) {', '.join(missing)} are no longer stored; start a new run.",
        )
    return {str(k): str(v) for k, v in values.items()} or None


def _record_success(
    batch: Batch, claim_id: str, target_ids: list[int], response: ExecutionResponse
) -> None:
    """Store the request UUID and each target's execution UUID (in the order they were sent)."""
    uuids = response.executionsUuids
    note = ""
    if len(uuids) != len(target_ids):
        note = (
            f"Nexthink returned {len(uuids)} execution ids for {len(target_ids)} targets; "
            f"the first {min(len(uuids), len(target_ids))} were matched in the order sent."
        )
    lifecycle.record_submitted(
        batch,
        claim_id,
        request_uuid=response.requestUuid,
        executions=list(zip(target_ids, uuids, strict=False)),
        note=note,
    )


def _retry_rate_limited(batch: Batch, claim_id: str, exc: nx.RateLimited) -> None:
    """Queue the batch again once Nexthink's Retry-After has passed (fail after many tries)."""
    cap = getattr(settings, "NEXTHINK_SUBMIT_MAX_RATE_LIMITED", RATE_LIMITED_MAX_ATTEMPTS)
    attempts = _attempts(batch)
    if attempts >= cap:
        details = f"{exc.message} Gave up after {attempts} attempts."
        lifecycle.finish(batch, claim_id, BatchState.FAILED, "RATE_LIMITED", details)
        return
    if exc.retry_after is not None:
        delay = exc.retry_after + random.uniform(0, min(1.0, exc.retry_after / 10 + 0.1))
    else:
        delay = backoff_delay(attempts)
    lifecycle.requeue(batch, claim_id, delay=delay, code="RATE_LIMITED", details=exc.message)


def _retry_unavailable(batch: Batch, claim_id: str, exc: nx.Unavailable) -> None:
    """Queue the batch again on the retry schedule, or fail it once the schedule is spent."""
    schedule = retry_schedule()
    attempts = _attempts(batch)
    if attempts > len(schedule):
        minutes = sum(schedule) / 60
        details = (
            f"{exc.message} Gave up after {attempts} attempts over {minutes:.1f} minutes; "
            "nothing was sent. Start the run again once Nexthink answers."
        )
        lifecycle.finish(batch, claim_id, BatchState.FAILED, "UNAVAILABLE", details)
        return
    # Jitter only lengthens a wait, so the tries still span at least the whole budget.
    delay = schedule[max(attempts, 1) - 1] * random.uniform(1.0, 1.1)
    lifecycle.requeue(batch, claim_id, delay=delay, code="UNAVAILABLE", details=exc.message)


def retry_schedule() -> list[float]:
    """The waits between tries of a batch Nexthink is unavailable for, from the settings."""
    return unavailable_schedule(
        budget_seconds=float(settings.NEXTHINK_SUBMIT_RETRY_MINUTES) * 60,
        base=float(settings.NEXTHINK_SUBMIT_BACKOFF_BASE),
        ceiling=float(settings.NEXTHINK_SUBMIT_BACKOFF_MAX),
    )


def unavailable_schedule(*, budget_seconds: float, base: float, ceiling: float) -> list[float]:
    """Waits doubling from `base`, each at most `ceiling`, until they add up to the budget.

    The n-th wait follows the n-th try; once they are spent the batch fails. Every try counts,
    rate-limited ones too (`Batch.attempts`): a batch throttled first has fewer tries left.
    """
    delays: list[float] = []
    total = 0.0
    while total < budget_seconds:
        delay = min(ceiling, base * 2.0 ** min(len(delays), 60))
        delays.append(delay)
        total += delay
    return delays


def _attempts(batch: Batch) -> int:
    """The batch's attempt count as stored (the claim incremented it in SQL)."""
    return Batch.objects.filter(pk=batch.pk).values_list("attempts", flat=True).first() or 0


def backoff_delay(attempts: int) -> float:
    """Seconds before the next try after `attempts` tries: exponential, capped, half jittered."""
    base = float(getattr(settings, "NEXTHINK_SUBMIT_BACKOFF_BASE", 2.0))
    ceiling = float(getattr(settings, "NEXTHINK_SUBMIT_BACKOFF_MAX", 120.0))
    step = min(ceiling, base * 2 ** max(0, attempts - 1))
    return step / 2 + random.uniform(0, step / 2)
