"""Typed client of the Nexthink Workflows API (and NQL execute): models in, models or errors out.

Reads (list, details, NQL execute, NQL export and its status and file) are retried with backoff
on 429, 5xx and connection failures.
Executions are never re-sent once they may have reached Nexthink: there is no idempotency key.
Only a 429, a 503, a refused connection or a connect timeout prove an execution did not run;
any other 5xx or a read timeout answering one is `OutcomeUnknown`.
A 401 drops the token and retries once, whatever the method (a 401 means nothing ran).
Docs: https://docs.nexthink.com/api/workflows  (spec: workflows_app/simulator/openapi/)
"""

from __future__ import annotations

import http.client
import logging
import random
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import requests
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
)
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from .auth import MemoryTokenCache, TokenCache, TokenProvider
from .errors import (
    BadRequest,
    ExportLinkExpired,
    Forbidden,
    InvalidResponse,
    OutcomeUnknown,
    RateLimited,
    Unauthorized,
    Unavailable,
    parse_retry_after,
)
from .export_files import csv_rows, storage_error, without_query
from .models import (
    Dependency,
    ErrorResponse,
    ExecutionRequest,
    ExecutionResponse,
    ExternalIdsExecutionRequest,
    NonEmptyStr,
    NqlExportRequest,
    NqlExportResponse,
    NqlExportStatus,
    NqlRequest,
    NqlResponse,
    ThinkletTriggerRequest,
    ThinkletTriggerResponse,
    TriggerMethod,
    Uuid,
    Workflow,
)
from .session import SessionClient

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

_UUID = TypeAdapter(Uuid)
_EXPORT_ID = TypeAdapter(NonEmptyStr)
# Failures that prove the request never left: no connection was made.
_NOT_SENT = (NewConnectionError, ConnectTimeoutError, ConnectionRefusedError, socket.gaierror)
# requests errors raised before anything is sent (bad configuration, TLS or proxy failures).
_SETUP_ERRORS = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.SSLError,
    requests.exceptions.ProxyError,
)


