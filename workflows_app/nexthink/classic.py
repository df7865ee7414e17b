"""Typed client of the classic (on-premise) Nexthink Act API v2: remote actions on devices.

One endpoint: `POST <web interface>/api/remoteaction/v2/run` with HTTP Basic authentication of a
Nexthink user whose profile allows the API of remote actions. The call is synchronous: the web
interface answers once every targeted Engine has (or `timeoutSeconds` has passed), with one
result per Engine. A 200 does not mean the action ran: each Engine's code says what it did.

Like executions, a run is sent once and never retried here: a read timeout or a 5xx other than
503 may come after the Engines were asked, so it is `OutcomeUnknown`. Each documented error code
becomes `RemoteActionRefused` (nothing ran) with a message for people; TOO_MANY_DEVICES is its
own class so the caller can split the batch.
Docs: https://docs.nexthink.com/platform/latest/triggering-remote-actions-via-their-api-classic
(seed 002 in ../shared/seeds).
"""

from __future__ import annotations

import logging
import time
from enum import StrEnum
from typing import Any

import requests
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from .client import transport_failure
from .errors import (
    InvalidResponse,
    NexthinkError,
    OutcomeUnknown,
    RateLimited,
    Unauthorized,
    Unavailable,
    parse_retry_after,
)
from .models import RequestModel, ResponseModel
from .session import SessionClient

logger = logging.getLogger(__name__)

RUN_PATH = "/api/remoteaction/v2/run"
# A classic device UID (NXQL `device_uid`): 32 hexadecimal digits, no hyphens.
DEVICE_UID_PATTERN = r"^[0-9a-fA-F]{32}$"
# The web interface's own default when no timeoutSeconds is sent.
SERVER_DEFAULT_TIMEOUT = 60


class EngineCode(StrEnum):
    """What one Engine answered about a remote action run (the documented codes)."""

    OK = "ok"
    TIMEOUT = "timeout"
    ENGINE_ERROR = "engine_error"
    NOT_CONNECTED = "not_connected"
    EXCLUDED = "excluded"
    NO_PERMISSION = "no_permission"


# What each Engine code means for the person reading a run (README "Classic remote actions").
ENGINE_CODE_MEANINGS: dict[str, str] = {
    EngineCode.OK: "The Engine accepted the remote action for its devices among those sent.",
    EngineCode.TIMEOUT: (
        "The Engine did not answer in time: the remote action may or may not have been "
        "triggered on its devices."
    ),
    EngineCode.ENGINE_ERROR: (
        "The Engine reported an error (see its message): the remote action was not triggered "
        "on its devices."
    ),
    EngineCode.NOT_CONNECTED: (
        "The web interface could not reach the Engine: nothing was triggered on its devices."
    ),
    EngineCode.EXCLUDED: "The Engine UID is unknown to the web interface: it was not asked.",
    EngineCode.NO_PERMISSION: (
        "The portal's Nexthink user has no permission on this Engine: nothing was triggered there."
    ),
}


def engine_code_meaning(code: str) -> str:
    """What an Engine code means; an undocumented one is shown as it is."""
    return ENGINE_CODE_MEANINGS.get(code, f"An undocumented Engine code ({code!r}).")


