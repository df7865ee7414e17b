"""Personal API tokens: creating, revoking, and knowing whose a presented token is.

A token is `nxp_` and 43 URL-safe characters (256 random bits); only its SHA-256 is stored, so
a database copy gives nobody a usable token and a lookup is one indexed equality. The token
itself is returned once, by `create_token`, and never logged or audited (its first characters,
`prefix`, name it on pages and in the audit log).

Who may hold and use one: helpdesk and admins (`TOKEN_ROLES`), active accounts. A token of a
person who lost that role, or whose account was deactivated, stops working at once: `identify`
asks on every request.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from workflows_app.models import ApiToken, AuditAction
from workflows_app.roles import Role, has_role
from workflows_app.services import audit

TOKEN_PREFIX = "nxp_"
TOKEN_ROLES = (Role.HELPDESK, Role.ADMIN)
SHOWN_PREFIX_LENGTH = len(TOKEN_PREFIX) + 6
MAX_NAME_LENGTH = ApiToken._meta.get_field("name").max_length or 100
MAX_EXPIRY_DAYS = 3650
# Reading calls note the last use at most this often: one UPDATE a minute per token, not per call.
LAST_USED_EVERY = timedelta(seconds=60)
NOT_ALLOWED = "Only helpdesk agents and admins can use API tokens."


class TokenRefused(Exception):
    """Why a token cannot be created, revoked or used; `message` is for the person."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class NewToken:
    """A token just made: the row, and the secret shown this one time."""

    token: ApiToken
    secret: str


def may_hold_tokens(user: User | AnonymousUser) -> bool:
    """Whether this person may create and use API tokens: an active helpdesk agent or admin."""
    return bool(user.is_active) and has_role(user, *TOKEN_ROLES)


def hash_token(secret: str) -> str:
    """The stored form of a token: its SHA-256 in hex."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


@sensitive_variables("secret")
def create_token(
    *,
    user: User,
    name: str,
    expires_days: int | None = None,
    by: AbstractBaseUser | None = None,
    ip: str | None = None,
) -> NewToken:
    """Make a token for `user` (by themselves, or `by` an operator's command); audited."""
    if not may_hold_tokens(user):
        raise TokenRefused(NOT_ALLOWED, 403)
    name = name.replace("\x00", "").strip()
    if not name:
        raise TokenRefused("Give the token a name, e.g. the tool that will use it.")
    if len(name) > MAX_NAME_LENGTH:
        raise TokenRefused(f"A token's name has at most {MAX_NAME_LENGTH} characters.")
    if expires_days is not None and not 1 <= expires_days <= MAX_EXPIRY_DAYS:
        raise TokenRefused(f"A token expires after 1 to {MAX_EXPIRY_DAYS} days, or never.")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = timezone.now() + timedelta(days=expires_days) if expires_days else None
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=name,
            prefix=secret[:SHOWN_PREFIX_LENGTH],
            token_hash=hash_token(secret),
            expires_at=expires_at,
        )
        audit.record(
            AuditAction.TOKEN_CREATED,
            actor=by or user,
            summary=f"API token '{name}' ({token.prefix}…) created for {user.get_username()}",
            obj=token,
            details={
                "owner": user.get_username(),
                "name": name,
                "prefix": token.prefix,
                "expires_at": expires_at.isoformat() if expires_at else None,
            },
            ip=ip,
        )
    return NewToken(token=token, secret=secret)


def revoke_token(*, user: User, token_id: int, ip: str | None = None) -> ApiToken:
    """Revoke one of this person's own tokens (404 for anyone else's); audited once."""
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().filter(pk=token_id, user=user).first()
        if token is None:
            raise TokenRefused("No such token of yours.", 404)
        if token.revoked_at is not None:
            return token
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit.record(
            AuditAction.TOKEN_REVOKED,
            actor=user,
            summary=f"API token '{token.name}' ({token.prefix}…) revoked",
            obj=token,
            details={"owner": user.get_username(), "name": token.name, "prefix": token.prefix},
            ip=ip,
        )
    return token


def tokens_of(user: User) -> QuerySet[ApiToken]:
    """This person's tokens, newest first, revoked ones included (the page says so)."""
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-id")


@sensitive_variables("secret")
def identify(secret: str) -> ApiToken | None:
    """The usable token `secret` is, with its user; None when unknown, revoked or expired.

    Raises TokenRefused (403) when the token is valid but its owner may no longer use the API
    (role lost, account inactive): they are told why instead of "unauthenticated".
    """
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    now = timezone.now()
    token = (
        ApiToken.objects.select_related("user")
        .filter(token_hash=hash_token(secret), revoked_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .first()
    )
    if token is None:
        return None
    if not may_hold_tokens(token.user):
        raise TokenRefused(NOT_ALLOWED + " This token's owner no longer may.", 403)
    if token.last_used_at is None or token.last_used_at < now - LAST_USED_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def record_use(
    token: ApiToken, *, method: str, path: str, status: int, ip: str | None = None
) -> None:
    """Audit one API call that may change something (POST): which token, where, the answer."""
    audit.record(
        AuditAction.API_USED,
        actor=token.user,
        summary=f"{method} {path} with API token '{token.name}' ({token.prefix}…): {status}",
        obj=token,
        details={"method": method, "path": path[:300], "status": status, "token": token.prefix},
        ip=ip,
    )
