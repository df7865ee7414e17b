"""The API's error answers: JSON `{"code", "message", "errors"}` with stable codes.

Codes: `unauthenticated` (401), `forbidden` (403), `not_found` (404), `conflict` /
`idempotency_conflict` / `duplicate_run` / `not_waiting` (409), `bad_request` (400: the body is
not JSON), `validation_error` / `not_runnable` (422), `rate_limited` (429, with Retry-After),
`upstream_rate_limited` (429), `unavailable` (503).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

LOCATIONS = {"body", "query", "path", "header", "cookie"}
# The endpoints' own argument names, which pydantic puts in an error's location.
ARGUMENT_NAMES = {"payload", "filters"}


class ApiError(Exception):
    """An answer other than success, raised anywhere below an endpoint."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        errors: Iterable[dict[str, Any]] = (),
        *,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = list(errors)
        self.retry_after = retry_after


def problem(field: str, message: str, index: int | None = None) -> dict[str, Any]:
    """One item of an error's `errors`."""
    return {"field": field, "index": index, "message": message}


def install(api: NinjaAPI) -> None:
    """Answer every failure of `api` with the JSON above (nothing of Django's HTML pages)."""

    def answer(request: HttpRequest, exc: Any) -> HttpResponse:
        body = {"code": exc.code, "message": exc.message, "errors": exc.errors}
        response = api.create_response(request, body, status=exc.status)
        if exc.retry_after is not None:
            response["Retry-After"] = str(exc.retry_after)
        if exc.status == 401:
            response["WWW-Authenticate"] = "Bearer"
        return response

    def unauthenticated(request: HttpRequest, exc: Any) -> HttpResponse:
        return answer(
            request,
            ApiError(
                401,
                "unauthenticated",
                "Send a valid API token: 'Authorization: Bearer nxp_…' (create one on your "
                "account's API tokens page).",
            ),
        )

    def invalid(request: HttpRequest, exc: Any) -> HttpResponse:
        found = [_item(error) for error in exc.errors]
        message = f"The request has {len(found)} problem(s); see `errors`."
        return answer(request, ApiError(422, "validation_error", message, found))

    def http_error(request: HttpRequest, exc: Any) -> HttpResponse:
        if exc.status_code == 400:
            message = "The request body could not be read: send one JSON object, UTF-8."
            return answer(request, ApiError(400, "bad_request", message))
        return answer(request, ApiError(exc.status_code, "error", str(exc)))

    def too_big(request: HttpRequest, exc: Any) -> HttpResponse:
        message = "The request body is too large: send at most 20 MB of JSON."
        return answer(request, ApiError(400, "bad_request", message))

    def not_found(request: HttpRequest, exc: Any) -> HttpResponse:
        return answer(request, ApiError(404, "not_found", "No such thing, or not yours to see."))

    api.add_exception_handler(ApiError, answer)
    api.add_exception_handler(AuthenticationError, unauthenticated)
    api.add_exception_handler(NinjaValidationError, invalid)
    api.add_exception_handler(HttpError, http_error)
    api.add_exception_handler(Http404, not_found)
    api.add_exception_handler(RequestDataTooBig, too_big)


def _item(error: dict[str, Any]) -> dict[str, Any]:
    """One pydantic error as an `ErrorItem`: a dotted field, the first list index, the message."""
    loc = list(error.get("loc", ()))
    if loc and loc[0] in LOCATIONS:
        loc = loc[1:]
    if loc and loc[0] in ARGUMENT_NAMES:
        loc = loc[1:]
    index = next((part for part in loc if isinstance(part, int)), None)
    field = ".".join(str(part) for part in loc) or "body"
    return problem(field, str(error.get("msg", "invalid")), index)
