"""Typed errors raised by the Nexthink client, one class per outcome the caller must handle.

`RateLimited` and `Unavailable` mean the request did not run: sending it again later can
succeed. `OutcomeUnknown` means it may have run, and Nexthink has no idempotency key, so it must
never be re-sent blindly (check with NQL first).
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


class NexthinkError(Exception):
    """Base class for every error the Nexthink client raises; `.message` is safe to show."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class BadRequest(NexthinkError):
    """Nexthink refused the request as invalid (400 or another 4xx): fix it, do not retry."""

    def __init__(self, code: str, details: str, status: int = 400) -> None:
        self.code = code
        self.details = details
        self.status = status
        super().__init__(
            f"Nexthink refused the request (HTTP {status}, {code}): {details}".rstrip(": ")
        )


class Forbidden(NexthinkError):
    """The credentials lack permission (403): check the API trigger and the Workflows API role."""

    status = 403

    def __init__(self, code: str, details: str) -> None:
        self.code = code
        self.details = details
        super().__init__(
            f"Nexthink denied permission ({code}): {details}. Check that the workflow has its "
            "API trigger enabled and that the API credentials have the Workflows API permission."
        )


class Unauthorized(NexthinkError):
    """The credentials or token were rejected even after fetching a fresh token."""

    status = 401

    def __init__(
        self,
        message: str = "Nexthink rejected the API credentials. Check the client id and secret.",
    ) -> None:
        super().__init__(message)


class RateLimited(NexthinkError):
    """Nexthink answered 429; `retry_after` is the number of seconds it asked us to wait."""

    status = 429

    def __init__(self, retry_after: float | None, message: str | None = None) -> None:
        self.retry_after = retry_after
        if message is None:
            wait = f"after {retry_after:g} s" if retry_after is not None else "later"
            message = f"Nexthink is rate limiting requests (HTTP 429). Try again {wait}."
        super().__init__(message)


class Unavailable(NexthinkError):
    """Nexthink could not be reached or refused the request (503): it did not run; retry later.

    Also any 5xx answering a read, which is safe to send again.
    """

    def __init__(self, reason: str, status: int | None = None) -> None:
        self.reason = reason
        self.status = status
        super().__init__(f"Nexthink is unavailable: {reason}. Try again later.")


class OutcomeUnknown(NexthinkError):
    """The request may have reached Nexthink but no answer came: it may or may not have run."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(
            f"No answer from Nexthink after the request was sent ({reason}). It may have run: "
            "check the execution history before sending it again."
        )


class ExportLinkExpired(NexthinkError):
    """The pre-signed link to an NQL export's file was refused (403): it expired or is wrong.

    A fresh link comes with the export's status (poll it again) while the file is kept;
    otherwise start the export again.
    """

    status = 403

    def __init__(self, code: str = "") -> None:
        self.code = code
        refused = f" ({code})" if code else ""
        super().__init__(
            f"The download link of the NQL export has expired or was refused (HTTP 403{refused}). "
            "Ask for the export's status again to get a fresh link, or start a new export."
        )


class InvalidResponse(NexthinkError):
    """Nexthink answered something that does not parse; after a 2xx POST the request did run."""

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Read a Retry-After header (seconds or an HTTP date) as seconds to wait, or None."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return None
    return max(seconds, 0.0)
