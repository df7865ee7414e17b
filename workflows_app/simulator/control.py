"""The /_simulator/ control endpoints tests and the demo use to inspect and steer the tenant."""

from __future__ import annotations

import hmac
import re
from typing import Any
from urllib.parse import unquote

from .catalogue import Catalogue
from .faults import Faults
from .replies import Incoming, Reply, error_reply, json_reply
from .state import SimState
from .tenant import Tenant

PREFIX = "/_simulator/"
# The header carrying the control token (`--control-token`, SIMULATOR_CONTROL_TOKEN).
TOKEN_HEADER = "X-Simulator-Token"
_WORKFLOW_ACTION = re.compile(r"^workflows/(?P<nql_id>[^/]+)/(?P<action>remove|restore)$")


def _body_object(request: Incoming) -> dict[str, Any] | Reply:
    if request.json_error is not None:
        return error_reply(400, "INVALID_REQUEST", request.json_error)
    if request.body is None:
        return {}
    if not isinstance(request.body, dict):
        return error_reply(400, "INVALID_REQUEST", "body: expected a JSON object")
    return request.body


def _state(tenant: Tenant, base_url: str) -> Reply:
    data = tenant.state.snapshot()
    data["faults"] = tenant.faults.config.to_json()
    data["settings"] = tenant.settings(base_url)
    data["catalogue"] = {
        "workflows": [w.id for w in tenant.catalogue.all()],
        "removed": tenant.catalogue.removed(),
    }
    with tenant.exports.lock:
        data["exports"] = [e.summary() for e in tenant.exports.exports.values()]
    return json_reply(200, data)


def _executions(request: Incoming, state: SimState) -> Reply:
    wanted = request.param("request_uuid")
    try:
        since = float(request.param("since") or "-inf")  # received_epoch, as answered
    except ValueError:
        return error_reply(400, "INVALID_REQUEST", "since: expected seconds since the epoch")
    with state.lock:
        state.tick()
        records = [
            state.record_json(r)
            for r in state.executions
            if (wanted is None or r.request_uuid == wanted) and r.received_at.timestamp() >= since
        ]
    return json_reply(200, records)


def _requests(request: Incoming, tenant: Tenant) -> Reply:
    data = tenant.state.requests_matching(request.param("path") or "/")
    # Status calls name only the export: its summary says which query and request it reads.
    with tenant.exports.lock:
        data["exports"] = [e.summary() for e in tenant.exports.exports.values()]
    return json_reply(200, data)


def _faults(request: Incoming, faults: Faults) -> Reply:
    if request.method == "GET":
        return json_reply(200, faults.config.to_json())
    body = _body_object(request)
    if isinstance(body, Reply):
        return body
    changes = dict(body)
    if changes.pop("clear", False):
        faults.clear()
    try:
        config = faults.configure(**changes)
    except (TypeError, ValueError) as exc:
        return error_reply(400, "INVALID_FAULTS", str(exc))
    return json_reply(200, config.to_json())


def _advance(request: Incoming, tenant: Tenant) -> Reply:
    body = _body_object(request)
    if isinstance(body, Reply):
        return body
    waiting = tenant.state.advance(include_waiting=bool(body.get("include_waiting", False)))
    tenant.exports.complete_all()
    return json_reply(200, {"advanced": True, "still_waiting": waiting})


def _settings(request: Incoming, tenant: Tenant, base_url: str) -> Reply:
    if request.method == "GET":
        return json_reply(200, tenant.settings(base_url))
    body = _body_object(request)
    if isinstance(body, Reply):
        return body
    try:
        tenant.configure(**body)
    except (TypeError, ValueError) as exc:
        return error_reply(400, "INVALID_SETTINGS", str(exc))
    return json_reply(200, tenant.settings(base_url))


def _classic(request: Incoming, tenant: Tenant) -> Reply:
    """GET: the classic web interface's settings, Engines, actions and runs; POST changes them."""
    if request.method == "POST":
        body = _body_object(request)
        if isinstance(body, Reply):
            return body
        try:
            tenant.classic.configure(body)
        except (TypeError, ValueError) as exc:
            return error_reply(400, "INVALID_CLASSIC_SETTINGS", str(exc))
    return json_reply(200, tenant.classic.to_json())


def _workflow_action(catalogue: Catalogue, nql_id: str, action: str) -> Reply:
    nql_id = nql_id if nql_id.startswith("#") else "#" + nql_id
    done = catalogue.remove(nql_id) if action == "remove" else catalogue.restore(nql_id)
    if not done:
        return error_reply(
            404, "WORKFLOW_NOT_FOUND", f"Cannot {action} {nql_id}: not in the catalogue."
        )
    return json_reply(200, {action + "d": nql_id})


def refusal(request: Incoming, *, token: str | None, loopback: bool) -> Reply | None:
    """Why a control request is refused, or None when it may steer the tenant.

    With a token, every control request must carry it. Without one, only a simulator bound to
    loopback answers them: anyone who reaches the port could otherwise reset or fault it.
    """
    if token is None:
        if loopback:
            return None
        return error_reply(
            403,
            "CONTROL_DISABLED",
            "The control endpoints are off on a simulator reachable from other machines: start "
            f"it with --control-token (or SIMULATOR_CONTROL_TOKEN) and send it as {TOKEN_HEADER}.",
        )
    given = request.header(TOKEN_HEADER) or ""
    if hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8")):
        return None
    return error_reply(
        401, "CONTROL_TOKEN_REQUIRED", f"Send the simulator's control token as {TOKEN_HEADER}."
    )


def handle(request: Incoming, tenant: Tenant, base_url: str) -> Reply:
    """Answer one /_simulator/ request allowed by `refusal` (never faulted, never recorded).

    base_url is where the tenant is served, as the settings report it.
    """
    name = request.path[len(PREFIX) :].strip("/")
    if name in ("state", "executions", "requests"):
        if request.method != "GET":
            return error_reply(405, "METHOD_NOT_ALLOWED", "Use GET.")
        if name == "state":
            return _state(tenant, base_url)
        if name == "requests":
            return _requests(request, tenant)
        return _executions(request, tenant.state)
    readable = name in ("faults", "settings", "classic")  # GET reads them, POST changes them
    if request.method != "POST" and not (readable and request.method == "GET"):
        return error_reply(405, "METHOD_NOT_ALLOWED", "Use POST.")
    if name == "faults":
        return _faults(request, tenant.faults)
    if name == "settings":
        return _settings(request, tenant, base_url)
    if name == "classic":
        return _classic(request, tenant)
    if name == "advance":
        return _advance(request, tenant)
    if name == "reset":
        tenant.reset()
        return json_reply(200, {"reset": True})
    if name == "expire-tokens":
        return json_reply(200, {"expired": tenant.state.expire_tokens()})
    match = _WORKFLOW_ACTION.match(name)
    if match:
        return _workflow_action(tenant.catalogue, unquote(match["nql_id"]), match["action"])
    return error_reply(404, "NOT_FOUND", f"No control endpoint {request.path}.")
