"""Asking the helpdesk for help with one's own self-service fix: the rule, the offer, the request.

One rule decides whether a run's requester may ask (`refusal`); the pages ask it to offer the
button (`help_offer`) and `request_help` asks it again under the run's lock. A run has at most
one help request (the one-to-one is the database's guarantee): asking again, or two clicks at
once, give the request that exists. The request is recorded (row, timeline, audit) and
published as `run.help_requested`; the channels (services/escalation.py, webhooks) tell the
helpdesk once the transaction commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from workflows_app.models import (
    AuditAction,
    HelpRequest,
    Outcome,
    Run,
    RunEventKind,
    RunStatus,
    Target,
)
from workflows_app.selectors.help_requests import help_request_of, help_requests_of
from workflows_app.selectors.runs import TARGET_COLUMNS, employee_title
from workflows_app.services import audit, escalation, notifications, timeline

MAX_MESSAGE = 2000
# A self-service run names a device and/or a user: a few targets at most; more are counted.
TARGETS_SENT = 20
# The fix did what it should (the quieter "Still not fixed? Get help" is offered).
WORKED = frozenset({RunStatus.SUCCEEDED, RunStatus.SENT})
# What the runs page reads of a target, and Nexthink's own word for its outcome.
_TARGET_COLUMNS = (*TARGET_COLUMNS, "upstream_outcome")

NOT_SELF_SERVICE = (
    "Help requests are for self-service fixes. This run was started from the "
    "{source}: the helpdesk already knows about it."
)
NOT_FINAL = (
    "This fix has not finished yet. Wait until it has (its page updates by itself), then ask "
    "for help if it did not work."
)
NOT_CONFIGURED = "The portal cannot send help requests to the helpdesk. {contact}"
MESSAGE_TOO_LONG = "Keep your message to {limit} characters at most (it has {length})."


class HelpRefused(Exception):
    """A help request the portal refuses; `status` is the page's HTTP status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def refusal(run: Run) -> HelpRefused | None:
    """Why the run's requester may not ask for help with it now, or None."""
    if run.source != Run.Source.SELF_SERVICE:
        return HelpRefused(NOT_SELF_SERVICE.format(source=run.get_source_display()), 403)
    if not run.is_final:
        return HelpRefused(NOT_FINAL, 409)
    if not escalation.channel_configured():
        return HelpRefused(NOT_CONFIGURED.format(contact=escalation.contact_text()), 409)
    return None


def message_problem(message: str) -> str | None:
    """Why the employee's message cannot be sent, or None (the form and the service ask)."""
    if len(message) > MAX_MESSAGE:
        return MESSAGE_TOO_LONG.format(limit=MAX_MESSAGE, length=len(message))
    return None


@dataclass(frozen=True)
class HelpOffer:
    """What a requester's page of their self-service fix says about getting help.

    `existing`: the request already made. Otherwise `available` offers the button (`quiet`
    when the fix worked), or `contact` says how to reach IT when the portal cannot send one.
    """

    run: Run
    existing: HelpRequest | None = None
    available: bool = False
    quiet: bool = False
    contact: str = ""


def help_offer(user: User, run: Run, existing: HelpRequest | None = None) -> HelpOffer | None:
    """The help offered on this person's page of the run; None when nothing is (not theirs,
    not self-service, or still running). `existing` saves a query when the caller read it."""
    if run.created_by_id != user.pk or run.source != Run.Source.SELF_SERVICE:
        return None
    existing = existing or help_request_of(run)
    if existing is not None:
        return HelpOffer(run, existing=existing)
    if not run.is_final:
        return None
    quiet = run.status in WORKED
    if not escalation.channel_configured():
        return HelpOffer(run, quiet=quiet, contact=escalation.contact_text())
    return HelpOffer(run, available=True, quiet=quiet)


def flow_help_offer(user: User, step_runs: Sequence[Run]) -> HelpOffer | None:
    """The help offered on a person's ended self-service flow run, about one of its steps' runs:
    the one they already asked about, else the first that did not work, else the last."""
    if not step_runs:
        return None
    helped = help_requests_of(run.pk for run in step_runs)
    for run in step_runs:
        if run.pk in helped:
            return help_offer(user, run, existing=helped[run.pk])
    failed = (run for run in step_runs if run.is_final and run.status not in WORKED)
    return help_offer(user, next(failed, step_runs[-1]))


@dataclass(frozen=True)
class HelpGiven:
    """The run's help request, and whether this call made it (else it existed already)."""

    help_request: HelpRequest
    created: bool


