"""Resuming an execution paused on a "wait for event" step: the one way pages and the CLI do it.

The portal checks first, calling nothing when it says no: the execution must be known to the
portal, the person allowed (`permissions.may_resume`), and the target still `waiting`. Then a
`Resumption` row is written, Nexthink's trigger endpoint called once (never retried: it has no
idempotency key) and its answer recorded on the row, whatever it is. On success the target is
`running` again (Nexthink continues) and its batch is checked at once, with the backoff
restarted, so that the run's page and the inbox follow within seconds.

Should two people resume one execution at the same moment, Nexthink refuses the second (it is no
longer waiting there) and that answer is recorded like any other.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Mapping

from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from workflows_app import permissions
from workflows_app.models import (
    AuditAction,
    Batch,
    Outcome,
    ParameterDefinition,
    Resumption,
    Run,
    RunEventKind,
    Target,
)
from workflows_app.nexthink import errors as nx
from workflows_app.nexthink.client import NexthinkClient
from workflows_app.nexthink.models import UUID_PATTERN
from workflows_app.nexthink_factory import get_client
from workflows_app.selectors.waiting import target_by_execution
from workflows_app.services import audit, lifecycle, timeline
from workflows_app.services.params import MASK, MAX_VALUE_LENGTH, secret_names

logger = logging.getLogger(__name__)

MAX_PARAMETERS = 50
MAX_NAME_LENGTH = ParameterDefinition._meta.get_field("name").max_length or 100
MAX_CODE_LENGTH = Resumption._meta.get_field("error_code").max_length or 100

UNKNOWN = "The portal knows no execution {uuid}: it resumes only executions it started."
NOT_WAITING = "This execution is not waiting for an event (it is {outcome})."
UPSTREAM_NOT_WAITING = "Nexthink says this execution is not waiting for an event any more"
UPSTREAM_UNKNOWN = "Nexthink does not know this execution"
FORBIDDEN = (
    "Nexthink refused permission to resume it ({code}{details}). Check that the portal's API "
    "credentials have the Workflows API permission."
)
NOTHING_RESUMED = "Nothing was resumed: try again later."
MAY_HAVE_RESUMED = (
    "The execution may have been resumed: the portal checks its status within seconds. "
    "Resume it again only if it is still waiting then."
)
RESUMED_DETAILS = "Resumed from the portal by {user}; Nexthink continues it."
NO_WORKFLOW_UUID = (
    "The run holds no valid Nexthink UUID for '{name}', so it cannot be resumed from the portal; "
    "resume it in Nexthink."
)
NOT_CONFIGURED = "The portal is not connected to Nexthink ({reason}). Nothing was resumed."
_UUID = re.compile(UUID_PATTERN)
# Upstream codes meaning "no such execution", whatever the HTTP status they came with.
UNKNOWN_CODES = frozenset({"EXECUTION_NOT_FOUND", "NOT_FOUND"})


class ResumeRefused(Exception):
    """Why an execution was not resumed: `message` for the person, `status` for a page.

    `resumption` is the recorded attempt when Nexthink was called (None when the portal itself
    said no before calling).
    """

    def __init__(self, message: str, status: int, resumption: Resumption | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.resumption = resumption

    def __str__(self) -> str:
        return self.message


def resume_execution(
    *,
    user: User,
    execution_uuid: str,
    params: Mapping[str, str],
    source: Run.Source,
    secret: Collection[str] = (),
    ip: str | None = None,
) -> Resumption:
    """Resume one waiting execution with `params` (sent as given); raise ResumeRefused if not.

    Values of the workflow's secret parameters, and of the names in `secret`, are stored masked.
    """
    target = target_by_execution(execution_uuid)
    if target is None:
        raise ResumeRefused(UNKNOWN.format(uuid=execution_uuid.strip()[:64]), 404)
    run = target.run
    reason = permissions.may_resume(user, run.workflow)
    if reason is not None:
        raise ResumeRefused(reason, 403)
    if target.outcome != Outcome.WAITING:
        raise ResumeRefused(NOT_WAITING.format(outcome=_outcome_words(target)), 400)
    if not _UUID.fullmatch(run.workflow_uuid):
        raise ResumeRefused(NO_WORKFLOW_UUID.format(name=run.workflow_name), 400)
    problems = parameter_problems(params)
    if problems:
        raise ResumeRefused(" ".join(problems), 400)
    values = dict(params)
    hidden = secret_names(run.workflow) | set(secret)
    resumption = Resumption.objects.create(
        run=run,
        target=target,
        execution_uuid=target.execution_uuid,
        requested_by=user,
        source=source,
        params={name: MASK if name in hidden else value for name, value in values.items()},
    )
    try:
        client = get_client()
    except ImproperlyConfigured as exc:
        _record_error(resumption, "NOT_CONFIGURED", str(exc))
        raise ResumeRefused(NOT_CONFIGURED.format(reason=exc), 503, resumption) from None
    try:
        request_uuid = _trigger(client, run, target, values, resumption)
    except ResumeRefused:
        _audit(resumption, user, ip)
        raise
    finally:
        client.close()
    _record_resumed(resumption, target, request_uuid, user)
    _audit(resumption, user, ip)
    logger.info(
        "Execution %s (run %s) resumed by %s from %s: Nexthink request %s",
        target.execution_uuid,
        run.pk,
        user.get_username(),
        source,
        request_uuid,
    )
    resumption.refresh_from_db()
    return resumption


def parameter_problems(params: Mapping[str, str]) -> list[str]:
    """What keeps these parameters from being sent: names non-empty, values text, sizes."""
    problems: list[str] = []
    if len(params) > MAX_PARAMETERS:
        problems.append(f"At most {MAX_PARAMETERS} parameters can be given.")
    for name, value in params.items():
        if not isinstance(name, str) or not name.strip():
            problems.append("Every parameter needs a name.")
        elif "\x00" in name or len(name) > MAX_NAME_LENGTH:
            problems.append(f"Parameter names have at most {MAX_NAME_LENGTH} characters, no NUL.")
        if not isinstance(value, str):
            problems.append(f"The value of '{name}' must be text.")
        elif "\x00" in value or len(value) > MAX_VALUE_LENGTH:
            problems.append(
                f"The value of '{name}' has at most {MAX_VALUE_LENGTH:,} characters, no NUL."
            )
    return list(dict.fromkeys(problems))


def _outcome_words(target: Target) -> str:
    """The target's outcome as a person reads it, in lower case ("running", "succeeded")."""
    if not target.outcome:
        return "not sent yet"
    return str(target.get_outcome_display()).lower()


