"""Check HTTP requests against the bundled Nexthink Workflows OpenAPI spec, strictly.

The project's one request validator: the simulator words its 400s from `check_request`, tests
use `validate_request` to prove the client only sends what the spec allows. Stricter than the spec
on two points: an object schema that lists `properties` accepts no other property (a misspelt
field is an error), and a regex must match the whole value (no trailing newline slips through).
The NQL endpoints (execute, export, export status) are not in the spec file; small hand-written
descriptions of them are added here.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from jsonschema import ValidationError, validators
from openapi_schema_validator import OAS30WriteValidator, oas30_format_checker

SPEC_PATH = Path(__file__).resolve().parent / "openapi" / "nexthink-workflows-openapi.json"

NQL_EXECUTE_PATH = "/api/v2/nql/execute"
NQL_EXECUTE_V1_PATH = "/api/v1/nql/execute"
NQL_EXPORT_PATH = "/api/v1/nql/export"
NQL_STATUS_PATH = "/api/v1/nql/status/{exportId}"
# https://docs.nexthink.com/api/nql/execute-nql-v2 (hand-written: not in the bundled spec).
NQL_SCHEMAS: dict[str, Any] = {
    "NqlExecuteRequest": {
        "type": "object",
        "required": ["queryId"],
        "properties": {
            "queryId": {"type": "string", "pattern": "^#[a-z0-9_]{2,255}$"},
            "parameters": {"type": "object", "additionalProperties": {"type": "string"}},
        },
        "additionalProperties": False,
    },
    "NqlExecuteResponse": {
        "type": "object",
        "required": ["queryId", "executedQuery", "rows", "executionDateTime", "data"],
        "properties": {
            "queryId": {"type": "string"},
            "executedQuery": {"type": "string"},
            "rows": {"type": "integer", "minimum": 0},
            "executionDateTime": {},
            "headers": {"type": "array", "items": {"type": "string"}},
            "data": {"type": "array", "items": {"type": "object"}},
        },
    },
    # https://docs.nexthink.com/api/nql/export-nql (hand-written: not in the bundled spec).
    "NqlExportRequest": {
        "type": "object",
        "required": ["queryId"],
        "properties": {
            "queryId": {"type": "string", "pattern": "^#[a-z0-9_]{2,255}$"},
            "parameters": {"type": "object", "additionalProperties": {"type": "string"}},
            "compression": {"type": "string", "enum": ["NONE", "GZIP", "ZSTD"]},
        },
        "additionalProperties": False,
    },
    "NqlExportResponse": {
        "type": "object",
        "required": ["exportId"],
        "properties": {"exportId": {"type": "string"}},
    },
    "NqlExportStatusResponse": {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {
                "type": "string",
                "enum": ["SUBMITTED", "IN_PROGRESS", "ERROR", "COMPLETED"],
            },
            "resultsFileUrl": {"type": "string"},
            "errorDescription": {"type": "string"},
        },
    },
}
_AUTH_HEADERS: list[dict[str, Any]] = [
    {"name": "Authorization", "in": "header", "required": True, "schema": {"type": "string"}},
    {"name": "Source", "in": "header", "schema": {"type": "string", "nullable": True}},
]
NQL_OPERATION: dict[str, Any] = {
    "operationId": "executeNqlV2",
    "parameters": _AUTH_HEADERS,
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/NqlExecuteRequest"}}
        },
    },
}
NQL_EXPORT_OPERATION: dict[str, Any] = {
    "operationId": "exportNql",
    "parameters": _AUTH_HEADERS,
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/NqlExportRequest"}}
        },
    },
}
NQL_STATUS_OPERATION: dict[str, Any] = {
    "operationId": "nqlExportStatus",
    "parameters": [
        {
            "name": "exportId",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "minLength": 1},
        },
        *_AUTH_HEADERS,
    ],
}


@dataclass(frozen=True)
class Operation:
    """One operation of the spec: its method, path template and OpenAPI description."""

    method: str
    template: str
    pattern: re.Pattern[str]
    spec: dict[str, Any]

    @property
    def operation_id(self) -> str:
        """The spec's operationId."""
        return str(self.spec.get("operationId", ""))


@dataclass(frozen=True)
class Problem:
    """One way a request breaks the spec: the part (body, query, path, header), field and why."""

    part: str
    field: str  # a parameter name, a body path such as `devices[0].upn`, or "" for the whole part
    message: str
    kind: Literal["invalid", "missing", "unknown", "auth", "media"] = "invalid"

    def __str__(self) -> str:
        dot = "." if self.field and not self.field.startswith("[") else ""
        return f"{self.part}{dot}{self.field}: {self.message}"


