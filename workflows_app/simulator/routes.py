"""Routing of tenant requests: faults first, then auth, spec validation and the endpoint.

The one place that knows the whole Tenant: each endpoint is handed only the parts it uses.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qs

from . import classic, exports, nql, oauth, workflows_api
from .replies import Incoming, Reply, error_reply, unauthorized
from .spec import find_operation, operations
from .state import SimRequestRecord
from .tenant import Tenant
from .validation import request_errors

Endpoint = Callable[[Incoming, Tenant], Reply]


def _execute(request: Incoming, tenant: Tenant, version: Literal["v1", "v2"]) -> Reply:
    return workflows_api.execute(
        request,
        version,
        catalogue=tenant.catalogue,
        inventory=tenant.inventory,
        state=tenant.state,
        faults=tenant.faults,
    )


def _nql(request: Incoming, tenant: Tenant, version: Literal["v1", "v2"]) -> Reply:
    return nql.execute(
        request,
        version,
        inventory=tenant.inventory,
        state=tenant.state,
        datetime_shape=tenant.nql_datetime_shape,
        column_shape=tenant.nql_column_shape,
    )


def _export(request: Incoming, tenant: Tenant) -> Reply:
    return exports.start(
        request,
        inventory=tenant.inventory,
        state=tenant.state,
        exports=tenant.exports,
        faults=tenant.faults,
        column_shape=tenant.nql_column_shape,
    )


ENDPOINTS: dict[tuple[str, str], Endpoint] = {
    ("POST", "/api/v1/workflows/execute"): lambda r, t: _execute(r, t, "v1"),
    ("POST", "/api/v2/workflows/execute"): lambda r, t: _execute(r, t, "v2"),
    (
        "POST",
        "/api/v1/workflows/workflows/{workflowUuid}/execution/{executionUuid}/trigger",
    ): lambda r, t: workflows_api.trigger_wait_for_event(r, catalogue=t.catalogue, state=t.state),
    ("GET", "/api/v1/workflows"): lambda r, t: workflows_api.list_workflows(
        r, catalogue=t.catalogue, trigger_shape=t.trigger_shape
    ),
    ("GET", "/api/v1/workflows/details"): lambda r, t: workflows_api.workflow_details(
        r, catalogue=t.catalogue, trigger_shape=t.trigger_shape
    ),
    ("POST", "/api/v1/nql/execute"): lambda r, t: _nql(r, t, "v1"),
    ("POST", "/api/v2/nql/execute"): lambda r, t: _nql(r, t, "v2"),
    ("POST", "/api/v1/nql/export"): _export,
    ("GET", "/api/v1/nql/status/{exportId}"): lambda r, t: exports.status(r, exports=t.exports),
}
_REDACTED = "[redacted]"
_GATEWAY_PAGE = b"<html><body><h1>{status}</h1><p>The gateway could not reach the service.</p>"


def injected_reply(status: int, reason: str, retry_after: float | None) -> Reply:
    """What a gateway in front of Nexthink answers when a fault is injected."""
    if status in (502, 504):
        page = _GATEWAY_PAGE.replace(b"{status}", str(status).encode()) + b"</body></html>"
        return Reply(status, page, "text/html", fault=reason)
    if status == 401:
        reply = unauthorized("Injected fault")
    elif status == 429:
        reply = error_reply(429, "TOO_MANY_REQUESTS", "Rate limit exceeded, retry later.")
    elif status >= 500:
        reply = error_reply(status, "SERVICE_UNAVAILABLE", "Simulated server error.")
    else:
        reply = error_reply(status, f"SIMULATED_{status}", "Simulated failure.")
    if retry_after is not None:
        reply.headers["Retry-After"] = f"{retry_after:g}"
    reply.fault = reason
    return reply


def _recorded_body(request: Incoming) -> Any:
    if request.path == oauth.TOKEN_PATH:
        form = parse_qs(request.raw_body.decode("utf-8", "replace"), keep_blank_values=True)
        return {k: (_REDACTED if "secret" in k else v[0]) for k, v in form.items()}
    if request.json_error is not None:
        return request.raw_body[:2000].decode("utf-8", "replace")
    return request.body


def _redacted_headers(headers: dict[str, str]) -> dict[str, str]:
    return {
        k: (_REDACTED if k.lower() in ("authorization", "cookie") else v)
        for k, v in headers.items()
    }


def _bearer(request: Incoming) -> str | None:
    value = request.header("Authorization") or ""
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _api(request: Incoming, tenant: Tenant) -> tuple[Reply, list[str]]:
    found = find_operation(request.method, request.path)
    if found is None:
        allowed = sorted({op.method for op in operations() if op.pattern.match(request.path)})
        if allowed:
            reply = error_reply(405, "METHOD_NOT_ALLOWED", f"Use {', '.join(allowed)}.")
            reply.headers["Allow"] = ", ".join(allowed)
            return reply, []
        return error_reply(404, "NOT_FOUND", f"No endpoint at {request.path}."), []
    op, request.path_params = found
    errors = request_errors(op, request)
    if request.json_error is not None:
        errors = [request.json_error, *[e for e in errors if not e.startswith("body:")]]
    content_type = (request.header("Content-Type") or "").split(";")[0].strip().lower()
    bad_media = bool(request.raw_body) and content_type != "application/json"
    if bad_media:
        errors.insert(
            0, f"header Content-Type: {content_type or 'missing'}, expected application/json"
        )
    token = _bearer(request)
    if token is None:
        return unauthorized("Missing bearer token"), errors
    if not tenant.state.token_valid(token):
        return unauthorized("The access token is invalid or has expired"), errors
    if bad_media:
        return error_reply(415, "UNSUPPORTED_MEDIA_TYPE", errors[0]), errors
    if errors:
        return error_reply(400, "INVALID_REQUEST", "; ".join(errors)), errors
    return ENDPOINTS[(op.method, op.template)](request, tenant), errors


def handle(request: Incoming, tenant: Tenant) -> Reply:
    """Answer one non-control request and record it in the tenant's state."""
    received_at = datetime.now(UTC)
    faults = tenant.faults
    faults.sleep(faults.latency(request.path))
    errors: list[str] = []
    injected = faults.take_injected(request.path)
    if injected is not None:
        reply = injected_reply(injected.status, injected.reason, injected.retry_after)
    elif request.path == oauth.TOKEN_PATH:
        reply = (
            oauth.token(
                request,
                state=tenant.state,
                client_id=tenant.client_id,
                client_secret=tenant.client_secret,
                token_ttl=tenant.token_ttl,
            )
            if request.method == "POST"
            else error_reply(405, "METHOD_NOT_ALLOWED", "Use POST.")
        )
    elif request.path == classic.RUN_PATH:
        reply = classic.run(request, tenant.classic)
    elif request.path.startswith(exports.EXPORTS_PREFIX):
        reply = exports.download(request, exports=tenant.exports)
    else:
        reply, errors = _api(request, tenant)
    tenant.state.record_request(
        SimRequestRecord(
            method=request.method,
            path=request.path,
            query="&".join(f"{k}={v}" for k, vs in request.query.items() for v in vs),
            headers=_redacted_headers(request.headers),
            body=_recorded_body(request),
            spec_errors=errors,
            status=reply.status,
            fault=reply.fault,
            received_at=received_at,
        )
    )
    return reply