def _trigger(
    client: NexthinkClient,
    run: Run,
    target: Target,
    values: dict[str, str],
    resumption: Resumption,
) -> str:
    """Call Nexthink once; Nexthink's request id, or ResumeRefused with the answer recorded."""
    try:
        answers = client.trigger_wait_for_event(run.workflow_uuid, target.execution_uuid, values)
    except nx.NexthinkError as exc:
        raise _refusal(exc, target, resumption) from None
    request_uuid = answers[0].requestUuid if answers else ""
    if not request_uuid:
        error = nx.InvalidResponse("Nexthink answered the trigger without a request id")
        raise _refusal(error, target, resumption)
    return request_uuid


def _refusal(exc: nx.NexthinkError, target: Target, resumption: Resumption) -> ResumeRefused:
    """Record Nexthink's error on the resumption and word it for the person."""
    if isinstance(exc, nx.BadRequest):
        _record_error(resumption, exc.code, exc.details)
        said = f" ({exc.code}: {exc.details})" if exc.details else f" ({exc.code})"
        # Nexthink knows better than the portal's last check: look again now.
        _check_soon(target.batch_id)
        if exc.status == 404 or exc.code in UNKNOWN_CODES:
            return ResumeRefused(UPSTREAM_UNKNOWN + said + ".", 404, resumption)
        return ResumeRefused(UPSTREAM_NOT_WAITING + said + ".", 400, resumption)
    if isinstance(exc, nx.Forbidden):
        _record_error(resumption, exc.code, exc.details)
        details = f": {exc.details}" if exc.details else ""
        return ResumeRefused(FORBIDDEN.format(code=exc.code, details=details), 403, resumption)
    if isinstance(exc, nx.Unauthorized):
        _record_error(resumption, "UNAUTHORIZED", exc.message)
        return ResumeRefused(f"{exc.message} Nothing was resumed.", 403, resumption)
    if isinstance(exc, nx.RateLimited):
        _record_error(resumption, "RATE_LIMITED", exc.message)
        wait = f" in {exc.retry_after:g} s" if exc.retry_after is not None else " later"
        message = f"Nexthink is rate limiting requests. Nothing was resumed: try again{wait}."
        return ResumeRefused(message, 429, resumption)
    if isinstance(exc, nx.Unavailable):
        _record_error(resumption, "UNAVAILABLE", exc.message)
        message = f"Nexthink is unavailable ({exc.reason}). {NOTHING_RESUMED}"
        return ResumeRefused(message, 503, resumption)
    # OutcomeUnknown, InvalidResponse: the trigger may have reached Nexthink.
    code = "OUTCOME_UNKNOWN" if isinstance(exc, nx.OutcomeUnknown) else "INVALID_RESPONSE"
    _record_error(resumption, code, exc.message)
    _check_soon(target.batch_id)
    return ResumeRefused(f"No clear answer from Nexthink. {MAY_HAVE_RESUMED}", 503, resumption)


