"""The identity provider's endpoints: from the settings, else from its discovery document.

Discovery is asked only when someone signs in with SSO (never at start-up nor for a password
sign-in), and its answer kept an hour in the shared cache.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import requests
from django.conf import settings
from django.core.cache import cache

DISCOVERY_PATH = "/.well-known/openid-configuration"
CACHE_SECONDS = 3600


class ProviderUnavailable(Exception):
    """The provider's discovery document could not be read; the message says why."""


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where the portal sends people and asks for tokens and keys."""

    issuer: str
    authorization: str
    token: str
    jwks: str
    userinfo: str | None


def discovery_url() -> str:
    """<issuer>/.well-known/openid-configuration (OpenID Connect Discovery 1.0, section 4)."""
    return str(settings.OIDC_ISSUER).rstrip("/") + DISCOVERY_PATH


def endpoints() -> Endpoints:
    """The endpoints in use: all three explicit settings, else discovery (cached)."""
    issuer = str(settings.OIDC_ISSUER)
    explicit = (
        settings.OIDC_OP_AUTHORIZATION_ENDPOINT,
        settings.OIDC_OP_TOKEN_ENDPOINT,
        settings.OIDC_OP_JWKS_ENDPOINT,
    )
    if all(explicit):
        auth, token, jwks = (str(url) for url in explicit)
        return Endpoints(issuer, auth, token, jwks, settings.OIDC_OP_USER_ENDPOINT)
    key = f"sso:discovery:v1:{discovery_url()}"
    cached = cache.get(key)
    if isinstance(cached, dict):
        return Endpoints(**cached)
    found = _discover(issuer)
    cache.set(key, asdict(found), CACHE_SECONDS)
    return found


def _discover(issuer: str) -> Endpoints:
    url = discovery_url()
    try:
        response = requests.get(url, timeout=settings.OIDC_TIMEOUT)
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise ProviderUnavailable(f"{url} did not answer ({type(exc).__name__})") from None
    if not isinstance(document, dict):
        raise ProviderUnavailable(f"{url} is not a discovery document")
    if str(document.get("issuer", "")).rstrip("/") != issuer.rstrip("/"):
        raise ProviderUnavailable(f"{url} names another issuer than OIDC_ISSUER")
    names = ("authorization_endpoint", "token_endpoint", "jwks_uri")
    if not all(isinstance(document.get(name), str) and document[name] for name in names):
        raise ProviderUnavailable(f"{url} lacks one of {', '.join(names)}")
    userinfo = document.get("userinfo_endpoint")
    return Endpoints(
        issuer=str(document["issuer"]),
        authorization=document["authorization_endpoint"],
        token=document["token_endpoint"],
        jwks=document["jwks_uri"],
        userinfo=userinfo if isinstance(userinfo, str) and userinfo else None,
    )
