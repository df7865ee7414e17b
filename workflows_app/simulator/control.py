"""The /_simulator/ control endpoints tests and the demo use to inspect and steer the tenant."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from .replies import Incoming, Reply, error_reply, json_reply

if TYPE_CHECKING:
    from .server import Simulator

PREFIX = "/_simulator/"
_WORKFLOW_ACTION = re.compile(r"^workflows/(?P<nql_id>[^/]+)/(?P<action>remove|restore)$")
SETTINGS = ("execution_seconds", "trigger_shape", "nql_datetime_shape", "token_ttl")


def _body_object(request: Incoming) -> dict[str, Any] | Reply:
    if request.json_error is not None:
        return error_reply(400, "INVALID_REQUEST", request.json_error)
    if request.body is None:
        return {}
    if not isinstance(request.body, dict):
        return error_reply(400, "INVALID_REQUEST", "body: expected a JSON object")
    return request.body


def _state(sim: Simulator, request: Incoming) -> Reply:
    data = sim.state.snapshot()
    data["faults"] = sim.faults.config.to_json()
    data["settings"] = sim.settings()
    data["catalogue"] = {
        "workflows": [w.id for w in sim.catalogue.all()],
        "removed": sim.catalogue.removed(),
    }
    return json_reply(200, data)


def _executions(sim: Simulator, request: Incoming) -> Reply:
    wanted = request.param("request_uuid")
    with sim.state.lock:
        sim.state.tick()
        records = [
            sim.state.record_json(r)
            for r in sim.state.executions
            if wanted is None or r.request_uuid == wanted
        ]
    return json_reply(200, records)


def _faults(sim: Simulator, request: Incoming) -> Reply:
    if request.method == "GET":
        return json_reply(200, sim.faults.config.to_json())
    body = _body_object(request)
    if isinstance(body, Reply):
        return body
    changes = dict(body)
    if changes.pop("clear", False):
        sim.faults.clear()
    try:
        config = sim.faults.configure(**changes)
    except (TypeError, ValueError) as exc:
        return error_reply(400, "INVALID_FAULTS", str(exc))
    return json_reply(200, config.to_json())


def _advance(sim: Simulator, request: Incoming) -> Reply:
    body = _body_object(request)
    if isinstance(body, Reply):
        return body
    waiting = sim.state.advance(include_waiting=bool(body.get("include_waiting", False)))
    return json_reply(200, {"advanced": True, "still_waiting": waiting})


def _settings(sim: Simulator, request: Incoming) -> Reply:
    if request.method == "GET":
        return json_reply(200, sim.settings())
    body = _body_object(request)
    if isinstance(body, Reply):
        return body
    try:
        sim.configure(**body)
    except (TypeError, ValueError) as exc:
        return error_reply(400, "INVALID_SETTINGS", str(exc))
    return json_reply(200, sim.settings())


def _simple(sim: Simulator, request: Incoming, name: str) -> Reply:
    if name == "reset":
        sim.reset()
        return json_reply(200, {"reset": True})
    return json_reply(200, {"expired": sim.state.expire_tokens()})


def handle(sim: Simulator, request: Incoming) -> Reply:
    """Answer one /_simulator/ request (never faulted, never recorded, no auth)."""
    name = request.path[len(PREFIX) :].strip("/")
    get_or_post = {"faults": _faults, "settings": _settings}
    if name in ("state", "executions"):
        if request.method != "GET":
            return error_reply(405, "METHOD_NOT_ALLOWED", "Use GET.")
        return (_state if name == "state" else _executions)(sim, request)
    if name in get_or_post and request.method == "GET":
        return get_or_post[name](sim, request)
    if request.method != "POST":
        return error_reply(405, "METHOD_NOT_ALLOWED", "Use POST.")
    if name in get_or_post:
        return get_or_post[name](sim, request)
    if name == "advance":
        return _advance(sim, request)
    if name in ("reset", "expire-tokens"):
        return _simple(sim, request, name)
    match = _WORKFLOW_ACTION.match(name)
    if match:
        nql_id = unquote(match["nql_id"])
        nql_id = nql_id if nql_id.startswith("#") else "#" + nql_id
        catalogue = sim.catalogue
        done = (
            catalogue.remove(nql_id) if match["action"] == "remove" else catalogue.restore(nql_id)
        )
        if not done:
            return error_reply(
                404,
                "WORKFLOW_NOT_FOUND",
                f"Cannot {match['action']} {nql_id}: not in the catalogue.",
            )
        return json_reply(200, {match["action"] + "d": nql_id})
    return error_reply(404, "NOT_FOUND", f"No control endpoint {request.path}.")
