"""Who may run which workflow from the portal: the one rule pages, the CLI and services ask.

Two questions, always in this order:

1. Can the portal start the workflow at all, whoever asks? Not when it was removed from Nexthink,
   is inactive there, has its API trigger off, or takes no targets (the execute API needs one);
   from the self-service page also not while a required parameter has no default, since
   employees are never asked for values.
2. May this person start it from here? Admins may run everything; helpdesk agents whatever the
   curation's roles do not leave Helpdesk out of; employees only workflows offered for
   self-service, and only from the self-service page.

`permit` answers both at once: a `RunPermit` to hand to the run service, or a refusal that says
why (`NotRunnable`: a page explaining it; `NotAllowed`: 403). Ask it once per request and pass
the permit on. `runnable_in_nexthink` is the queryset form of the workflow-level part, and
`self_service_warnings` tells admins the same reasons while they curate.

`may_resume` is the rule for the other thing people do with a workflow: resuming its executions
paused on a "wait for event" step (helpdesk and admins; a curation may leave Helpdesk out).

`may_decide` is the four-eyes rule: who may approve or reject a held run (someone of the
request's approver role or above, admins always, never the person who asked for it).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TypeAlias

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Q

from workflows_app.models import Approval, Run, Workflow
from workflows_app.nexthink.models import Dependency
from workflows_app.platforms import enabled_kinds
from workflows_app.roles import Role, user_role

# Whoever asks: a signed-in person or an anonymous visitor.
AnyUser: TypeAlias = User | AnonymousUser

NO_ROLE = "You have no portal role."
EMPLOYEES_USE_SELF_SERVICE = (
    "Employees run workflows from the self-service page, on their own device."
)


class Blocker(StrEnum):
    """A reason the portal cannot start a workflow, whoever asks."""

    REMOVED = "removed"
    INACTIVE = "inactive"
    API_TRIGGER_OFF = "api_trigger_off"
    NO_TARGETS = "no_targets"
    PLATFORM_OFF = "platform_off"  # NEXTHINK_PLATFORMS leaves its platform (cloud/classic) out


def blockers(workflow: Workflow) -> tuple[Blocker, ...]:
    """Every reason the portal cannot start this workflow, the most fundamental first."""
    found: list[Blocker] = []
    if workflow.kind not in enabled_kinds():
        found.append(Blocker.PLATFORM_OFF)
    if workflow.is_removed:
        found.append(Blocker.REMOVED)
    elif workflow.status != Workflow.Status.ACTIVE:
        # A removed workflow's status is the last one Nexthink sent: it says nothing more.
        found.append(Blocker.INACTIVE)
    if not workflow.trigger_api:
        found.append(Blocker.API_TRIGGER_OFF)
    if workflow.dependency == Dependency.NONE:
        found.append(Blocker.NO_TARGETS)
    return tuple(found)


def runnable_in_nexthink() -> Q:
    """Workflows Nexthink lets the portal start (present, active, API trigger on), as a filter.

    These are the blockers a catalogue sync changes; `blockers()` finds none of them on exactly
    the rows this filter keeps. NO_TARGETS is left to each page: self-service lists such fixes
    and says why they cannot run.
    """
    return Q(
        status=Workflow.Status.ACTIVE,
        removed_at__isnull=True,
        trigger_api=True,
        kind__in=sorted(enabled_kinds()),
    )


def missing_defaults(workflow: Workflow) -> list[str]:
    """The required parameters without a default, which an employee could never fill in.

    Reads `workflow.parameters.all()`, so a prefetched list costs no query per workflow.
    """
    return [p.label or p.name for p in workflow.parameters.all() if p.required and p.default == ""]


class Refusal(Exception):
    """Why a person may not start a workflow from the portal; `message` is theirs to read."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotRunnable(Refusal):
    """The portal cannot start the workflow from here, whoever asks; `blockers` says why."""

    def __init__(self, message: str, blockers: tuple[Blocker, ...] = ()) -> None:
        super().__init__(message)
        self.blockers = blockers


class NotAllowed(Refusal):
    """The workflow could run, but not by this person, or not from where they ask."""