def request_help(
    *, run: Run, user: User, message: str, run_url: str, ip: str | None = None
) -> HelpGiven:
    """Open the helpdesk request of the person's own final self-service run, or give the one
    that exists. `run_url` is the run's page as the helpdesk opens it (absolute).

    Raises HelpRefused when the rule says no (404 for someone else's run).
    """
    if run.created_by_id != user.pk:
        raise HelpRefused("No such run of yours.", 404)
    message = message.strip()
    problem = message_problem(message)
    if problem is not None:
        raise HelpRefused(problem, 422)
    with transaction.atomic():
        # Two clicks at once: the second waits here, then finds the first one's request.
        runs = Run.objects.select_for_update(of=("self",)).select_related("workflow__curation")
        locked = runs.get(pk=run.pk)
        existing = help_request_of(locked)
        if existing is not None:
            return HelpGiven(existing, created=False)
        refused = refusal(locked)
        if refused is not None:
            raise refused
        help_request = HelpRequest.objects.create(
            run=locked,
            requested_by=user,
            message=message,
            channels=escalation.configured_channels(),
        )
        help_request.details = help_details(help_request, locked, user=user, run_url=run_url)
        help_request.save(update_fields=["details"])
        _record(help_request, locked, user=user, ip=ip)
        notifications.publish(locked.pk, notifications.Event.HELP_REQUESTED, **help_request.details)
    return HelpGiven(help_request, created=True)


def _record(help_request: HelpRequest, run: Run, *, user: User, ip: str | None) -> None:
    """The request on the run's timeline and in the audit log."""
    reference = help_request.reference
    channels = " and ".join(help_request.channels) or "no channel"
    timeline.note(
        run.pk,
        RunEventKind.HELP_REQUESTED,
        f"{user.get_username()} asked the helpdesk for help ({reference}, by {channels})",
        actor=user,
        details={"reference": reference, "help_request": help_request.pk},
    )
    audit.record(
        AuditAction.HELP_REQUESTED,
        actor=user,
        summary=f"Help requested for run {run.pk} ({reference})",
        obj=help_request,
        details={"run": run.pk, "reference": reference, "channels": help_request.channels},
        ip=ip,
    )


def mark_handled(help_request: HelpRequest, *, user: User, ip: str | None = None) -> bool:
    """Record that `user` (helpdesk or admin: the view checks) dealt with the request; False
    when someone already had (their name and time are kept, nothing is audited twice)."""
    now = timezone.now()
    with transaction.atomic():
        claimed = HelpRequest.objects.filter(pk=help_request.pk, handled_at__isnull=True).update(
            handled_at=now, handled_by=user
        )
        if claimed:
            audit.record(
                AuditAction.HELP_HANDLED,
                actor=user,
                summary=f"Help request {help_request.reference} handled",
                obj=help_request,
                details={"run": help_request.run_id, "reference": help_request.reference},
                ip=ip,
            )
    help_request.refresh_from_db(fields=["handled_at", "handled_by"])
    return bool(claimed)


def help_details(
    help_request: HelpRequest, run: Run, *, user: User, run_url: str
) -> dict[str, Any]:
    """Everything a helpdesk needs, as JSON (the event's details, the e-mail's content).

    Parameters are the run's masked ones: a secret value never reaches this.
    """
    targets = list(
        Target.objects.filter(run_id=run.pk)
        .order_by("position")
        .only(*_TARGET_COLUMNS)[:TARGETS_SENT]
    )
    return {
        "reference": help_request.reference,
        "help_request_id": help_request.pk,
        "message": help_request.message,
        "requested_at": help_request.created_at.isoformat(),
        "channels": help_request.channels,
        "employee": {
            "name": user.get_full_name() or user.get_username(),
            "username": user.get_username(),
            "email": user.email,
        },
        "run": {
            "id": run.pk,
            "url": run_url,
            "workflow": employee_title(run),
            "workflow_name": run.workflow_name,
            "workflow_nql_id": run.workflow_nql_id,
            "kind": run.kind,
            "status": run.status,
            "status_label": run.get_status_display(),
            "created_at": run.created_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "reason": run.reason,
            "parameters": {str(k): str(v) for k, v in (run.params or {}).items()},
        },
        "devices": [t.value for t in targets if not t.kind.startswith("user_")],
        "targets": [_target(t) for t in targets],
        "targets_total": run.target_count,
    }


_OUTCOME_LABELS = dict(Outcome.choices)


def _target(target: Target) -> dict[str, str]:
    outcome = target.outcome
    return {
        "kind": target.kind,
        "value": target.value,
        "outcome": outcome or "queued",
        "outcome_label": _OUTCOME_LABELS.get(outcome, outcome) if outcome else "Not sent yet",
        "status": target.status,
        "status_details": target.status_details,
        "nexthink_outcome": target.upstream_outcome,
        "outcome_details": target.outcome_details,
        "execution_id": target.execution_uuid,
    }