@lru_cache(maxsize=1)
def _bundled() -> dict[str, Any]:
    return dict(json.loads(SPEC_PATH.read_text(encoding="utf-8")))


def load_spec() -> dict[str, Any]:
    """Return (a copy of) the bundled Workflows OpenAPI spec, exactly as the file holds it."""
    return copy.deepcopy(_bundled())


def _make_strict(node: Any) -> Any:
    """Forbid unknown properties in every object schema that lists its properties."""
    if isinstance(node, dict):
        node = {key: _make_strict(value) for key, value in node.items()}
        if isinstance(node.get("properties"), dict) and "additionalProperties" not in node:
            node["additionalProperties"] = False
        return node
    if isinstance(node, list):
        return [_make_strict(item) for item in node]
    return node


@lru_cache(maxsize=1)
def _document() -> dict[str, Any]:
    """The spec plus the NQL operation, with strict component schemas."""
    document = load_spec()
    for path in (NQL_EXECUTE_PATH, NQL_EXECUTE_V1_PATH):
        document["paths"][path] = {"post": copy.deepcopy(NQL_OPERATION)}
    document["paths"][NQL_EXPORT_PATH] = {"post": copy.deepcopy(NQL_EXPORT_OPERATION)}
    document["paths"][NQL_STATUS_PATH] = {"get": copy.deepcopy(NQL_STATUS_OPERATION)}
    schemas = document["components"]["schemas"]
    schemas.update(copy.deepcopy(NQL_SCHEMAS))
    document["components"] = _make_strict(document["components"])
    return document


@lru_cache(maxsize=1)
def operations() -> tuple[Operation, ...]:
    """All operations, literal paths before templated ones so the most specific matches first."""
    found = []
    for template, item in _document()["paths"].items():
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
        for method, spec in item.items():
            found.append(Operation(method.upper(), template, re.compile(f"^{regex}$"), spec))
    return tuple(sorted(found, key=lambda op: "{" in op.template))


