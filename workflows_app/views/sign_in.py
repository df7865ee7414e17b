"""Signing in: the company account (OpenID Connect) and the answer to a throttled sign-in.

The password form is Django's LoginView (portal/urls.py); django-axes refuses a locked-out
attempt before any password is checked and answers with `locked_out`, the same page for every
username, known or not.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import jwt
import requests
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from workflows_app.sso.backend import PROBLEM_ATTRIBUTE
from workflows_app.sso.provider import ProviderUnavailable, endpoints

logger = logging.getLogger(__name__)

LOCKED_OUT = (
    "Too many sign-in attempts. Wait {minutes} minutes, then try again; if you forgot your "
    "password, ask {contact}."
)
SSO_FAILED = (
    "Signing in with {company} did not work. Try again from the sign-in page; if it keeps "
    "failing, ask {contact}."
)
SSO_UNAVAILABLE = (
    "The company sign-in service cannot be reached just now. Try again in a few minutes, or ask "
    "{contact}."
)
# What the provider (or someone posing as it) may send that the library lets through as an
# exception: a bad state or nonce, a bad or expired ID token, an unreachable or broken endpoint.
IDP_ERRORS = (
    SuspiciousOperation,
    jwt.PyJWTError,
    requests.RequestException,
    ProviderUnavailable,
    ValueError,
    KeyError,
    TypeError,
)


def locked_out(
    request: HttpRequest, original_response: Any = None, credentials: Any = None
) -> HttpResponse:
    """django-axes' answer to a locked-out sign-in: the sign-in page and one message for all."""
    minutes = max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))
    message = LOCKED_OUT.format(minutes=minutes, contact=settings.PORTAL_ACCESS_CONTACT)
    context = {"form": AuthenticationForm(request), "throttled": message, "next": ""}
    return render(request, "registration/login.html", context, status=429)


def _sso_page(request: HttpRequest, message: str, status: int) -> HttpResponse:
    return render(request, "registration/sso_failed.html", {"message": message}, status=status)


def _contact() -> str:
    return str(settings.PORTAL_ACCESS_CONTACT)


def _while_available(
    request: HttpRequest, view: Callable[[HttpRequest], HttpResponse]
) -> HttpResponse:
    """Both SSO views: 404 while SSO is off, a page when the provider cannot be reached."""
    if not settings.OIDC_ENABLED:
        raise Http404("Single sign-on is not configured.")
    try:
        return view(request)
    except ProviderUnavailable as exc:
        logger.warning("Single sign-on unavailable: %s", exc)
        return _sso_page(request, SSO_UNAVAILABLE.format(contact=_contact()), 503)


class SsoStart(OIDCAuthenticationRequestView):
    """Sends the browser to the provider with state, nonce and a PKCE challenge."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Not the library's __init__, which reads the endpoint before discovery could run.
        super(OIDCAuthenticationRequestView, self).__init__(*args, **kwargs)
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID

    @property
    def OIDC_OP_AUTH_ENDPOINT(self) -> str:  # noqa: N802 - the library's attribute name
        return endpoints().authorization

    def get(self, request: HttpRequest) -> HttpResponse:
        return _while_available(request, super().get)


class SsoCallback(OIDCAuthenticationCallbackView):
    """Where the provider sends the browser back; every refusal is a page saying what to do."""

    def get(self, request: HttpRequest) -> HttpResponse:
        return _while_available(request, self._callback)

    def _callback(self, request: HttpRequest) -> HttpResponse:
        try:
            response: HttpResponse = super().get(request)
            return response
        except ProviderUnavailable:
            raise
        except IDP_ERRORS as exc:
            # The type only: messages may quote the provider's answer, tokens included.
            logger.warning("Single sign-on refused: %s", type(exc).__name__)
            # A failed sign-in like any other: audited, and counted against the address.
            user_login_failed.send(sender=type(self), credentials={}, request=request)
            return self.login_failure()

    def login_failure(self) -> HttpResponse:
        problem = getattr(self.request, PROBLEM_ATTRIBUTE, None)
        message = problem or SSO_FAILED.format(
            company=settings.OIDC_COMPANY_NAME, contact=_contact()
        )
        return _sso_page(self.request, message, 403 if problem else 400)
