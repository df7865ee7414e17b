"""Reading an identity provider's claims: the person's UPN and the portal role their groups give.

Pure functions without Django, so that portal/settings.py can check OIDC_ROLE_GROUPS at start-up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# Strongest first, as workflows_app.roles.ROLE_ORDER (which settings cannot import).
ROLE_NAMES = ("Admin", "Helpdesk", "Employee")
ANY_GROUP = "*"

RoleGroups = tuple[tuple[str, tuple[str, ...]], ...]


class ClaimsConfigError(ValueError):
    """OIDC_ROLE_GROUPS does not read; the message says where."""


def parse_role_groups(text: str) -> RoleGroups:
    """`Admin=grp-a,Helpdesk=grp-b|grp-c,Employee=*` -> ((role, groups), ...), strongest first.

    A role may be named several times (its groups add up); `*` gives the role to everyone
    signed in through the provider.
    """
    groups: dict[str, list[str]] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        role, sep, group = (piece.strip() for piece in item.partition("="))
        if not sep or not group:
            raise ClaimsConfigError(f"{item!r} is not Role=group")
        if role not in ROLE_NAMES:
            raise ClaimsConfigError(f"{role!r} is not one of {', '.join(ROLE_NAMES)}")
        for name in (g.strip() for g in group.split("|")):
            if name:
                groups.setdefault(role, []).append(name)
    return tuple((role, tuple(groups[role])) for role in ROLE_NAMES if role in groups)


def claim_groups(claims: Mapping[str, Any], claim: str) -> frozenset[str]:
    """The group names (or ids) in `claims[claim]`: a list of strings, or one string."""
    value = claims.get(claim)
    if isinstance(value, str):
        return frozenset({value})
    if isinstance(value, list | tuple):
        return frozenset(item for item in value if isinstance(item, str))
    return frozenset()


def role_for(groups: Iterable[str], role_groups: RoleGroups) -> str | None:
    """The strongest role any of these groups is mapped to, or None."""
    held = set(groups)
    for role, mapped in role_groups:
        if ANY_GROUP in mapped or held.intersection(mapped):
            return role
    return None


def first_claim(claims: Mapping[str, Any], names: Iterable[str]) -> str | None:
    """The first of these claims holding a non-empty string, stripped."""
    for name in names:
        value = claims.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None
