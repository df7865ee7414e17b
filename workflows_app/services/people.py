"""People and roles: changing a person's role and the devices assigned to them, each audited.

A role is a Django group named by `roles.Role`; a person has at most one of them here (other
groups are left alone). Superusers are admins whatever their groups (`roles.user_role`), so
their role is not changed here. The portal never loses its last admin: a change that would
leave no active admin is refused, and role changes are serialised on the Admin group's row so
that two admins demoting each other at once cannot both succeed.

Assigned devices stand in when the self-service NQL lookup finds none of the person's devices
(services/devices.py); helpdesk agents may assign them as well as admins.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group, User
from django.db import IntegrityError, transaction
from django.db.models import Q

from workflows_app.models import AuditAction, DeviceAssignment, PersonProfile
from workflows_app.roles import Role
from workflows_app.selectors.people import strongest_role
from workflows_app.services import audit
from workflows_app.targets import TargetError, TargetKind, classify_classic, normalise

NOTE_LENGTH = DeviceAssignment._meta.get_field("note").max_length or 200
LAST_ADMIN = (
    "{name} is the last admin of the portal: give someone else the Admin role first, so that "
    "somebody can still manage people and settings."
)
SUPERUSER = (
    "{name} is a superuser, and superusers are admins whatever their role here. Remove the "
    "superuser status in Django's admin first if they should have another role."
)

SSO_UPN = (
    "{name} signs in with the company account, which gives the portal their UPN at each "
    "sign-in: change it in the identity provider."
)


class PeopleRefused(Exception):
    """A change to a person the portal refuses; `message` says why and what to do."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class RoleChange:
    """A role change as it was applied (`changed` is False when the role was already that)."""

    before: Role | None
    after: Role | None

    @property
    def changed(self) -> bool:
        return self.before != self.after


def role_label(role: Role | None) -> str:
    """How a role (or none) is written in pages and the audit log."""
    return role.value if role is not None else "No role"


def stored_role(person: User) -> Role | None:
    """The strongest role among the person's groups, read fresh (superuser status aside)."""
    return strongest_role(set(person.groups.values_list("name", flat=True)))


def active_admins() -> Q:
    """Active accounts that are admins: in the Admin group, or superusers."""
    return Q(is_active=True) & (Q(is_superuser=True) | Q(groups__name=Role.ADMIN.value))


def set_role(
    *,
    person: User,
    role: Role | None,
    by: AbstractBaseUser | None,
    ip: str | None = None,
    by_name: str = "",
) -> RoleChange:
    """Give `person` exactly this portal role (or none); audited with before and after.

    `by` is the admin; without one (a sign-in applying the provider's groups) `by_name` says
    what changed it.
    """
    name = person.get_username()
    if person.is_superuser:
        raise PeopleRefused(SUPERUSER.format(name=name))
    with transaction.atomic():
        # Every role change waits here for the one before it (the last-admin check reads them).
        admin_group, _ = Group.objects.get_or_create(name=Role.ADMIN.value)
        Group.objects.select_for_update().filter(pk=admin_group.pk).first()
        before = stored_role(person)
        change = RoleChange(before, role)
        if not change.changed:
            return change
        if before is Role.ADMIN and person.is_active and not _other_admin_exists(person):
            raise PeopleRefused(LAST_ADMIN.format(name=name))
        role_groups = Group.objects.filter(name__in=[r.value for r in Role])
        person.groups.remove(*role_groups)
        if role is not None:
            person.groups.add(Group.objects.get_or_create(name=role.value)[0])
        audit.record(
            AuditAction.ROLE_CHANGED,
            actor=by,
            actor_name=by_name,
            summary=f"Role of {name} changed from {role_label(before)} to {role_label(role)}",
            obj=person,
            details={
                "person": name,
                "before": before.value if before else None,
                "after": role.value if role else None,
            },
            ip=ip,
        )
    return change


def _other_admin_exists(person: User) -> bool:
    return User.objects.filter(active_admins()).exclude(pk=person.pk).exists()


# --- UPN ----------------------------------------------------------------------------------------


def stored_upn(person: User) -> str:
    """The UPN kept for the person ("" when none)."""
    found = PersonProfile.objects.filter(user=person).values_list("upn", flat=True).first()
    return found or ""


def signs_in_with_sso(person: User) -> bool:
    """Whether the person's account was created by (and takes its UPN from) company sign-in."""
    return PersonProfile.objects.filter(user=person, oidc_subject__isnull=False).exists()


def set_upn(*, person: User, upn: str, by: AbstractBaseUser, ip: str | None = None) -> bool:
    """Set a local account's UPN ("" = none: the email stands in); audited. True if changed.

    SSO accounts take theirs from the provider at each sign-in, so it is not edited here.
    """
    name = person.get_username()
    with transaction.atomic():
        profile, _ = PersonProfile.objects.select_for_update().get_or_create(user=person)
        if profile.oidc_subject:
            raise PeopleRefused(SSO_UPN.format(name=name))
        before = profile.upn
        if before == upn:
            return False
        profile.upn = upn
        profile.save(update_fields=["upn"])
        audit.record(
            AuditAction.UPN_CHANGED,
            actor=by,
            summary=f"UPN of {name} changed from {before or 'none'} to {upn or 'none'}",
            obj=person,
            details={"person": name, "before": before, "after": upn},
            ip=ip,
        )
    return True