def _audit(resumption: Resumption, user: User, ip: str | None) -> None:
    """The attempt in the audit log and on the run's timeline, whatever Nexthink answered."""
    resumption.refresh_from_db()
    answer = (
        f"Nexthink request {resumption.request_uuid}"
        if resumption.succeeded
        else f"refused: {resumption.error_code}: {resumption.error_details}"
    )
    summary = f"Resumed execution {resumption.execution_uuid} of run {resumption.run_id}: {answer}"
    audit.record(
        AuditAction.RUN_RESUMED,
        actor=user,
        summary=summary,
        obj=resumption.run,
        details={
            "execution": resumption.execution_uuid,
            "params": resumption.params,  # secret values already masked
            "request_uuid": resumption.request_uuid,
            "error_code": resumption.error_code,
            "source": resumption.source,
        },
        ip=ip,
    )
    timeline.note(
        resumption.run_id,
        RunEventKind.RESUMED,
        f"{user.get_username()} resumed execution {resumption.execution_uuid}: {answer}",
        actor=user,
        details={"params": resumption.params},
    )


def _record_error(resumption: Resumption, code: str, details: str) -> None:
    Resumption.objects.filter(pk=resumption.pk).update(
        error_code=(code or "ERROR")[:MAX_CODE_LENGTH], error_details=details
    )
    resumption.error_code, resumption.error_details = code, details


def _record_resumed(resumption: Resumption, target: Target, request_uuid: str, user: User) -> None:
    """Nexthink continues the execution: note it, follow it again at once, re-derive the run."""
    with transaction.atomic():
        Resumption.objects.filter(pk=resumption.pk).update(request_uuid=request_uuid[:64])
        # Unless a check saw it end meanwhile (then that answer stands).
        Target.objects.filter(pk=target.pk, outcome=Outcome.WAITING).update(
            outcome=Outcome.RUNNING,
            outcome_details=RESUMED_DETAILS.format(user=user.get_username()),
        )
        _check_soon(target.batch_id)
        lifecycle.recount(target.batch_id)
        lifecycle.refresh_run_status(target.run_id)


def _check_soon(batch_id: int) -> None:
    """Plan the batch's next check now, with its backoff restarted."""
    Batch.objects.filter(pk=batch_id).update(next_check_at=timezone.now(), checks=0)