@dataclass(frozen=True)
class RunPermit:
    """What `permit` grants: `user`, acting as `role`, may run `workflow` from `source`."""

    user: User
    role: Role
    workflow: Workflow
    source: Run.Source


def permit(user: AnyUser, workflow: Workflow, source: Run.Source) -> RunPermit:
    """Let this person run this workflow from `source`, or raise NotRunnable / NotAllowed."""
    not_runnable = workflow_refusal(workflow, source)
    if not_runnable is not None:
        raise not_runnable
    role = user_role(user)
    if role is None or isinstance(user, AnonymousUser):
        raise NotAllowed(NO_ROLE)
    reason = _role_refusal(role, workflow, source)
    if reason is not None:
        raise NotAllowed(reason)
    return RunPermit(user=user, role=role, workflow=workflow, source=source)


def permit_flow_step(
    user: AnyUser, workflow: Workflow, source: Run.Source, *, offered_flow: bool
) -> RunPermit:
    """`permit` for one step of a flow. An admin who offers a flow for self-service offers its
    steps with it: an employee may run them from the self-service page whatever each
    workflow's own curation says; everything else is `permit`'s answer."""
    if offered_flow and source == Run.Source.SELF_SERVICE and user_role(user) is Role.EMPLOYEE:
        not_runnable = workflow_refusal(workflow, source)
        if not_runnable is not None:
            raise not_runnable
        assert isinstance(user, User)
        return RunPermit(user=user, role=Role.EMPLOYEE, workflow=workflow, source=source)
    return permit(user, workflow, source)


def refusal(user: AnyUser, workflow: Workflow, source: Run.Source) -> Refusal | None:
    """What `permit` would refuse, without raising: for pages that list many workflows."""
    try:
        permit(user, workflow, source)
    except Refusal as exc:
        return exc
    return None


def workflow_refusal(workflow: Workflow, source: Run.Source) -> NotRunnable | None:
    """Why the portal cannot start this workflow from `source` whoever asks, or None.

    The message is worded for whoever uses `source`: employees on the self-service page are
    told a fix is not available, helpdesk and admins what to change in Nexthink.
    """
    found = blockers(workflow)
    self_service = source == Run.Source.SELF_SERVICE
    if found:
        first = found[0]
        if self_service and first is Blocker.NO_TARGETS:
            message = (
                "Not available here: this fix needs no device or user, and Nexthink can only "
                "start such workflows itself."
            )
        else:
            message = _staff_reason(first, workflow)
        return NotRunnable(message, found)
    if self_service:
        missing = missing_defaults(workflow)
        if missing:
            names = ", ".join(f"'{name}'" for name in missing)
            return NotRunnable(f"Not available yet: an admin must give a default value to {names}.")
    return None


def _staff_reason(blocker: Blocker, workflow: Workflow) -> str:
    """One blocker as helpdesk and admins read it: what is wrong and where to fix it."""
    name = workflow.name
    if blocker is Blocker.PLATFORM_OFF:
        platform = "classic" if workflow.is_remote_action else "cloud"
        return (
            f"'{name}' runs on the {platform} Nexthink platform, which this portal is not set "
            "up for (NEXTHINK_PLATFORMS); an admin must configure it."
        )
    if blocker is Blocker.REMOVED:
        removed = f" (removed {workflow.removed_at:%Y-%m-%d})" if workflow.removed_at else ""
        return (
            f"'{name}' no longer exists in Nexthink{removed}. "
            "It stays in the catalogue for its run history."
        )
    if blocker is Blocker.INACTIVE:
        return f"'{name}' is inactive in Nexthink; it must be activated there first."
    if blocker is Blocker.API_TRIGGER_OFF:
        return (
            f"'{name}' does not have its API trigger enabled in Nexthink, so the portal "
            "cannot start it. Ask a Nexthink administrator to enable the API trigger."
        )
    return (
        f"'{name}' takes no targets, and the Nexthink execute API needs at least one "
        "device or user: start it from Nexthink instead."
    )


