"""Reading people for the people pages: search, keyset pages by username, one person's devices.

No COUNT: a page is the next `size` usernames after the last one shown, with one more row read
to know whether there is a next page. A person's role comes from their groups, read with the
page (one query for all rows), superusers counting as admins as `roles.user_role` says.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import Group, User
from django.db.models import Prefetch, Q, QuerySet

from workflows_app.models import AuditAction, AuditEvent, DeviceAssignment
from workflows_app.roles import ROLE_ORDER, Role

PAGE_SIZE = 50
MAX_SEARCH_LENGTH = 150
MAX_TERMS = 5
# The role filter's values: each role's name, and "none" for people without one.
NO_ROLE = "none"
ROLE_FILTERS = (*[role.value for role in ROLE_ORDER], NO_ROLE)
RECENT_CHANGES = 10
PERSON_ACTIONS = (
    AuditAction.ROLE_CHANGED,
    AuditAction.UPN_CHANGED,
    AuditAction.DEVICE_ASSIGNED,
    AuditAction.DEVICE_UNASSIGNED,
)


@dataclass(frozen=True)
class PersonRow:
    """One person as the list shows them."""

    person: User
    role: Role | None
    superuser: bool


@dataclass(frozen=True)
class PeoplePage:
    """A page of people, by username, and the username to start the next page after."""

    rows: list[PersonRow]
    next_after: str | None


def strongest_role(group_names: set[str]) -> Role | None:
    """The strongest role among these group names (as `roles.user_role` ranks them)."""
    return next((role for role in ROLE_ORDER if role.value in group_names), None)


def role_of(person: User, group_names: set[str]) -> Role | None:
    """The person's role from their group names; superusers are admins."""
    return Role.ADMIN if person.is_superuser else strongest_role(group_names)


def people_matching(*, q: str = "", role: str = "") -> QuerySet[User]:
    """People whose username, name or email contain every word of `q`, with this role."""
    people = User.objects.all()
    for term in q.split()[:MAX_TERMS]:
        people = people.filter(
            Q(username__icontains=term)
            | Q(first_name__icontains=term)
            | Q(last_name__icontains=term)
            | Q(email__icontains=term)
        )
    if role == Role.ADMIN.value:
        people = people.filter(Q(is_superuser=True) | Q(groups__name=role))
    elif role in ROLE_FILTERS and role != NO_ROLE:
        # The strongest role decides: an Employee who is also Helpdesk is listed as Helpdesk.
        stronger = [r.value for r in ROLE_ORDER[: ROLE_ORDER.index(Role(role))]]
        people = people.filter(groups__name=role, is_superuser=False).exclude(
            groups__name__in=stronger
        )
    elif role == NO_ROLE:
        people = people.filter(is_superuser=False).exclude(
            groups__name__in=[r.value for r in ROLE_ORDER]
        )
    return people.distinct()


def people_page(
    *, q: str = "", role: str = "", after: str | None = None, size: int = PAGE_SIZE
) -> PeoplePage:
    """One page of people matching the search, ordered by username (keyset, no COUNT)."""
    people = people_matching(q=q, role=role)
    if after:
        people = people.filter(username__gt=after)
    groups = Prefetch("groups", queryset=Group.objects.only("name"))
    found = list(people.order_by("username").prefetch_related(groups)[: size + 1])
    rows = [
        PersonRow(
            person=person,
            role=role_of(person, {g.name for g in person.groups.all()}),
            superuser=person.is_superuser,
        )
        for person in found[:size]
    ]
    next_after = found[size - 1].username if len(found) > size else None
    return PeoplePage(rows, next_after)


def find_person(pk: int) -> User | None:
    """The person with this id, or None."""
    return User.objects.filter(pk=pk).first()


def person_row(person: User) -> PersonRow:
    """One person with their role, as the list shows them."""
    names = set(person.groups.values_list("name", flat=True))
    return PersonRow(person=person, role=role_of(person, names), superuser=person.is_superuser)


def assigned_to(person: User) -> list[DeviceAssignment]:
    """The devices assigned to this person, by name."""
    return list(DeviceAssignment.objects.filter(user=person).order_by("device_name", "pk"))


def recent_changes(person: User, *, limit: int = RECENT_CHANGES) -> list[AuditEvent]:
    """The latest audited changes to this person (role, devices), newest first."""
    # By action first: the (action, at) index finds these few kinds among all entries.
    return list(
        AuditEvent.objects.filter(action__in=PERSON_ACTIONS)
        .filter(object_type="user", object_id=str(person.pk))
        .order_by("-at", "-id")[:limit]
    )
