"""The request and reply types shared by the simulator's endpoint modules."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Incoming:
    """One HTTP request as the endpoint functions see it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    raw_body: bytes
    body: Any = None
    json_error: str | None = None
    path_params: dict[str, str] = field(default_factory=dict)
    # How the caller reached this server, e.g. http://simulator:8765 (from its Host header).
    origin: str = ""

    def header(self, name: str) -> str | None:
        """A header value, looked up case-insensitively."""
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)

    def param(self, name: str) -> str | None:
        """The first value of a query parameter, or None."""
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class Reply:
    """What to answer; ``hang`` holds the answer back that many seconds (timeout faults)."""

    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    hang: float = 0.0
    fault: str | None = None


def json_reply(status: int, data: Any, headers: dict[str, str] | None = None) -> Reply:
    """A JSON answer."""
    return Reply(status, json.dumps(data).encode(), "application/json", dict(headers or {}))


def error_reply(status: int, code: str, details: str) -> Reply:
    """A Workflows-style error answer: {"code", "details"}."""
    return json_reply(status, {"code": code, "details": details})


def unauthorized(reason: str) -> Reply:
    """401 with an empty body, as the spec documents it."""
    return Reply(
        401,
        headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{reason}"'},
    )