def _role_refusal(role: Role, workflow: Workflow, source: Run.Source) -> str | None:
    """Why this role may not run this (runnable) workflow from `source`, or None."""
    if role is Role.ADMIN:
        return None
    curation = workflow.curation_or_none
    if role is Role.EMPLOYEE:
        if source != Run.Source.SELF_SERVICE:
            return EMPLOYEES_USE_SELF_SERVICE
        if curation is None or not curation.self_service:
            return f"'{workflow.name}' is not offered for self-service."
        return None
    allowed = curation.allowed_roles if curation is not None else []
    if allowed and Role.HELPDESK.value not in allowed:
        return f"Your role may not run '{workflow.name}'; ask an admin."
    return None


# --- resuming waiting executions ---------------------------------------------------------------

EMPLOYEES_DO_NOT_RESUME = "Employees cannot resume waiting executions: the helpdesk approves them."


def may_resume(user: AnyUser, workflow: Workflow) -> str | None:
    """Why this person may not resume executions of `workflow` waiting for an event, or None.

    Admins always may; helpdesk agents unless the curation's `resume_roles` is non-empty and
    leaves Helpdesk out; employees never (a wait step is an approval by someone else).
    """
    role = user_role(user)
    if role is None or isinstance(user, AnonymousUser):
        return NO_ROLE
    if role is Role.ADMIN:
        return None
    if role is Role.EMPLOYEE:
        return EMPLOYEES_DO_NOT_RESUME
    curation = workflow.curation_or_none
    roles = curation.resume_roles if curation is not None else []
    if roles and Role.HELPDESK.value not in roles:
        return f"Your role may not resume executions of '{workflow.name}'; ask an admin."
    return None


# --- approving held runs (four-eyes) ------------------------------------------------------------

# Who may be asked to approve: the weakest role an item may name. Admins may always decide.
APPROVER_ROLES = (Role.HELPDESK, Role.ADMIN)
OWN_REQUEST = (
    "You asked for this run: someone else must approve it, whatever your role (four-eyes rule)."
)


APPROVER_LABELS = {Role.HELPDESK: "the helpdesk or an admin", Role.ADMIN: "an admin"}


def approver_label(value: str) -> str:
    """Who may approve a request for approver role `value`, in words ("an admin")."""
    return APPROVER_LABELS[approver_role(value)]


def approver_role(value: str) -> Role:
    """The role an item's `approver_role` names; empty or unknown means admins."""
    return Role.HELPDESK if value == Role.HELPDESK.value else Role.ADMIN


def deciding_roles(value: str) -> tuple[Role, ...]:
    """The roles that may decide a request whose approver role is `value` (admins always)."""
    return APPROVER_ROLES if approver_role(value) is Role.HELPDESK else (Role.ADMIN,)


def role_may_decide(user: AnyUser, value: str) -> bool:
    """Whether this person's role may decide requests for approver role `value`."""
    return user_role(user) in deciding_roles(value)


def may_decide(user: AnyUser, approval: Approval) -> str | None:
    """Why this person may not approve or reject this request, or None."""
    if not role_may_decide(user, approval.approver_role):
        who = approver_label(approval.approver_role)
        return f"Only {who} may decide on this request; your role may not."
    if user.pk == approval.requested_by_id:
        return OWN_REQUEST
    return None


# What admins read while curating: the same blockers, as clauses of one sentence.
_CURATION_CLAUSES = {
    Blocker.PLATFORM_OFF: "its Nexthink platform is not configured (NEXTHINK_PLATFORMS)",
    Blocker.REMOVED: "it was removed from Nexthink",
    Blocker.INACTIVE: "it is inactive in Nexthink",
    Blocker.API_TRIGGER_OFF: "its API trigger is off",
    Blocker.NO_TARGETS: "it takes no targets, which the portal cannot run",
}


def self_service_warnings(workflow: Workflow) -> list[str]:
    """Why a workflow offered for self-service will not work for employees now (not errors).

    Status and triggers change with every catalogue sync, so they cannot make curation invalid;
    every dependency is accepted (self-service targets the employee's own device and user).
    """
    found = blockers(workflow)
    if not found:
        return []
    reasons = " and ".join(_CURATION_CLAUSES[blocker] for blocker in found)
    return [
        f"'{workflow.nql_id}' is offered for self-service, but employees will not see it "
        f"while {reasons}."
    ]
