"""People and roles: find a person, see their role and last sign-in, change their role (admins),
assign or remove the devices self-service falls back on (helpdesk and admins)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.models import User
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from workflows_app.forms.people import NO_ROLE, DeviceForm, RemoveDeviceForm, RoleForm, UpnForm
from workflows_app.roles import Role, has_role, role_required
from workflows_app.selectors.people import (
    MAX_SEARCH_LENGTH,
    ROLE_FILTERS,
    assigned_to,
    find_person,
    people_page,
    person_row,
    recent_changes,
)
from workflows_app.services import people
from workflows_app.services.audit import client_address
from workflows_app.views.http import AuthenticatedHttpRequest

STAFF = (Role.HELPDESK, Role.ADMIN)


@require_safe
@role_required(*STAFF)
def people_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    """People by username, searched by username, name or email, filtered by role; 50 a page."""
    q = _text(request.GET.get("q", ""))
    role = _text(request.GET.get("role", ""))
    ignored = []
    if role and role not in ROLE_FILTERS:
        ignored.append(f"Unknown role {role[:40]!r}: ignored.")
        role = ""
    after = _text(request.GET.get("after", "")) or None
    page = people_page(q=q, role=role, after=after)
    query = {name: value for name, value in (("q", q), ("role", role)) if value}
    context = {
        "page": page,
        "q": q,
        "role": role,
        "roles": [(value, "No role" if value == NO_ROLE else value) for value in ROLE_FILTERS],
        "ignored": ignored,
        "filter_query": urlencode(query),
        "next_query": urlencode({**query, "after": page.next_after}) if page.next_after else "",
        "paged": after is not None,
    }
    return render(request, "people/list.html", context)


@never_cache  # a person's devices and role: no copy kept by browsers or proxies
@require_safe
@role_required(*STAFF)
def person_detail(request: AuthenticatedHttpRequest, person_id: int) -> HttpResponse:
    """One person: role, last sign-in, assigned devices, and the forms that change them."""
    return _detail_page(request, _person_or_404(person_id))


@require_POST
@role_required(Role.ADMIN)
def change_role(request: AuthenticatedHttpRequest, person_id: int) -> HttpResponse:
    """Give the person a role (or none); refused for superusers and for the last admin."""
    person = _person_or_404(person_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The role was not changed: choose one of the roles offered.")
        return _detail_page(request, person, role_form=form, status=400)
    try:
        change = people.set_role(
            person=person, role=form.chosen(), by=request.user, ip=client_address(request)
        )
    except people.PeopleRefused as exc:
        messages.error(request, f"The role was not changed. {exc.message}")
        return _detail_page(request, person, role_form=form, status=exc.status)
    name = person.get_username()
    if not change.changed:
        messages.info(request, f"{name} already has the role {people.role_label(change.after)}.")
    else:
        before, after = people.role_label(change.before), people.role_label(change.after)
        messages.success(request, f"{name} changed from {before} to {after}.")
    if person.pk == request.user.pk and change.after is not Role.ADMIN:
        return redirect("home")  # this page may no longer be theirs to see
    return redirect("people:detail", person_id=person.pk)


@require_POST
@role_required(Role.ADMIN)
def change_upn(request: AuthenticatedHttpRequest, person_id: int) -> HttpResponse:
    """Set a local account's UPN (self-service finds their devices and runs user fixes by it)."""
    person = _person_or_404(person_id)
    form = UpnForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The UPN was not changed: correct it below.")
        return _detail_page(request, person, upn_form=form, status=400)
    upn = form.cleaned_data["upn"]
    try:
        changed = people.set_upn(
            person=person, upn=upn, by=request.user, ip=client_address(request)
        )
    except people.PeopleRefused as exc:
        messages.error(request, f"The UPN was not changed. {exc.message}")
        return _detail_page(request, person, upn_form=form, status=exc.status)
    if changed:
        messages.success(request, f"UPN of {person.get_username()} is now {upn or 'none'}.")
    return redirect("people:detail", person_id=person.pk)


@require_POST
@role_required(*STAFF)
def assign_device(request: AuthenticatedHttpRequest, person_id: int) -> HttpResponse:
    """Assign a device to the person: self-service offers it when NQL finds none of theirs."""
    person = _person_or_404(person_id)
    form = DeviceForm(request.POST)
    if not form.is_valid():
        messages.error(request, "No device was assigned: correct the fields marked below.")
        return _detail_page(request, person, device_form=form, status=400)
    try:
        assignment = people.assign_device(
            person=person,
            device_name=form.cleaned_data["device_name"],
            collector_uid=form.cleaned_data["collector_uid"],
            classic_uid=form.cleaned_data["classic_uid"],
            note=form.cleaned_data["note"],
            by=request.user,
            ip=client_address(request),
        )
    except people.PeopleRefused as exc:
        messages.error(request, f"No device was assigned. {exc.message}")
        return _detail_page(request, person, device_form=form, status=exc.status)
    messages.success(
        request, f"{assignment.device_name} is now assigned to {person.get_username()}."
    )
    return redirect("people:detail", person_id=person.pk)


@require_POST
@role_required(*STAFF)
def remove_device(request: AuthenticatedHttpRequest, person_id: int) -> HttpResponse:
    """Remove one of the person's assigned devices."""
    person = _person_or_404(person_id)
    form = RemoveDeviceForm(request.POST)
    if not form.is_valid():
        messages.error(request, "No device was removed: reload the page and try again.")
        return _detail_page(request, person, status=400)
    try:
        assignment = people.unassign_device(
            person=person,
            assignment_id=form.cleaned_data["assignment"],
            by=request.user,
            ip=client_address(request),
        )
    except people.PeopleRefused as exc:
        messages.error(request, f"No device was removed. {exc.message}")
        return _detail_page(request, person, status=exc.status)
    messages.success(
        request, f"{assignment.device_name} is no longer assigned to {person.get_username()}."
    )
    return redirect("people:detail", person_id=person.pk)


def _detail_page(
    request: AuthenticatedHttpRequest,
    person: User,
    *,
    role_form: RoleForm | None = None,
    device_form: DeviceForm | None = None,
    upn_form: UpnForm | None = None,
    status: int = 200,
) -> HttpResponse:
    row = person_row(person)
    may_change_role = has_role(request.user, Role.ADMIN)
    context: dict[str, Any] = {
        "row": row,
        "person": person,
        "assignments": assigned_to(person),
        "may_change_role": may_change_role,
        "role_form": role_form or RoleForm(initial={"role": people.stored_role(person) or NO_ROLE}),
        "device_form": device_form or DeviceForm(),
        "upn": people.stored_upn(person),
        "upn_from_sso": people.signs_in_with_sso(person),
        "upn_form": upn_form or UpnForm(initial={"upn": people.stored_upn(person)}),
        "changes": recent_changes(person) if may_change_role else [],
        "is_self": person.pk == request.user.pk,
    }
    return render(request, "people/detail.html", context, status=status)


def _person_or_404(person_id: int) -> User:
    person = find_person(person_id)
    if person is None:
        raise Http404("No such person.")
    return person


def _text(value: str) -> str:
    """A query-string value: NUL removed (PostgreSQL refuses it), trimmed, capped."""
    return value.replace("\x00", "").strip()[:MAX_SEARCH_LENGTH]
