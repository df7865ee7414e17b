"""Signing someone in from their identity provider's claims: their account, UPN and role.

The account is found by the provider's `sub` (kept on PersonProfile), never by a name or an
address the provider could reuse: a local account (the break-glass admin) is never taken over.
The role is set from the groups claim at every sign-in (OIDC_ROLE_GROUPS), through
people.set_role, so that each change is audited like an admin's.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from workflows_app.models import PersonProfile
from workflows_app.roles import Role
from workflows_app.services.people import PeopleRefused, set_role
from workflows_app.sso.claims import claim_groups, first_claim, role_for

logger = logging.getLogger(__name__)

ROLE_SOURCE = "sign-in (identity provider groups)"
NO_SUBJECT = "Your company sign-in did not say who you are (no subject). Ask {contact} for help."
NO_UPN = (
    "Your company sign-in did not give the portal your user name ({claims}). Ask {contact} "
    "to check the portal's single sign-on set-up."
)
NAME_TAKEN = (
    "The portal already has an account named {name} that is not yours, so your company account "
    "cannot use that name. Ask {contact} to remove or rename that account."
)
RACE = "Your first sign-in was being set up twice at once. Sign in again; it will work now."


class SignInRefused(Exception):
    """The claims do not let this person in; `message` says why and whom to ask."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _contact() -> str:
    return str(settings.PORTAL_ACCESS_CONTACT)


def upn_from(claims: Mapping[str, Any]) -> str:
    """The person's UPN: the first of OIDC_UPN_CLAIMS that holds one."""
    upn = first_claim(_without_nul(claims), settings.OIDC_UPN_CLAIMS)
    if upn is None:
        names = ", ".join(settings.OIDC_UPN_CLAIMS)
        raise SignInRefused(NO_UPN.format(claims=names, contact=_contact()))
    return upn[:255]


def role_from(claims: Mapping[str, Any]) -> Role | None:
    """The role OIDC_ROLE_GROUPS gives the groups in OIDC_GROUPS_CLAIM, or None."""
    groups = claim_groups(claims, str(settings.OIDC_GROUPS_CLAIM))
    role = role_for(groups, settings.OIDC_ROLE_GROUPS)
    return Role(role) if role is not None else None


def subject_of(claims: Mapping[str, Any]) -> str:
    """The provider's `sub`, or a refusal."""
    subject = _without_nul(claims).get("sub")
    if not isinstance(subject, str) or not subject.strip():
        raise SignInRefused(NO_SUBJECT.format(contact=_contact()))
    return subject.strip()[:255]


def find_person(claims: Mapping[str, Any]) -> User | None:
    """The account this provider subject signed in with before, if any."""
    profile = (
        PersonProfile.objects.select_related("user").filter(oidc_subject=subject_of(claims)).first()
    )
    return profile.user if profile is not None else None


def create_person(claims: Mapping[str, Any], *, ip: str | None) -> User:
    """A new account for a first sign-in, named by its UPN; refused when a local one has it."""
    subject, upn = subject_of(claims), upn_from(claims)
    username = upn[:150]
    if User.objects.filter(username__iexact=username).exists():
        raise SignInRefused(NAME_TAKEN.format(name=username, contact=_contact()))
    try:
        with transaction.atomic():
            person = User.objects.create_user(username)
            PersonProfile.objects.create(user=person, upn=upn, oidc_subject=subject)
    except IntegrityError:
        # The same subject or name created meanwhile (two tabs): nothing of this one is kept.
        raise SignInRefused(RACE) from None
    return update_person(person, claims, ip=ip)


def update_person(person: User, claims: Mapping[str, Any], *, ip: str | None) -> User:
    """Refresh name, email, UPN and role from the claims (each sign-in)."""
    upn = upn_from(claims)
    person.first_name = _text(claims.get("given_name"), 150) or person.first_name
    person.last_name = _text(claims.get("family_name"), 150) or person.last_name
    person.email = _text(claims.get("email"), 254) or person.email
    person.save(update_fields=["first_name", "last_name", "email"])
    PersonProfile.objects.update_or_create(user=person, defaults={"upn": upn})
    if not person.is_superuser:
        try:
            set_role(person=person, role=role_from(claims), by=None, by_name=ROLE_SOURCE, ip=ip)
        except PeopleRefused as exc:
            # The last admin keeps the role: the portal is never left without one.
            logger.warning("Role of %s kept at sign-in: %s", person.get_username(), exc.message)
    return person


def _text(value: object, limit: int) -> str:
    return value.replace("\x00", "").strip()[:limit] if isinstance(value, str) else ""


def _without_nul(claims: Mapping[str, Any]) -> dict[str, Any]:
    """The claims with NUL taken out of string values: PostgreSQL text refuses it."""
    return {k: v.replace("\x00", "") if isinstance(v, str) else v for k, v in claims.items()}