# --- devices ------------------------------------------------------------------------------------


def clean_device_name(value: str) -> str:
    """The device name as stored, or ValueError saying why it cannot be one."""
    value = value.strip()
    try:
        return normalise(TargetKind.DEVICE_NAME, value)
    except TargetError as exc:
        raise ValueError(f"Not a usable device name: {exc.reason}.") from None


def clean_collector_uid(value: str) -> str:
    """The Collector UUID as stored (lower case; "" for none), or ValueError saying why not."""
    value = value.strip()
    if not value:
        return ""
    try:
        return normalise(TargetKind.DEVICE_COLLECTOR, value)
    except TargetError as exc:
        raise ValueError(
            f"Not a Collector UUID: {exc.reason}. Leave it empty to target the device by name."
        ) from None


def clean_classic_uid(value: str) -> str:
    """The classic device UID as stored (lower case; "" for none), or ValueError saying why."""
    value = value.strip()
    if not value:
        return ""
    try:
        return classify_classic(value)[1]
    except TargetError as exc:
        raise ValueError(
            f"Not a classic device UID: {exc.reason}. Leave it empty if the device is not on "
            "the classic platform."
        ) from None


def assign_device(
    *,
    person: User,
    device_name: str,
    collector_uid: str = "",
    classic_uid: str = "",
    note: str = "",
    by: AbstractBaseUser,
    ip: str | None = None,
) -> DeviceAssignment:
    """Assign a device to `person` (the self-service fallback); refused if already assigned."""
    try:
        name = clean_device_name(device_name)
        uid = clean_collector_uid(collector_uid)
        classic = clean_classic_uid(classic_uid)
    except ValueError as exc:
        raise PeopleRefused(str(exc)) from None
    note = note.replace("\x00", "").strip()[:NOTE_LENGTH]
    existing = DeviceAssignment.objects.filter(user=person, device_name__iexact=name).first()
    if existing is not None:
        raise _already(existing.device_name, person)
    try:
        with transaction.atomic():
            assignment = DeviceAssignment.objects.create(
                user=person, device_name=name, collector_uid=uid, classic_uid=classic, note=note
            )
            record_assignment(assignment, by=by, ip=ip)
    except IntegrityError:  # assigned by someone else a moment ago
        raise _already(name, person) from None
    return assignment


def _already(device_name: str, person: User) -> PeopleRefused:
    return PeopleRefused(
        f"{device_name} is already assigned to {person.get_username()}: remove it first to "
        "change it."
    )


def unassign_device(
    *, person: User, assignment_id: int, by: AbstractBaseUser, ip: str | None = None
) -> DeviceAssignment:
    """Remove one of `person`'s assigned devices; 404 when it is not theirs (or gone)."""
    with transaction.atomic():
        assignment = (
            DeviceAssignment.objects.select_for_update()
            .filter(pk=assignment_id, user=person)
            .first()
        )
        if assignment is None:
            raise PeopleRefused(
                "That device is not assigned to this person (any more): reload the page.",
                status=404,
            )
        record_unassignment(assignment, by=by, ip=ip)
        assignment.delete()
    return assignment


def record_assignment(
    assignment: DeviceAssignment,
    *,
    by: AbstractBaseUser | AnonymousUser | None,
    ip: str | None = None,
) -> None:
    """Audit a device assigned (here, or through Django's admin)."""
    _record_device(AuditAction.DEVICE_ASSIGNED, "assigned to", assignment, by=by, ip=ip)


def record_unassignment(
    assignment: DeviceAssignment,
    *,
    by: AbstractBaseUser | AnonymousUser | None,
    ip: str | None = None,
) -> None:
    """Audit a device assignment removed (here, or through Django's admin)."""
    _record_device(AuditAction.DEVICE_UNASSIGNED, "no longer assigned to", assignment, by=by, ip=ip)


def _record_device(
    action: AuditAction,
    words: str,
    assignment: DeviceAssignment,
    *,
    by: AbstractBaseUser | AnonymousUser | None,
    ip: str | None,
) -> None:
    person = assignment.user.get_username()
    audit.record(
        action,
        actor=by,
        summary=f"Device {assignment.device_name} {words} {person}",
        obj=assignment.user,
        details=_assignment_details(assignment),
        ip=ip,
    )


def _assignment_details(assignment: DeviceAssignment) -> dict[str, str]:
    return {
        "person": assignment.user.get_username(),
        "device_name": assignment.device_name,
        "collector_uid": assignment.collector_uid,
        "classic_uid": assignment.classic_uid,
        "note": assignment.note,
    }
