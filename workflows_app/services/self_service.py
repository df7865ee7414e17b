"""Starting a self-service fix on the signed-in person's own device and identity.

Nothing a request says about targets is trusted: the device is looked up by its form key among
the person's own devices (services.devices), the user target is the person's own UPN, and the
workflow's parameters are the defaults an admin curated. Whether the person may run the fix at
all is the run rule's answer (workflows_app.permissions), asked by the page.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from workflows_app.models import Run, RunStatus, Workflow
from workflows_app.nexthink.models import Dependency
from workflows_app.permissions import RunPermit
from workflows_app.services.devices import (
    DeviceChoice,
    DeviceLookup,
    classic_devices_for,
    devices_for,
    user_upn,
)
from workflows_app.services.runs import RunRefused, create_permitted_run
from workflows_app.targets import Target, TargetKind

DEVICE_DEPENDENCIES = frozenset({Dependency.DEVICE, Dependency.USER_AND_DEVICE})
USER_DEPENDENCIES = frozenset({Dependency.USER, Dependency.USER_AND_DEVICE})
NOT_YOUR_DEVICE = (
    "That device is not one of yours (or no longer listed for you). Reload the page and pick "
    "one of your devices."
)
NO_UPN = (
    "Your account has no UPN (nor email address), so Nexthink cannot tell who you are. Ask the "
    "helpdesk to add it to your account."
)


class SelfServiceRefused(Exception):
    """A self-service request the portal refuses before anything is recorded or sent."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def __str__(self) -> str:
        return self.message


def needs_device(workflow: Workflow) -> bool:
    """Whether the workflow runs on a device (DEVICE or USER_AND_DEVICE)."""
    return workflow.dependency in DEVICE_DEPENDENCIES


def needs_user(workflow: Workflow) -> bool:
    """Whether the workflow runs on a user (USER or USER_AND_DEVICE)."""
    return workflow.dependency in USER_DEPENDENCIES


def devices_offered(user: User, workflow: Workflow) -> DeviceLookup:
    """The person's devices this fix can run on: any of theirs for a workflow; for a remote
    action, those assigned to them with a classic device UID (README, "Classic remote actions")."""
    return classic_devices_for(user) if workflow.is_remote_action else devices_for(user)


def self_service_targets(
    workflow: Workflow, *, upn: str | None, device: DeviceChoice | None
) -> list[Target]:
    """The run's targets: the chosen device and/or the person's UPN, as the dependency needs."""
    return targets_for(
        str(workflow.dependency), upn=upn, device=device, classic=workflow.is_remote_action
    )


def targets_for(
    dependency: str, *, upn: str | None, device: DeviceChoice | None, classic: bool = False
) -> list[Target]:
    """The chosen device and/or the person's UPN, as a dependency (a workflow's, a flow's) needs;
    `classic`: the device by its classic device UID, for a remote action."""
    targets: list[Target] = []
    if dependency in DEVICE_DEPENDENCIES:
        if device is None:
            raise SelfServiceRefused(NOT_YOUR_DEVICE)
        # A Collector UUID lets the run go through API v1; a name alone needs v2.
        if classic:
            if not device.classic_uid:
                raise SelfServiceRefused(NOT_YOUR_DEVICE)
            targets.append(Target(TargetKind.DEVICE_CLASSIC_UID, device.classic_uid, 1))
        elif device.collector_uid:
            targets.append(Target(TargetKind.DEVICE_COLLECTOR, device.collector_uid, 1))
        else:
            targets.append(Target(TargetKind.DEVICE_NAME, device.name, 1))
    if dependency in USER_DEPENDENCIES:
        if upn is None:
            raise SelfServiceRefused(NO_UPN)
        targets.append(Target(TargetKind.USER_UPN, upn, len(targets) + 1))
    return targets


def start_self_service_run(
    *, permit: RunPermit, device_key: str | None, ip: str | None = None
) -> Run:
    """Record the self-service run a permit allows, on the person's own device and identity.

    Raises SelfServiceRefused when the device key is not one of the person's devices (or the
    person has no UPN), and RunRefused when the run service refuses, including the double-click
    guard, whose `existing_run` is the run asked for moments ago.
    """
    if permit.source != Run.Source.SELF_SERVICE:
        raise ValueError(f"a self-service run needs a self-service permit, not {permit.source}")
    user, workflow = permit.user, permit.workflow
    device = devices_offered(user, workflow).find(device_key) if needs_device(workflow) else None
    upn = user_upn(user) if needs_user(workflow) else None
    targets = self_service_targets(workflow, upn=upn, device=device)
    note = f"Self-service on {device.label}" if device is not None else "Self-service"

    def create(allow_duplicate: bool) -> Run:
        return create_permitted_run(
            permit,
            targets=targets,
            params={},
            reason=note,
            allow_duplicate=allow_duplicate,
            ip=ip,
        )

    # One creation at a time per person (a no-op lock on SQLite, whose writes are serialised):
    # of two simultaneous clicks the second waits here, then sees the first run and is refused.
    with transaction.atomic():
        get_user_model().objects.select_for_update().filter(pk=user.pk).exists()
        try:
            return create(allow_duplicate=False)
        except RunRefused as exc:
            existing = exc.existing_run
            if existing is None:
                raise
            if existing.status != RunStatus.FAILED:
                raise RunRefused(duplicate_message(existing), existing_run=existing) from exc
        # The earlier run failed before reaching Nexthink: trying again is what the person wants.
        return create(allow_duplicate=True)


def duplicate_message(run: Run) -> str:
    """What the person reads when they start the same fix again within the guard's window."""
    minutes = int((timezone.now() - run.created_at).total_seconds() // 60)
    if minutes < 1:
        when = "less than a minute ago"
    elif minutes == 1:
        when = "1 minute ago"
    else:
        when = f"{minutes} minutes ago"
    if run.status == RunStatus.WAITING:
        state = "it's waiting for an approval or event"
    elif not run.is_final:
        state = "it's still in progress"
    elif run.status == RunStatus.SUCCEEDED:
        state = "it worked"
    else:
        state = "it has finished"
    return f"You already ran this {when} — {state}. It was not started twice."
