"""POSTing one signed event to a webhook receiver (docs/webhooks.md); knows nothing of Django.

The signature: `X-Portal-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`.
Redirects are not followed (a receiver that moved must be registered again); short timeouts.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

import requests

SIGNATURE_HEADER = "X-Portal-Signature"
EVENT_HEADER = "X-Portal-Event"
DELIVERY_HEADER = "X-Portal-Delivery"
USER_AGENT = "nexthink-workflows-portal-webhooks/1"
EXCERPT_BYTES = 1024
EXCERPT_CHARS = 300
# Answers worth another try: the receiver was busy, rate-limiting or broken for a while.
TEMPORARY_STATUSES = frozenset({408, 425, 429})


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for `body` sent at `timestamp` (unix seconds)."""
    signed = f"{timestamp}.".encode() + body
    mac = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


@dataclass(frozen=True)
class Answer:
    """What the receiver answered: its status and the start of its body, as text."""

    status_code: int
    excerpt: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def temporary(self) -> bool:
        """Whether trying again later may succeed (5xx, 408, 425, 429), unlike 3xx and 4xx."""
        return self.status_code >= 500 or self.status_code in TEMPORARY_STATUSES


class DeliveryError(Exception):
    """No answer: the receiver could not be reached or did not answer in time."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def post(
    url: str,
    body: bytes,
    *,
    secret: str,
    event: str,
    delivery_id: str,
    timestamp: int,
    connect_timeout: float,
    read_timeout: float,
) -> Answer:
    """POST `body` (JSON) signed with `secret`; the answer, or DeliveryError without one."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT_HEADER: event,
        DELIVERY_HEADER: delivery_id,
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }
    try:
        with requests.post(
            url,
            data=body,
            headers=headers,
            timeout=(connect_timeout, read_timeout),
            allow_redirects=False,
            stream=True,
        ) as response:
            start = next(response.iter_content(EXCERPT_BYTES), b"")
            return Answer(response.status_code, excerpt(start))
    except requests.Timeout as exc:
        kind = "connect" if isinstance(exc, requests.ConnectTimeout) else "read"
        limit = connect_timeout if kind == "connect" else read_timeout
        raise DeliveryError(f"No answer: {kind} timeout after {limit:g} s") from exc
    except requests.RequestException as exc:
        raise DeliveryError(f"Could not reach the receiver: {type(exc).__name__}") from exc


def excerpt(raw: bytes) -> str:
    """The start of an answer's body as one short line of text."""
    text = raw.decode("utf-8", errors="replace")
    return re.sub(r"\s+", " ", text).strip()[:EXCERPT_CHARS]