# Each documented error code, with what the person who asked should read and do.
ERROR_MESSAGES: dict[str, str] = {
    "INVALID_REQUEST_JSON": (
        "The web interface could not read the request as JSON. Nothing ran; this is a portal "
        "fault: report it."
    ),
    "INVALID_REQUEST_CONTENT": (
        "The web interface refused the request's content (a field of the wrong type). Nothing "
        "ran; check the remote action's parameters."
    ),
    "CONTENT_TYPE": (
        "The web interface refused the request's content type (application/json expected). "
        "Nothing ran; a proxy may be rewriting requests."
    ),
    "ENCODING": (
        "The web interface refused the request's text encoding (UTF-8 expected). Nothing ran."
    ),
    "NO_REMOTE_ACTION_UID": "No remote action UID was sent. Nothing ran.",
    "NO_DEVICES": "No device UID was sent. Nothing ran: give at least one device.",
    "TOO_MANY_DEVICES": (
        "Too many devices for one call to the web interface. Nothing ran; the portal sends "
        "smaller batches (NEXTHINK_CLASSIC_BATCH_SIZE)."
    ),
    "INVALID_ACTION_UID": (
        "The remote action UID is not a valid UID. Nothing ran; an admin must correct the "
        "registration (Finder: right-click the remote action, Export > Remote action Uid)."
    ),
    "INVALID_DEVICE_UID": (
        "A device UID is not valid (32 hexadecimal digits expected, NXQL device_uid). Nothing ran."
    ),
    "UNKNOWN_OR_DISABLED_REMOTE_ACTION": (
        "Nexthink does not know this remote action, or it is disabled. Nothing ran; check its "
        "UID in the portal and that it is enabled in Finder."
    ),
    "NO_MANUAL_EXECUTION": (
        "This remote action cannot be triggered manually, so not through the API either. "
        "Nothing ran; allow manual execution in its Finder settings."
    ),
    "NO_PERMISSION": (
        "The portal's Nexthink user may not use the API of remote actions. Nothing ran; tick "
        "'Allow API of remote actions' in its Finder profile."
    ),
    "NO_ENGINES_TO_TARGET": (
        "No Engine could be targeted (none connected, or none of NEXTHINK_CLASSIC_ENGINES is "
        "known). Nothing ran."
    ),
    "INTERNAL_ERROR": (
        "The web interface had an internal error after the request was sent: the remote "
        "action may or may not have been triggered. Check in Finder before running it again."
    ),
}


class ClassicConfig(BaseModel):
    """Where and how to reach one classic web interface; the password never shows in logs."""

    model_config = ConfigDict(frozen=True)

    url: str
    user: str = Field(min_length=1)
    password: SecretStr
    connect_timeout: float = Field(default=5, gt=0)
    # The answer may take the whole timeoutSeconds; wait this much longer for it to arrive.
    read_margin: float = Field(default=10, ge=0)
    timeout_seconds: int = Field(default=SERVER_DEFAULT_TIMEOUT, ge=1, le=3600)
    engines: tuple[str, ...] = ()

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class RemoteActionRequest(RequestModel):
    """The body of one run call; the web interface checks the values (and says which is wrong)."""

    remoteActionUid: str
    deviceUids: list[str]
    requestUid: str | None = None
    engineDatabaseUids: list[str] | None = None
    timeoutSeconds: int | None = Field(default=None, ge=1)
    params: dict[str, str] | None = None


class EngineResult(ResponseModel):
    """One Engine's answer to a run: its database UID, its code and its message."""

    databaseUid: str = ""
    code: str
    message: str = ""

    @field_validator("message", mode="before")
    @classmethod
    def _text(cls, value: Any) -> str:
        return "" if value is None else str(value)

    @property
    def ok(self) -> bool:
        return self.code == EngineCode.OK

    def as_json(self) -> dict[str, str]:
        """The result as stored and shown: `databaseUid`, `code`, `message`."""
        return {"databaseUid": self.databaseUid, "code": self.code, "message": self.message}


class _ErrorBody(ResponseModel):
    code: str = ""
    error: str = ""


class RemoteActionRefused(NexthinkError):
    """The web interface refused the run with a documented code (4xx): nothing ran."""

    def __init__(self, code: str, error: str, status: int) -> None:
        self.code = code
        self.error = error
        self.status = status
        explained = ERROR_MESSAGES.get(code, "The web interface refused the request. Nothing ran.")
        said = f" It said: {error}" if error else ""
        super().__init__(f"{explained} (HTTP {status}, {code or 'no code'}).{said}")