def find_operation(method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
    """Return the operation for `method path` and its path parameters, or None."""
    path = urlsplit(path).path
    for op in operations():
        match = op.pattern.match(path)
        if match and op.method == method.upper():
            return op, match.groupdict()
    return None


def _resolve(node: Any) -> Any:
    """Follow local `$ref`s (one level at a time) in the strict document."""
    seen = 0
    while isinstance(node, dict) and "$ref" in node and seen < 20:
        target: Any = _document()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node, seen = target, seen + 1
    return node


@lru_cache(maxsize=64)
def _whole_value(pattern: str) -> re.Pattern[str]:
    """Compile a spec regex so that an anchor `$` (not escaped, not in [...]) is the very end."""
    tokens = re.compile(r"\\.|\[(?:\\.|[^\]\\])*\]|\$")
    return re.compile(tokens.sub(lambda m: r"\Z" if m[0] == "$" else m[0], pattern))


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _whole_value(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


_StrictValidator = validators.extend(OAS30WriteValidator, {"pattern": _pattern})


@lru_cache(maxsize=64)
def _validator_for(schema_json: str) -> Any:
    root = {"allOf": [json.loads(schema_json)], "components": _document()["components"]}
    return _StrictValidator(root, format_checker=oas30_format_checker)


def _validator(schema: dict[str, Any]) -> Any:
    return _validator_for(json.dumps(schema, sort_keys=True))


def _message(error: ValidationError) -> str:
    if error.validator == "maxItems":  # not the repr of 10,001 items
        return f"{len(error.instance)} items, at most {error.validator_value} allowed"
    return error.message if len(error.message) <= 300 else error.message[:297] + "..."


def _schema_problems(part: str, name: str, value: Any, schema: dict[str, Any]) -> list[Problem]:
    problems = []
    for error in sorted(_validator(schema).iter_errors(value), key=lambda e: list(e.path)):
        if error.message == "None for not nullable":
            continue  # openapi-schema-validator also says "None is not of type ..." for it
        field = name + "".join(
            f"[{step}]" if isinstance(step, int) else f".{step}" for step in error.absolute_path
        )
        problems.append(Problem(part, field.removeprefix("."), _message(error)))
    return problems


def _coerce(value: str, schema: dict[str, Any]) -> Any:
    """Read a query or path string as the scalar type its schema expects."""
    kind = _resolve(schema).get("type")
    if kind == "boolean":
        return {"true": True, "false": False}.get(value, value)
    if kind in ("integer", "number"):
        try:
            return int(value) if kind == "integer" else float(value)
        except ValueError:
            return value
    return value


def _single(name: str, value: Any, problems: list[Problem]) -> str | None:
    """The value of a query parameter to check: the first, if it is (wrongly) repeated."""
    if isinstance(value, list | tuple):
        if len(value) != 1:
            problems.append(Problem("query", name, f"expected one value, got {len(value)}"))
        return str(value[0]) if value else None
    return str(value)


def _check_parameters(
    op: Operation,
    path_params: Mapping[str, str],
    query: Mapping[str, Any],
    headers: Mapping[str, str] | None,
) -> list[Problem]:
    problems: list[Problem] = []
    header_names = {name.lower(): value for name, value in (headers or {}).items()}
    known_query = set()
    for parameter in (_resolve(p) for p in op.spec.get("parameters", [])):
        name, where, schema = parameter["name"], parameter["in"], parameter.get("schema", {})
        required = bool(parameter.get("required"))
        value: Any
        if where == "header":
            if headers is None or (name.lower() == "authorization" and _secured(op)):
                continue  # the Authorization header is checked by _check_auth
            value = header_names.get(name.lower())
        elif where == "query":
            known_query.add(name)
            value = _single(name, query[name], problems) if name in query else None
        elif where == "path":
            value = path_params.get(name)
        else:
            continue
        if value is None:
            if required:
                problems.append(Problem(where, name, "required parameter is missing", "missing"))
            continue
        problems.extend(_schema_problems(where, name, _coerce(value, schema), schema))
    for name in sorted(set(query) - known_query):
        problems.append(Problem("query", name, "unknown query parameter", "unknown"))
    return problems


def _secured(op: Operation) -> bool:
    return bool(op.spec.get("security", _document().get("security")))


def _check_auth(op: Operation, headers: Mapping[str, str] | None) -> list[Problem]:
    if headers is None or not _secured(op):
        return []
    value = {name.lower(): value for name, value in headers.items()}.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():  # the scheme is case-insensitive
        return [Problem("header", "Authorization", "a Bearer token is required", "auth")]
    return []


def _check_body(op: Operation, body: Any, headers: Mapping[str, str] | None) -> list[Problem]:
    request_body = _resolve(op.spec.get("requestBody"))
    if isinstance(body, bytes | bytearray | str):
        try:  # json.loads reads bytes as a server would: UTF-8, -16 or -32, nothing replaced
            body = json.loads(body) if body.strip() else None
        except ValueError:
            return [Problem("body", "", "not valid JSON")]
    if not request_body:
        takes_none = f"{op.method} {op.template} takes no body"
        return [] if body is None else [Problem("body", "", takes_none)]
    if body is None:
        required = request_body.get("required")
        return [Problem("body", "", "a JSON body is required", "missing")] if required else []
    problems = []
    if headers is not None:
        content_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
        if not content_type.lower().startswith("application/json"):
            got = f"expected application/json, got {content_type!r}"
            problems.append(Problem("header", "Content-Type", got, "media"))
    schema = request_body["content"]["application/json"]["schema"]
    return problems + _schema_problems("body", "", body, schema)


def check_request(
    op: Operation,
    path_params: Mapping[str, str],
    body: Any,
    headers: Mapping[str, str] | None = None,
    *,
    query: Mapping[str, Any] | None = None,
) -> list[Problem]:
    """How a request for a found operation breaks the spec; arguments as for validate_request."""
    return (
        _check_auth(op, headers)
        + _check_parameters(op, path_params, query or {}, headers)
        + _check_body(op, body, headers)
    )


def validate_request(
    method: str,
    path: str,
    body: Any,
    headers: Mapping[str, str] | None = None,
    *,
    query: Mapping[str, Any] | None = None,
) -> list[str]:
    """Return what is wrong with a request according to the spec (empty list: it conforms).

    `path` may carry a query string; `query` adds parameters (values: str or list of str).
    `body` is the parsed JSON, or its raw text/bytes. Headers are only checked when given.
    """
    found = find_operation(method, path)
    if found is None:
        templates = [op.template for op in operations() if op.pattern.match(urlsplit(path).path)]
        if templates:
            return [f"{method.upper()} is not allowed on {templates[0]}"]
        return [f"unknown path: {urlsplit(path).path}"]
    op, path_params = found
    all_query: dict[str, Any] = dict(parse_qs(urlsplit(path).query, keep_blank_values=True))
    all_query.update(query or {})
    return [str(p) for p in check_request(op, path_params, body, headers, query=all_query)]


__all__ = [
    "NQL_EXECUTE_PATH",
    "NQL_EXECUTE_V1_PATH",
    "NQL_EXPORT_PATH",
    "NQL_SCHEMAS",
    "NQL_STATUS_PATH",
    "Operation",
    "Problem",
    "check_request",
    "find_operation",
    "load_spec",
    "operations",
    "validate_request",
]
