"""Who calls the API: a personal token in `Authorization: Bearer …`, counted by the rate limit.

No session is ever used here: a browser signed in to the portal without a token gets 401, and
no CSRF token is needed (nothing is taken from cookies).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.models import User
from django.http import HttpRequest
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_variables
from ninja import Status
from ninja.security import HttpBearer

from workflows_app.api.errors import ApiError
from workflows_app.models import ApiToken
from workflows_app.services import api_tokens, rate_limits
from workflows_app.services.audit import client_address


class TokenAuth(HttpBearer):
    """A bearer token of an active helpdesk agent or admin; 403 once they lost the role."""

    @method_decorator(sensitive_variables("token"))
    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        try:
            found = api_tokens.identify(token.strip())
        except api_tokens.TokenRefused as exc:
            raise ApiError(exc.status, "forbidden", exc.message) from None
        if found is None:
            return None
        wait = rate_limits.take(found.pk)
        if wait is not None:
            raise ApiError(
                429,
                "rate_limited",
                f"Too many requests with this token; try again in {wait} s.",
                retry_after=wait,
            )
        request.user = found.user
        return found


def token_of(request: HttpRequest) -> ApiToken:
    """The token the request was authenticated with."""
    token = getattr(request, "auth", None)
    assert isinstance(token, ApiToken), "endpoint without TokenAuth"
    return token


def caller(request: HttpRequest) -> User:
    """The person behind the request's token."""
    return token_of(request).user


def audited(view: Callable[..., Any]) -> Callable[..., Any]:
    """Audit each call of an endpoint that may change something (`api.used`), with its answer."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        status = 500
        try:
            result = view(request, *args, **kwargs)
            status = result.status_code if isinstance(result, Status) else 200
            return result
        except ApiError as exc:
            status = exc.status
            raise
        finally:
            api_tokens.record_use(
                token_of(request),
                method=request.method or "",
                path=request.path,
                status=status,
                ip=client_address(request),
            )

    return wrapper
