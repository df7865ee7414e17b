"""The classic web interface's Act API v2 on the simulated tenant: remote actions and Engines.

`POST /api/remoteaction/v2/run` with HTTP Basic authentication answers one result per Engine,
or `{"code", "error"}` with every documented code (seed 002): most arise from the request itself,
NO_PERMISSION from a user without the API right (`api_allowed`), TOO_MANY_DEVICES above
`max_devices`, NO_ENGINES_TO_TARGET when no Engine is configured, and any code on demand
(`next_errors`). Engines answer what they are told (`ok`, `not_connected`, `engine_error`, ...);
`delay_seconds` holds each answer back so a client's read timeout can fire.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from .replies import Incoming, Reply, json_reply

RUN_PATH = "/api/remoteaction/v2/run"
ENGINE_CODES = ("ok", "timeout", "engine_error", "not_connected", "excluded", "no_permission")
ERROR_STATUS = {
    "INVALID_REQUEST_JSON": 400,
    "INVALID_REQUEST_CONTENT": 400,
    "INTERNAL_ERROR": 500,
    "CONTENT_TYPE": 400,
    "ENCODING": 400,
    "NO_REMOTE_ACTION_UID": 400,
    "NO_DEVICES": 400,
    "TOO_MANY_DEVICES": 400,
    "INVALID_ACTION_UID": 400,
    "INVALID_DEVICE_UID": 400,
    "NO_PERMISSION": 403,
    "UNKNOWN_OR_DISABLED_REMOTE_ACTION": 400,
    "NO_MANUAL_EXECUTION": 400,
    "NO_ENGINES_TO_TARGET": 403,
}
_DEFAULT_ERRORS = {
    "INVALID_REQUEST_JSON": "Request body is not valid JSON",
    "INVALID_REQUEST_CONTENT": "Request content is not valid",
    "INTERNAL_ERROR": "Internal error",
    "CONTENT_TYPE": "Content type must be application/json",
    "ENCODING": "Request must be encoded in UTF-8",
    "NO_REMOTE_ACTION_UID": "No remote action UID",
    "NO_DEVICES": "No devices",
    "TOO_MANY_DEVICES": "Too many devices",
    "INVALID_ACTION_UID": "Invalid remote action UID",
    "INVALID_DEVICE_UID": "Invalid device UID",
    "NO_PERMISSION": "User has no permission to use the API of remote actions",
    "UNKNOWN_OR_DISABLED_REMOTE_ACTION": "Unknown or disabled remote action",
    "NO_MANUAL_EXECUTION": "Remote action not configured for manual execution",
    "NO_ENGINES_TO_TARGET": "No engines to target",
}
_ENGINE_MESSAGES = {
    "engine_error": "Error in request to engine [{name}:999]: no license",
    "not_connected": "Engine {name} is not connected",
    "timeout": "Engine {name} did not answer in time",
    "no_permission": "User has no permission on engine {name}",
}
_ACTION_UID = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_DEVICE_UID = re.compile(r"^[0-9a-fA-F]{32}$")
_FIELDS: dict[str, type | tuple[type, ...]] = {
    "requestUid": str,
    "remoteActionUid": str,
    "deviceUids": list,
    "engineDatabaseUids": list,
    "timeoutSeconds": int,
    "params": dict,
}


@dataclass
class SimRemoteAction:
    """A remote action configured in Finder: whether it is enabled and can run manually."""

    uid: str
    name: str
    enabled: bool = True
    manual: bool = True
    params: tuple[str, ...] = ()


@dataclass
class SimEngine:
    """One Engine behind the web interface and what it answers (`answer`: an Engine code)."""

    databaseUid: str  # noqa: N815 (the API's spelling)
    name: str
    answer: str = "ok"
    message: str = ""


@dataclass
class SimRemoteActionRun:
    """A run the web interface accepted (whatever its Engines answered)."""

    request_uid: str | None
    remote_action_uid: str
    device_uids: list[str]
    params: dict[str, str]
    engines: list[dict[str, str]]
    received_at: str


def default_actions() -> list[SimRemoteAction]:
    """The remote actions the demo tenant offers (the seed's examples among them)."""
    return [
        SimRemoteAction(
            "07844969-1889-4de3-9026-020af94be855", "Restart Outlook", params=("Force",)
        ),
        SimRemoteAction("3b0ddb5c-8c1e-4a5e-9a44-1f2a7c6d9e01", "Clear browser cache"),
        SimRemoteAction("5d2f8a90-1c3e-4b7d-8e6f-0a9b8c7d6e5f", "Retired action", enabled=False),
        SimRemoteAction("e6bb97be-0957-49e0-9922-1a684d093858", "Scheduled clean-up", manual=False),
    ]


def default_engines() -> list[SimEngine]:
    """Two Engines answering `ok`, as in the seed's example."""
    return [
        SimEngine("86acc8511251ec444d3a75bac33a23c7", "engine-emea"),
        SimEngine("a4690014774dcc32b919c27d616166f7", "engine-amer"),
    ]


_SETTINGS = ("max_devices", "delay_seconds", "api_allowed", "user", "password")


@dataclass
class ClassicApi:
    """The classic web interface: credentials, remote actions, Engines, knobs and runs seen."""

    user: str = "portal-classic"
    password: str = "classic-secret"  # noqa: S105 (the simulator's documented demo password)
    max_devices: int = 10_000
    delay_seconds: float = 0.0
    api_allowed: bool = True
    actions: list[SimRemoteAction] = field(default_factory=default_actions)
    engines: list[SimEngine] = field(default_factory=default_engines)
    next_errors: list[str] = field(default_factory=list)
    runs: list[SimRemoteActionRun] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._initial = {name: getattr(self, name) for name in _SETTINGS}

    def reset(self) -> None:
        """Forget runs and changes: the credentials, actions and Engines it was made with."""
        with self.lock:
            for name, value in self._initial.items():
                setattr(self, name, value)
            self.actions = default_actions()
            self.engines = default_engines()
            self.next_errors = []
            self.runs = []

    def configure(self, changes: dict[str, Any]) -> None:
        """Change settings, Engines, actions or queue errors; ValueError on anything unknown."""
        known = {*_SETTINGS, "engines", "engine_answers", "actions", "next_errors"}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown classic settings: {', '.join(sorted(unknown))}")
        with self.lock:
            for name in _SETTINGS:
                if name in changes:
                    setattr(self, name, _checked(name, changes[name]))
            if "engines" in changes:
                self.engines = [SimEngine(**_engine(e)) for e in _list(changes["engines"])]
            for uid, answer in dict(changes.get("engine_answers") or {}).items():
                engine = next((e for e in self.engines if e.databaseUid == uid), None)
                if engine is None or answer not in ENGINE_CODES:
                    raise ValueError(f"engine_answers: no Engine {uid!r} or bad code {answer!r}")
                engine.answer = answer
            for action in _list(changes.get("actions") or []):
                added = SimRemoteAction(**{**action, "params": tuple(action.get("params", ()))})
                self.actions = [a for a in self.actions if a.uid != added.uid] + [added]
            for code in _list(changes.get("next_errors") or []):
                if code not in ERROR_STATUS:
                    raise ValueError(f"next_errors: {code!r} is not a documented code")
                self.next_errors.append(code)

    def to_json(self) -> dict[str, Any]:
        """The settings, actions, Engines and runs as JSON (the password left out)."""
        with self.lock:
            return {
                "user": self.user,
                "max_devices": self.max_devices,
                "delay_seconds": self.delay_seconds,
                "api_allowed": self.api_allowed,
                "actions": [asdict(a) for a in self.actions],
                "engines": [asdict(e) for e in self.engines],
                "next_errors": list(self.next_errors),
                "runs": [
                    {**asdict(r), "device_count": len(r.device_uids), "device_uids": None}
                    for r in self.runs
                ],
            }


def _checked(name: str, value: Any) -> Any:
    if name == "max_devices" and not (isinstance(value, int) and value >= 1):
        raise ValueError("max_devices must be an integer >= 1")
    if name == "delay_seconds" and not (isinstance(value, int | float) and value >= 0):
        raise ValueError("delay_seconds must be a number >= 0")
    if name == "api_allowed" and not isinstance(value, bool):
        raise ValueError("api_allowed must be true or false")
    if name in ("user", "password") and not (isinstance(value, str) and value):
        raise ValueError(f"{name} must be a non-empty string")
    return value


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError("expected a list")
    return value


def _engine(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not value.get("databaseUid"):
        raise ValueError("each Engine needs a databaseUid")
    answer = value.get("answer", "ok")
    if answer not in ENGINE_CODES:
        raise ValueError(f"Engine answer {answer!r} is not one of {', '.join(ENGINE_CODES)}")
    return {
        "databaseUid": str(value["databaseUid"]),
        "name": str(value.get("name") or value["databaseUid"]),
        "answer": answer,
        "message": str(value.get("message", "")),
    }


def _error(code: str, error: str | None = None) -> Reply:
    return json_reply(ERROR_STATUS[code], {"code": code, "error": error or _DEFAULT_ERRORS[code]})


def _authenticated(request: Incoming, api: ClassicApi) -> bool:
    scheme, _, encoded = (request.header("Authorization") or "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return hmac.compare_digest(user.encode(), api.user.encode()) and hmac.compare_digest(
        password.encode(), api.password.encode()
    )


def _content_problem(request: Incoming) -> Reply | None:
    """CONTENT_TYPE, ENCODING, INVALID_REQUEST_JSON or INVALID_REQUEST_CONTENT, or None."""
    media, _, rest = (request.header("Content-Type") or "").partition(";")
    if media.strip().lower() != "application/json":
        return _error("CONTENT_TYPE")
    charset = rest.strip().lower().removeprefix("charset=").strip('"') if rest else "utf-8"
    if charset not in ("utf-8", "utf8"):
        return _error("ENCODING")
    try:
        request.raw_body.decode("utf-8")
    except UnicodeDecodeError:
        return _error("ENCODING")
    if request.json_error is not None or not request.raw_body:
        return _error("INVALID_REQUEST_JSON")
    body = request.body
    if not isinstance(body, dict):
        return _error("INVALID_REQUEST_CONTENT", "Request must be a JSON object")
    for name, kind in _FIELDS.items():
        value = body.get(name)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            return _error("INVALID_REQUEST_CONTENT", f"{name} has the wrong type")
    for name in ("deviceUids", "engineDatabaseUids"):
        if any(not isinstance(item, str) for item in body.get(name) or []):
            return _error("INVALID_REQUEST_CONTENT", f"{name} must hold strings")
    if any(not isinstance(v, str) for v in (body.get("params") or {}).values()):
        return _error("INVALID_REQUEST_CONTENT", "params values must be strings")
    return None


def run(request: Incoming, api: ClassicApi) -> Reply:
    """Answer `POST /api/remoteaction/v2/run` (a GET answers 404, as documented)."""
    if request.method != "POST":
        return Reply(404, b"Not Found", "text/plain")
    if not _authenticated(request, api):
        return Reply(401, b"", headers={"WWW-Authenticate": 'Basic realm="Nexthink"'})
    with api.lock:
        forced = api.next_errors.pop(0) if api.next_errors else None
        delay = api.delay_seconds
    if forced is not None:
        return _error(forced)
    reply = _content_problem(request) or _check(request.body, api)
    if reply is not None:
        return reply
    results = _engine_results(request.body, api)
    if isinstance(results, Reply):
        return results
    body = request.body
    with api.lock:
        api.runs.append(
            SimRemoteActionRun(
                request_uid=body.get("requestUid"),
                remote_action_uid=body["remoteActionUid"],
                device_uids=list(body["deviceUids"]),
                params=dict(body.get("params") or {}),
                engines=results,
                received_at=datetime.now(UTC).isoformat(),
            )
        )
    answer = json_reply(200, results)
    answer.hang = delay
    return answer


def _check(body: dict[str, Any], api: ClassicApi) -> Reply | None:
    """The documented refusals of a well-formed body, in the order the web interface checks."""
    if not api.api_allowed:
        return _error("NO_PERMISSION")
    uid = body.get("remoteActionUid")
    if not uid:
        return _error("NO_REMOTE_ACTION_UID")
    if not _ACTION_UID.fullmatch(uid):
        return _error("INVALID_ACTION_UID")
    devices = body.get("deviceUids") or []
    if not devices:
        return _error("NO_DEVICES")
    if len(devices) > api.max_devices:
        return _error("TOO_MANY_DEVICES", f"At most {api.max_devices} devices per request")
    bad = next((d for d in devices if not _DEVICE_UID.fullmatch(d)), None)
    if bad is not None:
        return _error("INVALID_DEVICE_UID", f"Invalid device UID: {bad[:64]}")
    with api.lock:
        action = next((a for a in api.actions if a.uid.lower() == uid.lower()), None)
    if action is None or not action.enabled:
        return _error("UNKNOWN_OR_DISABLED_REMOTE_ACTION")
    if not action.manual:
        return _error("NO_MANUAL_EXECUTION")
    return None


def _engine_results(body: dict[str, Any], api: ClassicApi) -> list[dict[str, str]] | Reply:
    """One answer per targeted Engine: the configured ones, or those named (unknown: excluded)."""
    with api.lock:
        engines = list(api.engines)
    if not engines:
        return _error("NO_ENGINES_TO_TARGET")
    wanted = body.get("engineDatabaseUids")
    if wanted:
        by_uid = {e.databaseUid: e for e in engines}
        chosen = [
            by_uid.get(uid) or SimEngine(uid, uid, "excluded", "Unknown databaseUid")
            for uid in wanted
        ]
    else:
        chosen = engines
    return [
        {
            "databaseUid": e.databaseUid,
            "code": e.answer,
            "message": e.message
            or ("" if e.answer == "ok" else _ENGINE_MESSAGES.get(e.answer, "").format(name=e.name)),
        }
        for e in chosen
    ]