class ClientConfig(BaseModel):
    """Where and how to reach one Nexthink tenant; the secret never shows in repr or logs."""

    model_config = ConfigDict(frozen=True)

    api_url: str
    token_url: str
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    source: str = Field(default="nexthink-workflows-portal", min_length=1)
    connect_timeout: float = Field(default=5, gt=0)
    read_timeout: float = Field(default=30, gt=0)
    get_retries: int = Field(default=3, ge=0)
    backoff_base: float = Field(default=0.5, ge=0)
    # Seconds before its stated expiry that a token is replaced; 0 uses it its whole life, and
    # the 401 of a call that arrives just after expiry replaces it (nothing ran: sent again).
    refresh_margin: int = Field(default=0, ge=0)
    # A Retry-After longer than this is not waited for inside a call: RateLimited is raised.
    max_retry_wait: float = Field(default=30, ge=0)

    @field_validator("api_url", "token_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class NexthinkClient(SessionClient):
    """One method per Nexthink endpoint the portal uses; thread-safe if the session is."""

    def __init__(
        self,
        config: ClientConfig,
        token_cache: TokenCache | None = None,
        session: requests.Session | None = None,
    ) -> None:
        super().__init__(session)
        self.config = config
        self.timeout = (config.connect_timeout, config.read_timeout)
        self.tokens = TokenProvider(
            config.token_url,
            config.client_id,
            config.client_secret,
            token_cache if token_cache is not None else MemoryTokenCache(),
            self.session,
            timeout=self.timeout,
            refresh_margin=config.refresh_margin,
        )
        self.sleep: Callable[[float], None] = time.sleep

    def _where(self) -> tuple[str, str]:
        return "api_url", self.config.api_url

    # -- endpoints ---------------------------------------------------------------------------

    def execute_v1(self, req: ExecutionRequest) -> ExecutionResponse:
        """Run a workflow on Collector UUIDs / SIDs (sent once, never retried)."""
        response = self._post_once("/api/v1/workflows/execute", req.payload())
        return _parse(ExecutionResponse, _json(response, sent=True), "execute v1", sent=True)

    def execute_v2(self, req: ExternalIdsExecutionRequest) -> ExecutionResponse:
        """Run a workflow on devices/users named by external ids (sent once, never retried)."""
        response = self._post_once("/api/v2/workflows/execute", req.payload())
        return _parse(ExecutionResponse, _json(response, sent=True), "execute v2", sent=True)

    def trigger_wait_for_event(
        self,
        workflow_uuid: str,
        execution_uuid: str,
        parameters: dict[str, str] | None = None,
    ) -> list[ThinkletTriggerResponse]:
        """Resume an execution paused on a "wait for event" step (sent once, never retried)."""
        workflow_uuid = _UUID.validate_python(workflow_uuid)
        execution_uuid = _UUID.validate_python(execution_uuid)
        path = f"/api/v1/workflows/workflows/{workflow_uuid}/execution/{execution_uuid}/trigger"
        body = ThinkletTriggerRequest(parameters=parameters).payload()
        data = _json(self._post_once(path, body), sent=True)
        # Documented as an array; accept a single object too.
        items = data if isinstance(data, list) else [data]
        return [_parse(ThinkletTriggerResponse, item, "trigger", sent=True) for item in items]

    def list_workflows(
        self,
        dependency: Dependency,
        trigger_method: TriggerMethod,
        only_active: bool | None = None,
    ) -> list[Workflow]:
        """List workflows matching the filters (retried on temporary failures)."""
        items = self.list_workflow_items(dependency, trigger_method, only_active)
        return _workflows(items, "list workflows")

    def list_workflow_items(
        self,
        dependency: Dependency,
        trigger_method: TriggerMethod,
        only_active: bool | None = None,
    ) -> Any:
        """The list endpoint's answer as parsed JSON, for callers that report bad items."""
        params = {
            "dependency": Dependency(dependency).value,
            "triggerMethod": TriggerMethod(trigger_method).value,
        }
        if only_active is not None:
            params["fetchOnlyActiveWorkflows"] = "true" if only_active else "false"
        return self._get("/api/v1/workflows", params)

    def get_workflow(self, nql_id: str) -> list[Workflow]:
        """Return the workflow(s) with this NQL id (query parameter `nqlId`, as the spec says)."""
        return _workflows(self._get("/api/v1/workflows/details", {"nqlId": nql_id}), "details")

    def nql_execute(self, query_id: str, parameters: dict[str, str] | None = None) -> NqlResponse:
        """Run a saved NQL query (a read: retried on temporary failures)."""
        body = NqlRequest(queryId=query_id, parameters=parameters).payload()
        response = self._retrying(lambda: self._call("POST", "/api/v2/nql/execute", body=body))
        return _parse(NqlResponse, _json(response, sent=False), "NQL execute", sent=False)

    def nql_export(self, query_id: str, parameters: dict[str, str] | None = None) -> str:
        """Start an NQL export of a saved query (every row, no 1,000 limit); returns its id.

        Starting an export twice only costs a second export, so it is retried like a read.
        """
        body = NqlExportRequest(queryId=query_id, parameters=parameters).payload()
        response = self._retrying(lambda: self._call("POST", "/api/v1/nql/export", body=body))
        data = _json(response, sent=False)
        return _parse(NqlExportResponse, data, "NQL export", sent=False).exportId

    def nql_export_status(self, export_id: str) -> NqlExportStatus:
        """Where an export stands: SUBMITTED, IN_PROGRESS, COMPLETED (with its link) or ERROR."""
        export_id = _EXPORT_ID.validate_python(export_id)
        path = "/api/v1/nql/status/" + quote(export_id, safe="")
        status = _parse(NqlExportStatus, self._get(path, {}), "NQL export status", sent=False)
        if status.done and not status.resultsFileUrl:
            raise InvalidResponse("Nexthink reported the NQL export completed without its link.")
        return status

    def download_export(self, url: str) -> list[dict[str, str]]:
        """Download a completed export's CSV at its pre-signed `resultsFileUrl`: rows by field.

        A plain GET: no bearer token (the link carries its own signature, and S3 refuses a
        request with two), no Source header. Retried like a read; a refused link (403) is
        `ExportLinkExpired`. A gzip file is read too.
        """
        shown = without_query(url)
        if urlsplit(url).scheme not in ("http", "https"):
            raise InvalidResponse(f"The NQL export's link is not an http(s) URL: {shown!r}.")
        response = self._retrying(lambda: self._download(url, shown))
        return csv_rows(response.content)

    # -- transport ---------------------------------------------------------------------------

    def _get(self, path: str, params: dict[str, str]) -> Any:
        response = self._retrying(lambda: self._call("GET", path, params=params))
        return _json(response, sent=False)

    def _post_once(self, path: str, body: dict[str, Any]) -> requests.Response:
        return self._call("POST", path, body=body, idempotent=False)

    def _retrying(self, call: Callable[[], T]) -> T:
        """Run a read, retrying temporary failures with backoff (bounded by get_retries)."""
        attempt = 0
        while True:
            try:
                return call()
            except (RateLimited, Unavailable) as exc:
                delay = self._retry_delay(exc, attempt)
                if delay is None:
                    raise
                attempt += 1
                logger.warning(
                    "Nexthink read failed (%s); retry %d/%d in %.2f s",
                    exc.message,
                    attempt,
                    self.config.get_retries,
                    delay,
                )
                self.sleep(delay)

    def _retry_delay(self, exc: RateLimited | Unavailable, attempt: int) -> float | None:
        """Seconds to wait before retry number `attempt + 1`, or None to give up."""
        config = self.config
        if attempt >= config.get_retries:
            return None
        jitter = random.random()  # noqa: S311 - jitter, not security
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            if exc.retry_after > config.max_retry_wait:
                return None
            return exc.retry_after + jitter * config.backoff_base / 2
        step = config.backoff_base * 2**attempt
        return min(step / 2 + jitter * step / 2, config.max_retry_wait)

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        idempotent: bool = True,
    ) -> requests.Response:
        """Send one request with a token; on 401 drop the token and send it once more."""
        token = self.tokens.get_token()
        response = self._exchange(method, path, body, params, token, idempotent)
        if response.status_code == 401:
            logger.info("Nexthink refused the token on %s %s; fetching a new one", method, path)
            self.tokens.invalidate(token)
            token = self.tokens.get_token()
            response = self._exchange(method, path, body, params, token, idempotent)
            if response.status_code == 401:
                self.tokens.invalidate(token)
                raise Unauthorized(
                    "Nexthink refused a freshly issued token (HTTP 401). Check the API "
                    "credentials and their Workflows API permission."
                )
        _raise_for_status(response, idempotent=idempotent)
        return response

    def _exchange(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        params: dict[str, str] | None,
        token: str,
        idempotent: bool,
    ) -> requests.Response:
        """One HTTP exchange with the API; transport failures become typed errors."""
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "Source": self.config.source,
        }
        return self._send(
            method,
            self.config.api_url + path,
            shown=path,
            headers=headers,
            body=body,
            params=params,
            idempotent=idempotent,
        )

    def _download(self, url: str, shown: str) -> requests.Response:
        """One GET of a pre-signed link, with nothing of ours attached; errors typed."""
        response = self._send(
            "GET", url, shown=shown, headers={}, idempotent=True, auth=_no_auth, keep_cause=False
        )
        status = response.status_code
        if status == 403:
            raise ExportLinkExpired(storage_error(response)[0])
        if 400 <= status < 500 and status != 429:
            code, message = storage_error(response)
            raise BadRequest(code or f"HTTP_{status}", message, status)
        _raise_for_status(response)
        return response

    def _send(
        self,
        method: str,
        url: str,
        *,
        shown: str,
        headers: dict[str, str],
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        idempotent: bool,
        auth: Callable[[requests.PreparedRequest], requests.PreparedRequest] | None = None,
        keep_cause: bool = True,
    ) -> requests.Response:
        """Send one request; `shown` is what logs may say of the URL.

        keep_cause=False drops the requests exception (whose text holds the whole URL) from
        the error raised, for links whose query string is a credential.
        """
        started = time.monotonic()
        try:
            response = self.session.request(
                method,
                url,
                json=body,
                params=params,
                headers=headers,
                auth=auth,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            failure = self._transport_failure(exc, idempotent)
            cause = exc if keep_cause else None
        else:
            logger.debug(
                "Nexthink %s %s -> %d in %.3f s",
                method,
                shown,
                response.status_code,
                time.monotonic() - started,
            )
            return response
        raise failure from cause

    def _transport_failure(
        self, exc: requests.RequestException, idempotent: bool
    ) -> Unavailable | OutcomeUnknown:
        """Unavailable when the request surely did not run (or is safe to send again)."""
        return transport_failure(
            exc,
            idempotent=idempotent,
            connect_timeout=self.config.connect_timeout,
            read_timeout=self.config.read_timeout,
        )


def transport_failure(
    exc: requests.RequestException,
    *,
    idempotent: bool,
    connect_timeout: float,
    read_timeout: float,
) -> Unavailable | OutcomeUnknown:
    """A failed exchange as the caller must handle it: could the request have run?

    Unavailable when it surely did not (no connection was made) or is safe to send again (a
    read); OutcomeUnknown when a POST may have reached the server. Shared by both clients.
    """
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return Unavailable(f"no connection within {connect_timeout:g} s")
    if isinstance(exc, _SETUP_ERRORS):
        return Unavailable(f"could not connect ({type(exc).__name__})")
    if isinstance(exc, requests.exceptions.ReadTimeout):
        if idempotent:
            return Unavailable(f"no answer within {read_timeout:g} s")
        return OutcomeUnknown(f"no answer within {read_timeout:g} s")
    if isinstance(exc, requests.exceptions.ConnectionError):
        if idempotent or not _may_have_been_sent(exc):
            return Unavailable(f"could not connect ({_describe(exc)})")
        return OutcomeUnknown(f"connection lost ({_describe(exc)})")
    # The answer was being read (e.g. a broken chunked body): the request was sent.
    if idempotent:
        return Unavailable(f"broken answer ({type(exc).__name__})")
    return OutcomeUnknown(f"broken answer ({type(exc).__name__})")


def _no_auth(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """Send no Authorization header at all (given as `auth`, it also keeps ~/.netrc out)."""
    request.headers.pop("Authorization", None)
    return request


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """Walk the exceptions wrapped by requests/urllib3 (args, .reason, __cause__, __context__)."""
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    while pending and len(seen) < 32:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [*current.args, getattr(current, "reason", None)]
        linked += [current.__cause__, current.__context__]
        pending.extend(item for item in linked if isinstance(item, BaseException))


def _may_have_been_sent(exc: BaseException) -> bool:
    """False only when the failure proves no connection was made; unknown causes count as sent."""
    return not any(isinstance(cause, _NOT_SENT) for cause in _causes(exc))


def _describe(exc: BaseException) -> str:
    for cause in _causes(exc):
        if isinstance(cause, http.client.RemoteDisconnected | ConnectionError | OSError):
            return type(cause).__name__
    return type(exc).__name__


# The only 5xx that says the request was not processed: the service refused it as unavailable.
# Any other 5xx answering a POST (500, 502, 504, ...) may come after Nexthink created the
# executions, or from a gateway that passed the request on first.
_NOT_PROCESSED_STATUS = 503


def _raise_for_status(response: requests.Response, *, idempotent: bool = True) -> None:
    """Turn a non-2xx answer (after the 401 retry) into a typed error."""
    status = response.status_code
    if 200 <= status < 300:
        return
    if status == 401:
        raise Unauthorized()
    if status == 403:
        error = _error_body(response)
        raise Forbidden(error.code or "FORBIDDEN", error.details)
    if status == 429:
        raise RateLimited(parse_retry_after(response.headers.get("Retry-After")))
    if status >= 500 and status != _NOT_PROCESSED_STATUS and not idempotent:
        raise OutcomeUnknown(f"Nexthink answered HTTP {status} after the request was sent")
    if status >= 500:
        raise Unavailable(f"Nexthink answered HTTP {status}", status=status)
    if status >= 400:
        error = _error_body(response)
        raise BadRequest(error.code or f"HTTP_{status}", error.details, status)
    raise InvalidResponse(f"Nexthink answered an unexpected HTTP {status}", status=status)


def _error_body(response: requests.Response) -> ErrorResponse:
    """Read {code, details}; a body that is not that (HTML from a gateway) becomes details."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        code, details = data.get("code"), data.get("details", data.get("message"))
        return ErrorResponse(
            code="" if code is None else str(code), details="" if details is None else str(details)
        )
    return ErrorResponse(code="", details=" ".join(response.text.split())[:500])


def _json(response: requests.Response, *, sent: bool) -> Any:
    try:
        return response.json()
    except ValueError:
        raise InvalidResponse(
            _unparsable(response.status_code, sent), response.status_code
        ) from None


def _unparsable(status: int, sent: bool) -> str:
    if sent:
        return (
            f"Nexthink accepted the request (HTTP {status}) but its answer could not be read; "
            "it has probably run: check the execution history before sending it again."
        )
    return f"Nexthink answered HTTP {status} with a body that could not be read."


def _parse(model: type[M], data: Any, what: str, *, sent: bool) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        logger.warning(
            "Unexpected Nexthink answer to %s: %s", what, exc.errors(include_input=False)
        )
        raise InvalidResponse(_unparsable(200, sent)) from None


def _workflows(data: Any, what: str) -> list[Workflow]:
    """Parse workflows one by one: a malformed one is skipped, not the whole list."""
    items = data if isinstance(data, list) else [data]
    workflows = []
    for item in items:
        try:
            workflows.append(Workflow.model_validate(item))
        except ValidationError as exc:
            ident = item.get("id") if isinstance(item, dict) else None
            logger.warning(
                "Skipping a workflow that does not parse (%s, id=%r): %s",
                what,
                ident,
                exc.errors(include_input=False),
            )
    if items and not workflows:
        raise InvalidResponse(f"Nexthink answered {what} with no workflow that could be read.")
    return workflows
