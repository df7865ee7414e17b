"""The authentication backend mozilla-django-oidc calls at the callback, fitted to the portal.

Beyond the library: endpoints resolved only when used (provider.py), the ID token's `iss` and
`aud` checked (the library checks signature, expiry and nonce only), claims taken from the ID
token (plus userinfo when the provider has one), and the account found by `sub`
(services/sso.py). A refusal the person should read is left on the request as `sso_problem`.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from workflows_app.services import audit
from workflows_app.services.sso import SignInRefused, create_person, find_person, update_person
from workflows_app.sso.provider import endpoints

PROBLEM_ATTRIBUTE = "sso_problem"


class PortalOIDCBackend(OIDCAuthenticationBackend):
    """Signs in with the provider's authorization code (PKCE, nonce and state by the library)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Not the library's __init__: it reads the endpoints, and this backend is built for every
        # password sign-in and every request's session check too, when no provider is asked.
        self.UserModel = get_user_model()
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = settings.OIDC_RP_CLIENT_SECRET
        self.OIDC_RP_SIGN_ALGO = settings.OIDC_RP_SIGN_ALGO
        self.OIDC_RP_IDP_SIGN_KEY = None

    @property
    def OIDC_OP_TOKEN_ENDPOINT(self) -> str:  # noqa: N802 - the library's attribute name
        return endpoints().token

    @property
    def OIDC_OP_JWKS_ENDPOINT(self) -> str:  # noqa: N802
        return endpoints().jwks

    @property
    def OIDC_OP_USER_ENDPOINT(self) -> str | None:  # noqa: N802
        return endpoints().userinfo

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> User | None:
        """Only the callback's call (nonce and code verifier), never a password sign-in."""
        if request is None or "nonce" not in kwargs or "password" in kwargs:
            return None
        user: User | None = super().authenticate(request, **kwargs)
        return user

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        """The library's checks, then the issuer and the audience (OpenID Connect 3.1.3.7)."""
        payload: dict[str, Any] = super().verify_token(token, **kwargs)
        if str(payload.get("iss", "")).rstrip("/") != endpoints().issuer.rstrip("/"):
            raise SuspiciousOperation("ID token from another issuer")
        audience = payload.get("aud")
        audiences = [audience] if isinstance(audience, str) else audience
        if not isinstance(audiences, list) or self.OIDC_RP_CLIENT_ID not in audiences:
            raise SuspiciousOperation("ID token for another client")
        if len(audiences) > 1 and payload.get("azp") != self.OIDC_RP_CLIENT_ID:
            raise SuspiciousOperation("ID token for another client (azp)")
        return payload

    def get_userinfo(
        self, access_token: str, id_token: str, payload: dict[str, Any]
    ) -> dict[str, Any]:
        """The ID token's claims, completed by userinfo when the provider has that endpoint."""
        claims = dict(payload)
        if self.OIDC_OP_USER_ENDPOINT:
            extra = super().get_userinfo(access_token, id_token, payload)
            if not isinstance(extra, dict) or extra.get("sub") != payload.get("sub"):
                raise SuspiciousOperation("userinfo for another subject")
            claims.update(extra)
        return claims

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        """Every claim the portal needs is checked where it is read (services/sso.py)."""
        return True

    def filter_users_by_claims(self, claims: dict[str, Any]) -> Any:
        person = self._refusing(find_person, claims)
        return (
            self.UserModel.objects.filter(pk=person.pk) if person else self.UserModel.objects.none()
        )

    def create_user(self, claims: dict[str, Any]) -> User:
        ip = audit.client_address(self.request)
        return self._refusing(lambda c: create_person(c, ip=ip), claims)

    def update_user(self, user: User, claims: dict[str, Any]) -> User:
        ip = audit.client_address(self.request)
        return self._refusing(lambda c: update_person(user, c, ip=ip), claims)

    def _refusing(self, step: Any, claims: dict[str, Any]) -> Any:
        """Run a step; a refusal is kept for the page and ends the sign-in (None)."""
        try:
            return step(claims)
        except SignInRefused as exc:
            setattr(self.request, PROBLEM_ATTRIBUTE, exc.message)
            raise SuspiciousOperation("sign-in refused") from None