class RemoteActionOutcomeUnknown(OutcomeUnknown):
    """The run may have reached the Engines but no answer came (a read timeout, a 5xx)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.message = (
            f"No answer from the classic web interface after the request was sent ({reason}). "
            "The remote action may have been triggered: check in Finder before running it on "
            "these devices again."
        )


class TooManyDevices(RemoteActionRefused):
    """TOO_MANY_DEVICES: nothing ran; the same devices can go in smaller calls."""


class ClassicClient(SessionClient):
    """The classic web interface's API of remote actions; one method, `run`."""

    def __init__(self, config: ClassicConfig, session: requests.Session | None = None) -> None:
        super().__init__(session)
        self.config = config

    def _where(self) -> tuple[str, str]:
        return "url", self.config.url

    def request(
        self,
        *,
        remote_action_uid: str,
        device_uids: list[str],
        request_uid: str | None = None,
        params: dict[str, str] | None = None,
    ) -> RemoteActionRequest:
        """A run's body with this web interface's Engines and timeout (from the config)."""
        return RemoteActionRequest(
            remoteActionUid=remote_action_uid,
            deviceUids=device_uids,
            requestUid=request_uid,
            engineDatabaseUids=list(self.config.engines) or None,
            timeoutSeconds=self.config.timeout_seconds,
            params=params or None,
        )

    def read_timeout(self, request: RemoteActionRequest) -> float:
        """How long to wait for the answer: the Engines' timeout, and a margin for the trip."""
        seconds = request.timeoutSeconds or SERVER_DEFAULT_TIMEOUT
        return seconds + self.config.read_margin

    def run(self, request: RemoteActionRequest) -> list[EngineResult]:
        """Trigger a remote action on devices (sent once, never retried): one result per Engine.

        Raises RemoteActionRefused (TooManyDevices) for a documented refusal, Unauthorized for
        wrong credentials, RateLimited / Unavailable when nothing ran, OutcomeUnknown when it may
        have, InvalidResponse when a 200 cannot be read.
        """
        read_timeout = self.read_timeout(request)
        started = time.monotonic()
        try:
            response = self.session.post(
                self.config.url + RUN_PATH,
                json=request.payload(),
                headers={"Accept": "application/json"},
                auth=(self.config.user, self.config.password.get_secret_value()),
                timeout=(self.config.connect_timeout, read_timeout),
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            failure = transport_failure(
                exc,
                idempotent=False,
                connect_timeout=self.config.connect_timeout,
                read_timeout=read_timeout,
            )
            if isinstance(failure, OutcomeUnknown):
                raise RemoteActionOutcomeUnknown(failure.reason) from exc
            raise failure from exc
        logger.debug(
            "Classic POST %s -> %d in %.3f s",
            RUN_PATH,
            response.status_code,
            time.monotonic() - started,
        )
        if response.status_code != 200:
            raise error_for(response)
        return engine_results(response)


def engine_results(response: requests.Response) -> list[EngineResult]:
    """The Engines' answers in a 200; a body that is not that list is InvalidResponse."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, list):
        raise InvalidResponse(_UNREADABLE, response.status_code)
    try:
        return [EngineResult.model_validate(item) for item in data]
    except ValidationError as exc:
        logger.warning("Unexpected Act API answer: %s", exc.errors(include_input=False))
        raise InvalidResponse(_UNREADABLE, response.status_code) from None


_UNREADABLE = (
    "The web interface accepted the remote action (HTTP 200) but its Engines' answers could "
    "not be read: it has probably been triggered. Check in Finder before running it again."
)


def error_for(response: requests.Response) -> NexthinkError:
    """A non-200 answer to a run as the typed error the caller handles."""
    status = response.status_code
    if status == 401:
        return Unauthorized(
            "The classic web interface refused the portal's user name or password (HTTP 401). "
            "An admin must check NEXTHINK_CLASSIC_USER and NEXTHINK_CLASSIC_PASSWORD."
        )
    if status == 429:
        return RateLimited(parse_retry_after(response.headers.get("Retry-After")))
    if status == 503:
        return Unavailable("the classic web interface answered HTTP 503", status=status)
    body = _error_body(response)
    if status >= 500:
        # INTERNAL_ERROR (500) or a gateway's 502/504: the Engines may have been asked already.
        said = f", {body.code}" if body.code else ""
        return RemoteActionOutcomeUnknown(f"the classic web interface answered HTTP {status}{said}")
    if status == 404 and not body.code:
        return RemoteActionRefused(
            "NOT_FOUND",
            "There is no Act API at this address: check NEXTHINK_CLASSIC_URL.",
            status,
        )
    if 400 <= status < 500:
        kind = TooManyDevices if body.code == "TOO_MANY_DEVICES" else RemoteActionRefused
        return kind(body.code, body.error, status)
    return InvalidResponse(
        f"The classic web interface answered an unexpected HTTP {status}.", status
    )


def _error_body(response: requests.Response) -> _ErrorBody:
    """Read {code, error}; anything else (an HTML page from a proxy) becomes the error text."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        code, error = data.get("code"), data.get("error", data.get("message"))
        return _ErrorBody(
            code="" if code is None else str(code), error="" if error is None else str(error)
        )
    return _ErrorBody(error=" ".join(response.text.split())[:500])
